import fs from 'node:fs';
import type { Command } from 'commander';
import { parsePositiveInt, type ActionEnv } from './command.js';
import { CliError, usageError } from './errors.js';
import { isoTime } from './output.js';

/*
 * What every vault-object family of the CLI (secrets, keys) shares: how a command names its target
 * (`--id` or `--vault-name`/`--name`), the common options, files, and the deleted-object fields az prints.
 */

export interface TargetOptions { vaultName?: string; name?: string; id?: string; version?: string }

/** `--id https://{vault}/{collection}/{name}[/{version}]` or `--vault-name V --name N [--version X]`. */
export function objectTarget(opts: TargetOptions, env: ActionEnv, collection: string) {
  const context = env.context();
  if (opts.id) {
    if (opts.vaultName || opts.name) throw usageError('--id ID | --vault-name VAULT --name NAME');
    let url: URL;
    try {
      url = new URL(opts.id);
    } catch {
      throw usageError(`--id must be a ${collection} identifier URL`);
    }
    const [kind, name, version] = url.pathname.split('/').filter(Boolean);
    if (kind !== collection || !name) throw usageError(`--id must look like https://{vault}/${collection}/{name}${collection.startsWith('deleted') ? '' : '[/{version}]'}`);
    return { vault: context.vault(url.origin), name: encodeURIComponent(name), version: opts.version ?? version };
  }
  if (!opts.vaultName || !opts.name) throw usageError('--id ID | --vault-name VAULT --name NAME');
  return { vault: context.vault(context.vaultUrl(opts.vaultName)), name: encodeURIComponent(opts.name), version: opts.version };
}

/** `--id https://{vault}` (a vault URL) or `--vault-name V`, for commands on the whole vault. */
export function vaultTarget(opts: { vaultName?: string; id?: string }, env: ActionEnv) {
  const context = env.context();
  if (opts.id) return context.vault(new URL(opts.id).origin);
  if (!opts.vaultName) throw usageError('--id VAULT_URL | --vault-name VAULT');
  return context.vault(context.vaultUrl(opts.vaultName));
}

/** `--vault-name`, `--name` (of a `noun`), optionally `--id` and `--version`. */
export const withObjectTarget = (cmd: Command, noun: string, idHelp: string | undefined, opts: { version?: boolean } = {}) => {
  cmd.option('--vault-name <name>', 'name of the vault').option('-n, --name <name>', `name of the ${noun}`);
  if (idHelp) cmd.option('--id <id>', idHelp);
  if (opts.version) cmd.option('-v, --version <version>', `the ${noun} version (default: the latest)`);
  return cmd;
};
export const withVault = (cmd: Command) => cmd.option('--vault-name <name>', 'name of the vault').option('--id <url>', 'the vault URL');
export const withMaxResults = (cmd: Command) => cmd.option('--maxresults <n>', 'maximum number of items to return', (v) => parsePositiveInt(v, '--maxresults'));

/** The fields a deleted object adds on the wire, as az prints them. */
export interface WireDeleted { recoveryId?: string; deletedDate?: number; scheduledPurgeDate?: number }
export const deletedFields = (o: WireDeleted) => ({
  deletedDate: isoTime(o.deletedDate), recoveryId: o.recoveryId ?? null, scheduledPurgeDate: isoTime(o.scheduledPurgeDate),
});

export function readFile(file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new CliError(`Cannot read '${file}': ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}
