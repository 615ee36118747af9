import type { Clock } from '../clock.js';
import { inTransaction, type Storage } from '../storage/engine.js';
import type { ObjectEventKind, ObjectType } from './events.js';
import type { EventGrid } from './event-grid.js';
import { withEventTables } from './tables.js';

/** Azure's NearExpiry notice comes 30 days before exp. */
export const NEAR_EXPIRY_MS = 30 * 86_400_000;
/** A full scan at most this often (on the service clock, so an administrator's clock advance triggers one at once). */
const SCAN_EVERY_MS = 60_000;
const OBJECT_TYPE: Record<string, ObjectType> = { secrets: 'Secret', keys: 'Key', certificates: 'Certificate' };

/**
 * The scheduler job for expiry events: the current version of every live object with an exp gets NearExpiry from 30
 * days before exp and Expired from exp, each once per version and exp. The notice row and the event's outbox rows are
 * written in one transaction, so a crash can neither lose an event nor fire it twice. Certificates' managed keys and
 * secrets are left to their certificate's events.
 */
export function createExpiryEventsJob(deps: { storage: Storage; clock: Clock; events: EventGrid }) {
  const { storage, events } = deps;
  let lastScan = -Infinity;
  return {
    name: 'expiry-events',
    async run(now: number) {
      if (now >= lastScan && now - lastScan < SCAN_EVERY_MS) return 0;
      lastScan = now;
      const candidates = await storage.db.selectFrom('object_names as n')
        .innerJoin('object_versions as v', (j) => j.onRef('v.seq', '=', 'n.current_seq'))
        .innerJoin('vaults', 'vaults.id', 'n.vault_id')
        .select(['n.vault_id', 'n.collection', 'n.name_key', 'n.name', 'v.version', 'v.meta'])
        .where('n.deleted_at', 'is', null).where('vaults.deleted_at', 'is', null)
        // A cheap pre-filter; the exp itself is read from the parsed meta.
        .where('v.meta', 'like', '%"exp":%')
        .execute();
      let fired = 0;
      for (const c of candidates) {
        const meta = JSON.parse(c.meta) as { exp?: number; nbf?: number; managed?: boolean };
        const objectType = OBJECT_TYPE[c.collection];
        if (typeof meta.exp !== 'number' || !objectType || (meta.managed && c.collection !== 'certificates')) continue;
        const expMs = meta.exp * 1000;
        const kind: ObjectEventKind | undefined = now >= expMs ? 'Expired' : now >= expMs - NEAR_EXPIRY_MS ? 'NearExpiry' : undefined;
        if (!kind) continue;
        const enqueued = await inTransaction(storage, async (trx) => {
          const db = withEventTables(trx);
          const notice = await db.insertInto('event_expiry_notices').values({
            vault_id: c.vault_id, collection: c.collection, name_key: c.name_key, version: c.version, kind, exp: meta.exp!, fired_at: now,
          }).onConflict((oc) => oc.doNothing()).executeTakeFirst();
          if (Number(notice.numInsertedOrUpdatedRows ?? 0) === 0) return undefined;
          return events.enqueueObjectEvent(db, c.vault_id, objectType, kind, { name: c.name, version: c.version, meta });
        });
        if (enqueued !== undefined) fired++;
        if (enqueued) events.outbox.kick();
      }
      return fired;
    },
  };
}
