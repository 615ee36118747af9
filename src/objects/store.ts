import crypto from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { Storage } from '../storage/engine.js';
import type { Database } from '../storage/schema.js';
import { groupCommit } from '../storage/group-commit.js';
import { precompile } from '../storage/prepared.js';
import type { Keyring } from '../crypto/envelope.js';
import type { Clock } from '../clock.js';

/**
 * The versioned object store shared by the three collections (secrets, keys, certificates).
 * A name row holds the lifecycle (current version, soft-delete state); version rows are immutable apart from their
 * attributes, and each payload is sealed with the vault's data key under its identity `vault/collection/name/version`.
 * Correctness under concurrency comes from the database: the name row is locked (an UPDATE) inside the transaction
 * that adds a version, so concurrent writers each get their own version and a soft-deleted name cannot be reused.
 */
export type Collection = 'secrets' | 'keys' | 'certificates';

/** Attributes and metadata of a version; collection-specific fields ride along in the same document. */
export interface VersionMeta {
  enabled: boolean;
  nbf?: number;
  exp?: number;
  tags?: Record<string, string>;
  contentType?: string;
  managed?: boolean;
  previousVersion?: string;
  [field: string]: unknown;
}

export interface VaultRef {
  id: string;
  wrappedDataKey: Buffer;
}

export interface StoredVersion {
  name: string;
  version: string;
  seq: number;
  meta: VersionMeta;
  created: number;
  updated: number;
  /** Decrypts the payload on demand: listing and metadata reads never open a value. */
  open(): Buffer;
}

export interface DeletedObject {
  name: string;
  deletedAt: number;
  scheduledPurgeAt: number;
  current: StoredVersion;
}

export interface Page<T> {
  items: T[];
  /** Opaque continuation token for the next page, if any. */
  next?: string;
}

export type StoreFailure = 'NotFound' | 'DeletedButRecoverable' | 'AlreadyExists' | 'NotDeleted' | 'BadContinuation' | 'ManagedByKeyVault';

export class StoreError extends Error {
  constructor(readonly reason: StoreFailure, message: string) {
    super(message);
  }
}

/**
 * Work joined to the transaction that adds a version (its Event Grid event in the outbox): the version and that work
 * are committed together or not at all.
 */
export interface VersionWriteHook {
  /** Runs in the version's transaction once the version is written; a throw undoes the version too. */
  afterInsert(trx: Kysely<Database>, created: StoredVersion): Promise<void>;
  /** Runs once that transaction is durable (e.g. to start delivering the event). */
  afterCommit(): void;
}

export interface CreateOptions {
  /** Given only by certificates, whose managed key and secret share the certificate's version id. */
  version?: string;
  hook?: VersionWriteHook;
}

export interface BackupVersion {
  version: string;
  meta: VersionMeta;
  created: number;
  updated: number;
  payload: Buffer;
}

const newVersionId = () => crypto.randomBytes(16).toString('hex');
const encodeCursor = (value: string | number) => Buffer.from(JSON.stringify({ after: value })).toString('base64url');

function decodeCursor<T extends string | number>(token: string | undefined, type: 'string' | 'number'): T | undefined {
  if (!token) return undefined;
  try {
    const after = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')).after;
    if (typeof after === type) return after as T;
  } catch { /* reported below */ }
  throw new StoreError('BadContinuation', 'The continuation token ($skiptoken) is not valid.');
}

