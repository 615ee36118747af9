import { sql, type Kysely } from 'kysely';
import type { StorageDialect, Storage } from './engine.js';
import { precompile } from './prepared.js';

/**
 * The cache generation: one counter row in `cache_generation`, bumped by a database trigger in the same transaction
 * as every INSERT, UPDATE or DELETE of a table the request gates read. Because the database bumps it — not the code
 * that writes — every write path counts, on every node and from every process, including write paths added later.
 * A node reads the counter once per request and reuses what it cached (principals, vaults, memberships, grant
 * decisions) only while the counter is unchanged, so a change committed anywhere is seen by the next request
 * everywhere, exactly as if nothing were cached.
 *
 * The rule: **a table a gate reads must have the generation trigger** (`addGenerationTrigger` in its migration).
 */
const TABLES_OF_0011 = [
  'principals', 'group_members', 'vaults', 'role_assignments', 'role_definitions',
  // the identity gate's trusted external issuers and the principals their subjects map to
  'trusted_issuers', 'trusted_issuer_subjects',
  // the network gate's: subnets of virtual-network rules, private endpoints, principals marked as trusted services
  'virtual_networks', 'subnets', 'private_endpoints', 'trusted_services',
] as const;

/**
 * Every table a gate reads (the test checks each has its trigger). Migration 0011 gave the trigger to the tables that
 * existed then; a table added later gets it in its own migration (`addGenerationTrigger`) and is listed here too.
 */
export const GATE_TABLES: readonly string[] = [
  ...TABLES_OF_0011,
  // Not a gate's, but read through the same cache (whether a vault has Event Grid subscriptions): migration 0012.
  'event_subscriptions',
];

/** Creates the trigger(s) that bump the cache generation on any change to `table` (the table must exist). */
export async function addGenerationTrigger(db: Kysely<any>, dialect: StorageDialect, table: string) {
  if (!/^[a-z_][a-z0-9_]*$/.test(table)) throw new Error(`not a table name: ${table}`);
  if (dialect === 'postgres') {
    // Statement-level: one bump per statement however many rows it touches (cascades included).
    await sql.raw(`create trigger ${table}_cache_generation after insert or update or delete or truncate on ${table}
      for each statement execute function coffer_bump_cache_generation()`).execute(db);
    return;
  }
  // SQLite has row-level triggers only; a bump per row is the same counter moving further.
  for (const event of ['insert', 'update', 'delete']) {
    await sql.raw(`create trigger ${table}_cache_generation_${event} after ${event} on ${table}
      begin update cache_generation set generation = generation + 1 where id = 1; end`).execute(db);
  }
}

/** Migration 0011: the counter row, PostgreSQL's bump function, and the trigger on each gate table. */
export async function createCacheGeneration(db: Kysely<any>, dialect: StorageDialect) {
  await db.schema.createTable('cache_generation')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('generation', dialect === 'postgres' ? 'bigint' : 'integer', (c) => c.notNull())
    .execute();
  await db.insertInto('cache_generation').values({ id: 1, generation: 0 }).execute();
  if (dialect === 'postgres') {
    await sql.raw(`create or replace function coffer_bump_cache_generation() returns trigger language plpgsql as $$
      begin update cache_generation set generation = generation + 1 where id = 1; return null; end $$`).execute(db);
  }
  // A fixed list: a migration must do the same thing on every database, whatever is added to GATE_TABLES later.
  for (const table of TABLES_OF_0011) await addGenerationTrigger(db, dialect, table);
}

/** Reads the current cache generation: one precompiled single-row primary-key read. */
export function createGenerationReader(storage: Storage): () => Promise<number> {
  const read = precompile<{ generation: number }, []>(storage.db, (_slot, db) => db.selectFrom('cache_generation').select('generation').where('id', '=', 1));
  return async () => Number((await read(storage.db))[0]?.generation);
}

export interface GenerationCache {
  /** Reads the generation (once per request, before any cached read) and drops every cached entry if it moved. */
  refresh(): Promise<void>;
  /**
   * `refresh`, unless the generation was read within the last `maxAgeMs`: for a reader that may run outside a request
   * (a scheduled job's write), which no gate refreshed for; inside a request it costs nothing, the gate having just read it.
   */
  refreshUnlessWithin(maxAgeMs: number): Promise<void>;
  /**
   * `load` memoised by key while the generation stays what `refresh` last read; at most `maxEntries` keys (the
   * memo starts over when full). Concurrent first reads of a key share one load.
   */
  memo<V>(load: (key: string) => Promise<V>, maxEntries: number): (key: string) => Promise<V>;
}

/**
 * Caches that the database validates. An entry is filled only by a load that started after the current epoch
 * began, and an epoch begins only after its generation was read, so an entry is never older than the generation it
 * is served under; a load still running when the generation moves fills the abandoned epoch, never the new one.
 */
export function createGenerationCache(deps: { readGeneration: () => Promise<number> }): GenerationCache {
  let generation: number | undefined;
  let epoch = new Map<object, Map<string, Promise<unknown>>>();
  // When the generation was last read (monotonic: the service clock can be moved by an administrator).
  let readAt = -Infinity;
  async function refresh() {
    const startedAt = performance.now();
    const now = await deps.readGeneration();
    readAt = Math.max(readAt, startedAt);
    if (now !== generation) {
      generation = now;
      epoch = new Map();
    }
  }
  return {
    refresh,
    async refreshUnlessWithin(maxAgeMs: number) {
      if (performance.now() - readAt > maxAgeMs) await refresh();
    },
    memo<V>(load: (key: string) => Promise<V>, maxEntries: number) {
      const id = {};
      return (key: string) => {
        let entries = epoch.get(id) as Map<string, Promise<V>> | undefined;
        if (!entries) epoch.set(id, (entries = new Map()));
        const hit = entries.get(key);
        if (hit) return hit;
        if (entries.size >= maxEntries) entries.clear();
        const loading = load(key);
        entries.set(key, loading);
        const filled = entries;
        // A failed load is not remembered: the next request tries again.
        loading.catch(() => { if (filled.get(key) === loading) filled.delete(key); });
        return loading;
      };
    },
  };
}
