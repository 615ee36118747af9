import type { ExpressionBuilder } from 'kysely';
import type { Clock } from '../clock.js';
import type { Database } from '../storage/schema.js';
import { inTransaction, type Storage } from '../storage/engine.js';
import type { ObjectEventKind, ObjectType } from './events.js';
import type { EventGrid } from './event-grid.js';
import { withEventTables } from './tables.js';

/** Azure's NearExpiry notice comes 30 days before exp. */
export const NEAR_EXPIRY_MS = 30 * 86_400_000;
/** A full scan at most this often (on the service clock, so an administrator's clock advance triggers one at once). */
const SCAN_EVERY_MS = 60_000;
/** Names read per statement of the scan (a few milliseconds of SQLite work each). */
const SCAN_CHUNK = 5_000;
const OBJECT_TYPE: Record<string, ObjectType> = { secrets: 'Secret', keys: 'Key', certificates: 'Certificate' };

/**
 * The scheduler job for expiry events (and the housekeeping of the event tables): the current version of every live
 * object with an exp gets NearExpiry from 30 days before exp and Expired from exp, each once per version and exp. The
 * notice row and the event's outbox rows are written in one transaction, so a crash can neither lose an event nor fire
 * it twice. Certificates' managed keys and secrets are left to their certificate's events.
 */
export function createExpiryEventsJob(deps: { storage: Storage; clock: Clock; events: EventGrid; scanChunk?: number }) {
  const scanChunk = deps.scanChunk ?? SCAN_CHUNK;
  const { storage, events } = deps;
  let lastScan = -Infinity;
  type Key = { vault_id: string; collection: string; name_key: string };
  /** The names' primary key compared with `key` (a row-value comparison, which both engines index). */
  const nameKey = (op: '>' | '<=', key: Key) => ({ eb, refTuple, tuple }: ExpressionBuilder<Database & { n: Database['object_names'] }, 'n'>) =>
    eb(refTuple('n.vault_id', 'n.collection', 'n.name_key'), op, tuple(key.vault_id, key.collection, key.name_key));

  /**
   * Every live object version with an `exp`, read in ranges of `scanChunk` names along the names' primary key, with a
   * turn of the event loop between ranges: with a million names the whole scan is ~240 ms of SQLite work, which in one
   * statement would stall every request of a SQLite node for as long.
   */
  async function expiringCandidates() {
    const candidates: (Key & { name: string; version: string; meta: string })[] = [];
    let after: Key | undefined;
    for (;;) {
      const from = after;
      // The last name of this range (an index-only walk of `scanChunk` keys); none when fewer remain.
      let boundaryQuery = storage.db.selectFrom('object_names as n').select(['n.vault_id', 'n.collection', 'n.name_key'])
        .orderBy('n.vault_id').orderBy('n.collection').orderBy('n.name_key').limit(1).offset(scanChunk - 1);
      let query = storage.db.selectFrom('object_names as n')
        .innerJoin('object_versions as v', (j) => j.onRef('v.seq', '=', 'n.current_seq'))
        .innerJoin('vaults', 'vaults.id', 'n.vault_id')
        .select(['n.vault_id', 'n.collection', 'n.name_key', 'n.name', 'v.version', 'v.meta'])
        .where('n.deleted_at', 'is', null).where('vaults.deleted_at', 'is', null)
        // A cheap pre-filter; the exp itself is read from the parsed meta.
        .where('v.meta', 'like', '%"exp":%');
      if (from) {
        boundaryQuery = boundaryQuery.where(nameKey('>', from));
        query = query.where(nameKey('>', from));
      }
      const boundary = await boundaryQuery.executeTakeFirst();
      if (boundary) {
        query = query.where(nameKey('<=', boundary));
      }
      candidates.push(...await query.execute());
      if (!boundary) return candidates;
      after = boundary;
      await new Promise((resume) => setImmediate(resume));
    }
  }

  return {
    name: 'expiry-events',
    async run(now: number) {
      if (now >= lastScan && now - lastScan < SCAN_EVERY_MS) return 0;
      lastScan = now;
      // A purged vault's subscriptions (and, by cascade, their undelivered events) go with it. Deleted by id, and only
      // when there are some: on PostgreSQL even a delete of no rows fires the cache-generation trigger (per statement),
      // which would empty every node's gate caches at each scan.
      const orphans = await withEventTables(storage.db).selectFrom('event_subscriptions').select('id')
        .where(({ not, exists, selectFrom }) => not(exists(selectFrom('vaults').select('vaults.id').whereRef('vaults.id', '=', 'event_subscriptions.vault_id'))))
        .execute();
      if (orphans.length) await withEventTables(storage.db).deleteFrom('event_subscriptions').where('id', 'in', orphans.map((o) => o.id)).execute();
      const candidates = await expiringCandidates();
      const due = candidates.flatMap((c) => {
        const meta = JSON.parse(c.meta) as { exp?: number; nbf?: number; managed?: boolean };
        const objectType = OBJECT_TYPE[c.collection];
        if (typeof meta.exp !== 'number' || !objectType || (meta.managed && c.collection !== 'certificates')) return [];
        const expMs = meta.exp * 1000;
        const kind: ObjectEventKind | undefined = now >= expMs ? 'Expired' : now >= expMs - NEAR_EXPIRY_MS ? 'NearExpiry' : undefined;
        return kind ? [{ ...c, meta, exp: meta.exp, objectType, kind }] : [];
      });
      if (!due.length) return 0;
      // What already fired is skipped without a write; the insert below still guards against a concurrent scan.
      const key = (n: { vault_id: string; collection: string; name_key: string; version: string; kind: string; exp: number }) =>
        [n.vault_id, n.collection, n.name_key, n.version, n.kind, Number(n.exp)].join('|');
      const db = withEventTables(storage.db);
      // Notices of objects that no longer exist (purged) are forgotten, so the table follows the objects.
      await db.deleteFrom('event_expiry_notices').where(({ not, exists, selectFrom }) => not(exists(selectFrom('object_names as n').select('n.vault_id')
        .whereRef('n.vault_id', '=', 'event_expiry_notices.vault_id').whereRef('n.collection', '=', 'event_expiry_notices.collection')
        .whereRef('n.name_key', '=', 'event_expiry_notices.name_key')))).execute();
      const fired = new Set((await db.selectFrom('event_expiry_notices').select(['vault_id', 'collection', 'name_key', 'version', 'kind', 'exp']).execute()).map(key));
      let count = 0;
      for (const d of due.filter((d) => !fired.has(key(d)))) {
        const enqueued = await inTransaction(storage, async (trx) => {
          const executor = withEventTables(trx);
          const notice = await executor.insertInto('event_expiry_notices').values({
            vault_id: d.vault_id, collection: d.collection, name_key: d.name_key, version: d.version, kind: d.kind, exp: d.exp, fired_at: now,
          }).onConflict((oc) => oc.doNothing()).executeTakeFirst();
          if (Number(notice.numInsertedOrUpdatedRows ?? 0) === 0) return undefined;
          return events.enqueueObjectEvent(executor, d.vault_id, d.objectType, d.kind, { name: d.name, version: d.version, meta: d.meta });
        });
        if (enqueued !== undefined) count++;
        if (enqueued) events.outbox.kick();
      }
      return count;
    },
  };
}