export interface ObjectStore {
  /**
   * Adds a version (the name's current one). Refused with ManagedByKeyVault when the current version is managed by a
   * certificate and the new one is not: only the certificate writes its key's and secret's versions.
   */
  create(vault: VaultRef, collection: Collection, name: string, payload: Buffer, meta: VersionMeta, options?: CreateOptions): Promise<StoredVersion>;
  get(vault: VaultRef, collection: Collection, name: string, version?: string): Promise<StoredVersion | undefined>;
  updateMeta(vault: VaultRef, collection: Collection, name: string, version: string | undefined,
    patch: (meta: VersionMeta) => VersionMeta): Promise<StoredVersion | undefined>;
  list(vault: VaultRef, collection: Collection, opts: { maxResults: number; continuation?: string }): Promise<Page<StoredVersion>>;
  listVersions(vault: VaultRef, collection: Collection, name: string, opts: { maxResults: number; continuation?: string }): Promise<Page<StoredVersion> | undefined>;
  softDelete(vault: VaultRef, collection: Collection, name: string, retentionDays: number): Promise<DeletedObject | undefined>;
  getDeleted(vault: VaultRef, collection: Collection, name: string): Promise<DeletedObject | undefined>;
  listDeleted(vault: VaultRef, collection: Collection, opts: { maxResults: number; continuation?: string }): Promise<Page<DeletedObject>>;
  recover(vault: VaultRef, collection: Collection, name: string): Promise<StoredVersion | undefined>;
  purge(vault: VaultRef, collection: Collection, name: string): Promise<boolean>;
  exportVersions(vault: VaultRef, collection: Collection, name: string): Promise<BackupVersion[] | undefined>;
  importVersions(vault: VaultRef, collection: Collection, name: string, versions: BackupVersion[]): Promise<StoredVersion>;
  /** Purges every soft-deleted object whose scheduled purge date has passed; returns how many. */
  purgeDue(now: number): Promise<number>;
}

type VersionRow = { name: string; version: string; seq: number; meta: string; payload: Buffer; created_at: number; updated_at: number; name_key: string };

