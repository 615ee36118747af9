import type { Storage } from '../../storage/engine.js';
import type { Hsm } from './hsm.js';

/** How long a token key must stay unreferenced before it is destroyed: covers a key generated but not yet stored. */
const GRACE_MS = 60_000;
/** The job scans every key version; once a minute is plenty. */
const INTERVAL_MS = 60_000;

/**
 * Destroys the token objects of HSM keys that no key version references any more — the versions of a purged key
 * (by the purge operation, the scheduled purge or a purged vault alike), whichever path removed the rows. A token
 * key is destroyed only when it carries Coffer's label, has been unreferenced for a grace period (a key being
 * created exists in the token shortly before its version row does), and only while every HSM version records its
 * token id (`hsmId` in the version's metadata; versions written before that field existed make the job stand down).
 * A backup of a purged HSM key therefore no longer restores: purging destroys the key material, in the token too.
 */
export function createHsmCollectionJob(deps: { storage: Storage; hsm: Hsm }) {
  const { storage, hsm } = deps;
  const unreferencedSince = new Map<string, number>();
  let lastRun = -Infinity;
  return {
    name: 'collect-hsm-keys',
    async run(now: number) {
      if (now - lastRun < INTERVAL_MS) return 0;
      lastRun = now;
      // Soft-deleted keys count: they can still be recovered. (object_names by collection: migration 0009_keys's index.)
      const rows = await storage.db.selectFrom('object_names as n')
        .innerJoin('object_versions as v', (j) => j.onRef('v.vault_id', '=', 'n.vault_id')
          .onRef('v.collection', '=', 'n.collection').onRef('v.name_key', '=', 'n.name_key'))
        .select('v.meta').where('n.collection', '=', 'keys').where('v.meta', 'like', '%-HSM"%').execute();
      const referenced = new Set<string>();
      for (const row of rows) {
        const id = (JSON.parse(row.meta as string) as { hsmId?: string }).hsmId;
        if (!id) return 0;
        referenced.add(id);
      }
      let destroyed = 0;
      const present = new Set(await hsm.keyIds());
      for (const id of present) {
        if (referenced.has(id)) {
          unreferencedSince.delete(id);
          continue;
        }
        const since = unreferencedSince.get(id);
        if (since === undefined) unreferencedSince.set(id, now);
        else if (now - since >= GRACE_MS) {
          await hsm.destroy(id);
          unreferencedSince.delete(id);
          destroyed++;
        }
      }
      for (const id of unreferencedSince.keys()) if (!present.has(id)) unreferencedSince.delete(id);
      return destroyed;
    },
  };
}
