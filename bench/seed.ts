/**
 * Bulk-seeds secrets into a vault of a Coffer data dir (SQLite), for the scale scenario. It unseals the root key and
 * seals every value with the vault's data key exactly as the object store does (AES-256-GCM bound to the identity
 * `vault/collection/name/version`), so seeded secrets are real, readable secrets; only the statements are batched:
 * plain prepared INSERTs in transactions of 50,000 rows instead of one store transaction (and fsync) per secret.
 * The benchmark reads a seeded secret back over HTTP afterwards, which checks the seeding against the real read path.
 */
import crypto from 'node:crypto';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { openStorage } from '../src/storage/engine.js';
import { createSettingsRepository } from '../src/storage/settings.js';
import { unsealRootKey } from '../src/crypto/seal.js';
import { createKeyring } from '../src/crypto/envelope.js';

export const seededName = (i: number) => `seeded-${String(i).padStart(7, '0')}`;

/** Adds secrets `seeded-{from}` … `seeded-{to - 1}` (32-byte values) to `vaultName`. */
export async function seedSecrets(opts: { dataDir: string; vaultName: string; from: number; to: number; onProgress?: (done: number) => void }) {
  const storage = await openStorage({ dataDir: opts.dataDir });
  let vaultId: string;
  let wrapped: Buffer;
  let keyring: ReturnType<typeof createKeyring>;
  try {
    const rootKey = await unsealRootKey({ kind: 'file', dataDir: opts.dataDir }, createSettingsRepository(storage.db));
    keyring = createKeyring(rootKey);
    rootKey.fill(0);
    const vault = await storage.db.selectFrom('vaults').select(['id', 'wrapped_data_key'])
      .where('name_key', '=', opts.vaultName.toLowerCase()).where('deleted_at', 'is', null).executeTakeFirstOrThrow();
    vaultId = vault.id;
    wrapped = vault.wrapped_data_key;
  } finally {
    await storage.close();
  }

  const db = new SQLite(path.join(opts.dataDir, 'coffer.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('busy_timeout = 5000');
  // A bulk load that is simply redone if the machine dies: no fsync per batch (the server keeps synchronous=FULL).
  db.pragma('synchronous = OFF');
  const insertName = db.prepare(`insert into object_names (vault_id, collection, name_key, name, current_seq, deleted_at, scheduled_purge_at)
    values (?, 'secrets', ?, ?, null, null, null)`);
  const insertVersion = db.prepare(`insert into object_versions (vault_id, collection, name_key, version, payload, meta, created_at, updated_at)
    values (?, 'secrets', ?, ?, ?, '{"enabled":true}', ?, ?)`);
  const setCurrent = db.prepare(`update object_names set current_seq = ? where vault_id = ? and collection = 'secrets' and name_key = ?`);
  const batch = db.transaction((from: number, to: number) => {
    const now = Date.now();
    for (let i = from; i < to; i++) {
      const name = seededName(i);
      const nameKey = name.toLowerCase();
      const version = crypto.randomBytes(16).toString('hex');
      const payload = keyring.sealValue(vaultId, wrapped, `${vaultId}/secrets/${nameKey}/${version}`, crypto.randomBytes(24));
      insertName.run(vaultId, nameKey, name);
      const { lastInsertRowid } = insertVersion.run(vaultId, nameKey, version, payload, now, now);
      setCurrent.run(lastInsertRowid, vaultId, nameKey);
    }
  });
  try {
    for (let i = opts.from; i < opts.to; i += 50_000) {
      batch(i, Math.min(opts.to, i + 50_000));
      opts.onProgress?.(Math.min(opts.to, i + 50_000) - opts.from);
    }
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
}
