import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { seal, open, EnvelopeError } from './envelope.js';
import type { SettingsRepository } from '../storage/settings.js';
import { tokenSealedRootKey, type TokenSealer } from './seal-pkcs11.js';

/**
 * The seal yields the root key. `file`: a random 256-bit key in `{dataDir}/root.key` (0600) — every node of a
 * cluster needs the same file. `passphrase`: derived from `COFFER_SEAL_PASSPHRASE` with scrypt and a salt kept in
 * the database, so nodes share it by sharing the passphrase. `pkcs11`: a random key kept in the database wrapped by
 * an AES key inside the PKCS#11 token (seal-pkcs11.ts), so no root key is on disk. A check value in the database refuses a wrong root key
 * before anything is written with it.
 */
export const SEAL_KINDS = ['file', 'passphrase', 'pkcs11'] as const;
export type SealKind = typeof SEAL_KINDS[number];

export interface SealOptions {
  kind: SealKind;
  dataDir: string;
  passphrase?: string;
  /** The PKCS#11 token of the `pkcs11` seal (the one configured with --pkcs11-module). */
  token?: TokenSealer;
}

const CHECK_PLAINTEXT = Buffer.from('coffer root key check v1');
const SCRYPT = { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };

export class SealError extends Error {}

export async function unsealRootKey(opts: SealOptions, settings: SettingsRepository): Promise<Buffer> {
  // `--seal` and COFFER_SEAL reach here unchecked: an unknown kind must not quietly become the file seal (and be
  // recorded as the database's seal kind).
  if (!(SEAL_KINDS as readonly string[]).includes(opts.kind)) throw new SealError(`unknown seal '${opts.kind}': use ${SEAL_KINDS.join(', ')}`);
  const rootKey = opts.kind === 'passphrase' ? await passphraseKey(opts, settings)
    : opts.kind === 'pkcs11' ? await pkcs11Key(opts, settings)
      : fileKey(opts.dataDir);
  const check = await settings.get('seal.check');
  if (check) {
    try {
      open(rootKey, 'root-key-check', Buffer.from(check, 'base64'));
    } catch (err) {
      if (err instanceof EnvelopeError) throw new SealError(`the ${opts.kind} seal does not open this database (wrong root key)`);
      throw err;
    }
  } else {
    await settings.putIfAbsent('seal.check', seal(rootKey, 'root-key-check', CHECK_PLAINTEXT).toString('base64'));
    await settings.putIfAbsent('seal.kind', opts.kind);
  }
  return rootKey;
}

function fileKey(dataDir: string): Buffer {
  const file = path.join(dataDir, 'root.key');
  if (!fs.existsSync(file)) {
    fs.mkdirSync(dataDir, { recursive: true });
    try {
      fs.writeFileSync(file, crypto.randomBytes(32).toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
    } catch (err: any) {
      if (err.code !== 'EEXIST') throw err;
    }
  }
  const key = Buffer.from(fs.readFileSync(file, 'utf8').trim(), 'base64');
  if (key.length !== 32) throw new SealError(`${file} does not hold a 256-bit key`);
  return key;
}

async function pkcs11Key(opts: SealOptions, settings: SettingsRepository): Promise<Buffer> {
  if (!opts.token) throw new SealError('the pkcs11 seal needs a PKCS#11 token (--pkcs11-module)');
  try {
    return await tokenSealedRootKey(opts.token, settings);
  } catch (err) {
    throw new SealError(`the pkcs11 seal could not open the root key: ${(err as Error).message}`);
  }
}

async function passphraseKey(opts: SealOptions, settings: SettingsRepository): Promise<Buffer> {
  if (!opts.passphrase) throw new SealError('the passphrase seal needs COFFER_SEAL_PASSPHRASE');
  await settings.putIfAbsent('seal.salt', crypto.randomBytes(16).toString('base64'));
  const salt = Buffer.from((await settings.get('seal.salt'))!, 'base64');
  return await new Promise((resolve, reject) =>
    crypto.scrypt(opts.passphrase!, salt, 32, SCRYPT, (err, key) => (err ? reject(err) : resolve(key))));
}
