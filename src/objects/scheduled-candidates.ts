import type { Storage } from '../storage/engine.js';

/**
 * The live objects of a collection (in live vaults) whose current version's metadata mentions any of `metaMarkers`:
 * the candidates a scheduler job offers to its service. The text match is only a cheap pre-filter; the service reads
 * the policy itself and decides.
 */
export function liveObjectsMentioning(storage: Storage, collection: 'keys' | 'certificates', metaMarkers: string[]) {
  return storage.db.selectFrom('object_names as n')
    .innerJoin('object_versions as v', (j) => j.onRef('v.seq', '=', 'n.current_seq'))
    .innerJoin('vaults', 'vaults.id', 'n.vault_id')
    .select(['n.name', 'vaults.id', 'vaults.name as vault_name', 'vaults.wrapped_data_key'])
    .where('n.collection', '=', collection).where('n.deleted_at', 'is', null).where('vaults.deleted_at', 'is', null)
    .where((eb) => eb.or(metaMarkers.map((marker) => eb('v.meta', 'like', `%${marker}%`))))
    .execute();
}
