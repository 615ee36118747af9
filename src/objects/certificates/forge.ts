import { createRequire } from 'node:module';
import type Forge from 'node-forge';

let forge: typeof Forge | undefined;

/** node-forge, loaded on first use: only PFX handling needs it, and loading it would cost ~35 ms of every start. */
export const loadForge = () => (forge ??= createRequire(import.meta.url)('node-forge') as typeof Forge);