export function createObjectStore(deps: { storage: Storage; keyring: Keyring; clock: Clock }): ObjectStore {
  const { storage, keyring, clock } = deps;
  const db = storage.db;
  const identity = (vault: VaultRef, collection: Collection, nameKey: string, version: string) =>
    `${vault.id}/${collection}/${nameKey}/${version}`;

  const toVersion = (vault: VaultRef, collection: Collection, row: VersionRow): StoredVersion => ({
    name: row.name,
    version: row.version,
    seq: Number(row.seq),
    meta: JSON.parse(row.meta),
    created: Number(row.created_at),
    updated: Number(row.updated_at),
    open: () => keyring.openValue(vault.id, vault.wrappedDataKey, identity(vault, collection, row.name_key, row.version), row.payload),
  });

  const versionColumns = ['n.name', 'n.name_key', 'v.version', 'v.seq', 'v.meta', 'v.payload', 'v.created_at', 'v.updated_at'] as const;

  /** Live (not deleted) name joined with one of its versions: the current one unless `version` (lower-case) is given. */
  function liveVersionQuery(executor: typeof db, vaultId: string, collection: Collection, nameKey: string, version?: string) {
    let q = executor.selectFrom('object_names as n')
      .innerJoin('object_versions as v', (j) => j.onRef('v.vault_id', '=', 'n.vault_id')
        .onRef('v.collection', '=', 'n.collection').onRef('v.name_key', '=', 'n.name_key'))
      .select(versionColumns)
      .where('n.vault_id', '=', vaultId).where('n.collection', '=', collection).where('n.name_key', '=', nameKey)
      .where('n.deleted_at', 'is', null);
    q = version !== undefined ? q.where('v.version', '=', version) : q.whereRef('v.seq', '=', 'n.current_seq');
    return q;
  }

  // The statements of every read and write of one object, built and compiled once (see precompile).
  const statements = {
    current: precompile<VersionRow, [string, Collection, string]>(db, (p) => liveVersionQuery(db, p(0), p(1), p(2))),
    atVersion: precompile<VersionRow, [string, Collection, string, string]>(db, (p) => liveVersionQuery(db, p(0), p(1), p(2), p(3))),
    // Creates the name row if new, else locks it (a no-op update) for the rest of the transaction; tells its state.
    claimName: precompile<{ name: string; current_seq: number | null; deleted_at: number | null }, [string, Collection, string, string]>(db, (p) =>
      db.insertInto('object_names').values({
        vault_id: p(0), collection: p(1), name_key: p(2), name: p(3), current_seq: null, deleted_at: null, scheduled_purge_at: null,
      }).onConflict((oc) => oc.columns(['vault_id', 'collection', 'name_key']).doUpdateSet({ name: sql`object_names.name` }))
        .returning(['name', 'current_seq', 'deleted_at'])),
    versionAtSeq: precompile<{ version: string; meta: string }, [number]>(db, (p) =>
      db.selectFrom('object_versions').select(['version', 'meta']).where('seq', '=', p<number>(0))),
    insertVersion: precompile<{ seq: number }, [string, Collection, string, string, Buffer, string, number, number]>(db, (p) =>
      db.insertInto('object_versions').values({
        vault_id: p(0), collection: p(1), name_key: p(2), version: p(3), payload: p<Buffer>(4), meta: p(5), created_at: p<number>(6), updated_at: p<number>(7),
      }).returning('seq')),
    // A page of live names with their current versions, after a cursor ('' before every name).
    page: precompile<VersionRow, [string, Collection, string, number]>(db, (p) => db.selectFrom('object_names as n')
      .innerJoin('object_versions as v', (j) => j.onRef('v.seq', '=', 'n.current_seq'))
      .select(versionColumns)
      .where('n.vault_id', '=', p(0)).where('n.collection', '=', p(1)).where('n.deleted_at', 'is', null)
      .where('n.name_key', '>', p(2))
      .orderBy('n.name_key').limit(p<number>(3))),
    setCurrent: precompile<unknown, [number, string, Collection, string]>(db, (p) =>
      db.updateTable('object_names').set({ current_seq: p<number>(0) })
        .where('vault_id', '=', p(1)).where('collection', '=', p(2)).where('name_key', '=', p(3))),
  };
  const readVersion = async (executor: typeof db, vault: VaultRef, collection: Collection, nameKey: string, version?: string) =>
    (version === undefined
      ? await statements.current(executor, vault.id, collection, nameKey)
      : await statements.atVersion(executor, vault.id, collection, nameKey, version.toLowerCase()))[0];
  // Object writes share the storage's group commit (one transaction and fsync per batch on SQLite).
  const commits = groupCommit(storage);

  async function insertVersions(trx: typeof db, vault: VaultRef, collection: Collection, name: string,
    versions: { version: string; meta: VersionMeta; created: number; updated: number; payload: Buffer }[], mustBeNew: boolean) {
    const nameKey = name.toLowerCase();
    const [locked] = await statements.claimName(trx, vault.id, collection, nameKey, name);
    if (locked.deleted_at !== null) {
      throw new StoreError('DeletedButRecoverable', `${name} is currently in a deleted but recoverable state`);
    }
    if (mustBeNew && locked.current_seq !== null) throw new StoreError('AlreadyExists', `${name} already exists`);
    if (!mustBeNew && locked.current_seq !== null) {
      // Read under the lock: a concurrent writer's version is either fully before ours or fully after.
      const [previous] = await statements.versionAtSeq(trx, Number(locked.current_seq));
      if (!versions[0].meta.managed && (JSON.parse(previous.meta) as VersionMeta).managed) {
        throw new StoreError('ManagedByKeyVault', `${name} is managed by a certificate`);
      }
      versions = versions.map((v, i) => (i === 0 ? { ...v, meta: { ...v.meta, previousVersion: previous.version } } : v));
    }
    let last: VersionRow | undefined;
    for (const v of versions) {
      const sealed = keyring.sealValue(vault.id, vault.wrappedDataKey, identity(vault, collection, nameKey, v.version), v.payload);
      const meta = JSON.stringify(v.meta);
      const [inserted] = await statements.insertVersion(trx, vault.id, collection, nameKey, v.version, sealed, meta, v.created, v.updated);
      last = { name: locked.name, name_key: nameKey, version: v.version, seq: Number(inserted.seq), meta, payload: sealed, created_at: v.created, updated_at: v.updated };
    }
    await statements.setCurrent(trx, last!.seq, vault.id, collection, nameKey);
    return toVersion(vault, collection, last!);
  }

  async function deletedRow(executor: typeof db, vault: VaultRef, collection: Collection, nameKey: string) {
    return executor.selectFrom('object_names as n')
      .innerJoin('object_versions as v', (j) => j.onRef('v.seq', '=', 'n.current_seq'))
      .select([...versionColumns, 'n.deleted_at', 'n.scheduled_purge_at'])
      .where('n.vault_id', '=', vault.id).where('n.collection', '=', collection).where('n.name_key', '=', nameKey)
      .where('n.deleted_at', 'is not', null).executeTakeFirst();
  }

  const toDeleted = (vault: VaultRef, collection: Collection, row: VersionRow & { deleted_at: number | null; scheduled_purge_at: number | null }): DeletedObject => ({
    name: row.name,
    deletedAt: Number(row.deleted_at),
    scheduledPurgeAt: Number(row.scheduled_purge_at),
    current: toVersion(vault, collection, row),
  });

  return {
    async create(vault, collection, name, payload, meta, { version, hook } = {}) {
      const now = clock.now();
      const created = await commits.run(async (trx) => {
        const inserted = await insertVersions(trx, vault, collection, name, [{ version: version ?? newVersionId(), meta, created: now, updated: now, payload }], false);
        await hook?.afterInsert(trx, inserted);
        return inserted;
      });
      hook?.afterCommit();
      return created;
    },

    async get(vault, collection, name, version) {
      const row = await readVersion(db, vault, collection, name.toLowerCase(), version);
      return row && toVersion(vault, collection, row);
    },

    async updateMeta(vault, collection, name, version, patch) {
      return commits.run(async (trx) => {
        const row = await readVersion(trx, vault, collection, name.toLowerCase(), version);
        if (!row) return undefined;
        const meta = JSON.stringify(patch(JSON.parse(row.meta)));
        const updated = clock.now();
        await trx.updateTable('object_versions').set({ meta, updated_at: updated }).where('seq', '=', row.seq).execute();
        return toVersion(vault, collection, { ...row, meta, updated_at: updated });
      });
    },

    async list(vault, collection, { maxResults, continuation }) {
      const after = decodeCursor<string>(continuation, 'string');
      // Every name key sorts after '' (names are never empty).
      const rows = await statements.page(db, vault.id, collection, after ?? '', maxResults + 1);
      const items = rows.slice(0, maxResults).map((r) => toVersion(vault, collection, r));
      return { items, next: rows.length > maxResults ? encodeCursor(rows[maxResults - 1].name_key) : undefined };
    },

    async listVersions(vault, collection, name, { maxResults, continuation }) {
      const after = decodeCursor<number>(continuation, 'number');
      const nameKey = name.toLowerCase();
      let q = db.selectFrom('object_names as n')
        .innerJoin('object_versions as v', (j) => j.onRef('v.vault_id', '=', 'n.vault_id')
          .onRef('v.collection', '=', 'n.collection').onRef('v.name_key', '=', 'n.name_key'))
        .select(versionColumns)
        .where('n.vault_id', '=', vault.id).where('n.collection', '=', collection).where('n.name_key', '=', nameKey)
        .where('n.deleted_at', 'is', null)
        .orderBy('v.seq').limit(maxResults + 1);
      if (after !== undefined) q = q.where('v.seq', '>', after);
      const rows = (await q.execute()) as VersionRow[];
      if (!rows.length && after === undefined) return undefined;
      const items = rows.slice(0, maxResults).map((r) => toVersion(vault, collection, r));
      return { items, next: rows.length > maxResults ? encodeCursor(Number(rows[maxResults - 1].seq)) : undefined };
    },

    async softDelete(vault, collection, name, retentionDays) {
      const now = clock.now();
      const nameKey = name.toLowerCase();
      return commits.run(async (trx) => {
        const result = await trx.updateTable('object_names')
          .set({ deleted_at: now, scheduled_purge_at: now + retentionDays * 86_400_000 })
          .where('vault_id', '=', vault.id).where('collection', '=', collection).where('name_key', '=', nameKey)
          .where('deleted_at', 'is', null).where('current_seq', 'is not', null)
          .executeTakeFirst();
        if (Number(result.numUpdatedRows) === 0) return undefined;
        const row = await deletedRow(trx, vault, collection, nameKey);
        return row && toDeleted(vault, collection, row as any);
      });
    },

    async getDeleted(vault, collection, name) {
      const row = await deletedRow(db, vault, collection, name.toLowerCase());
      return row && toDeleted(vault, collection, row as any);
    },

    async listDeleted(vault, collection, { maxResults, continuation }) {
      const after = decodeCursor<string>(continuation, 'string');
      let q = db.selectFrom('object_names as n')
        .innerJoin('object_versions as v', (j) => j.onRef('v.seq', '=', 'n.current_seq'))
        .select([...versionColumns, 'n.deleted_at', 'n.scheduled_purge_at'])
        .where('n.vault_id', '=', vault.id).where('n.collection', '=', collection).where('n.deleted_at', 'is not', null)
        .orderBy('n.name_key').limit(maxResults + 1);
      if (after !== undefined) q = q.where('n.name_key', '>', after);
      const rows = await q.execute();
      const items = rows.slice(0, maxResults).map((r) => toDeleted(vault, collection, r as any));
      return { items, next: rows.length > maxResults ? encodeCursor(rows[maxResults - 1].name_key) : undefined };
    },

    async recover(vault, collection, name) {
      const nameKey = name.toLowerCase();
      return commits.run(async (trx) => {
        const result = await trx.updateTable('object_names').set({ deleted_at: null, scheduled_purge_at: null })
          .where('vault_id', '=', vault.id).where('collection', '=', collection).where('name_key', '=', nameKey)
          .where('deleted_at', 'is not', null).executeTakeFirst();
        if (Number(result.numUpdatedRows) === 0) return undefined;
        const row = await readVersion(trx, vault, collection, nameKey);
        return toVersion(vault, collection, row);
      });
    },

    async purge(vault, collection, name) {
      const result = await db.deleteFrom('object_names')
        .where('vault_id', '=', vault.id).where('collection', '=', collection).where('name_key', '=', name.toLowerCase())
        .where('deleted_at', 'is not', null).executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    },

    async exportVersions(vault, collection, name) {
      const nameKey = name.toLowerCase();
      const rows = (await db.selectFrom('object_names as n')
        .innerJoin('object_versions as v', (j) => j.onRef('v.vault_id', '=', 'n.vault_id')
          .onRef('v.collection', '=', 'n.collection').onRef('v.name_key', '=', 'n.name_key'))
        .select(versionColumns)
        .where('n.vault_id', '=', vault.id).where('n.collection', '=', collection).where('n.name_key', '=', nameKey)
        .where('n.deleted_at', 'is', null).orderBy('v.seq').execute()) as VersionRow[];
      if (!rows.length) return undefined;
      return rows.map((r) => {
        const v = toVersion(vault, collection, r);
        return { version: v.version, meta: v.meta, created: v.created, updated: v.updated, payload: v.open() };
      });
    },

    async importVersions(vault, collection, name, versions) {
      return commits.run((trx) => insertVersions(trx, vault, collection, name, versions, true));
    },

    async purgeDue(now) {
      const result = await db.deleteFrom('object_names')
        .where('deleted_at', 'is not', null).where('scheduled_purge_at', '<=', now).executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}
