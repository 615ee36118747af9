import type { Storage } from '../../storage/engine.js';
import type { KeysService } from './service.js';

/**
 * The scheduler job for automatic rotation: every live key whose current version carries a rotation policy is
 * offered to the keys service, which rotates it if the policy's Rotate action is due. Returns how many rotated.
 */
export function createKeyRotationJob(deps: { storage: Storage; keys: KeysService }) {
  const { storage, keys } = deps;
  return {
    name: 'rotate-keys',
    async run(now: number) {
      const candidates = await storage.db.selectFrom('object_names as n')
        .innerJoin('object_versions as v', (j) => j.onRef('v.seq', '=', 'n.current_seq'))
        .innerJoin('vaults', 'vaults.id', 'n.vault_id')
        .select(['n.name', 'vaults.id', 'vaults.wrapped_data_key'])
        .where('n.collection', '=', 'keys').where('n.deleted_at', 'is', null).where('vaults.deleted_at', 'is', null)
        // A cheap pre-filter; the service reads the policy itself.
        .where('v.meta', 'like', '%"rotationPolicy"%')
        .execute();
      let rotated = 0;
      for (const c of candidates) {
        if (await keys.rotateIfDue({ id: c.id, wrappedDataKey: c.wrapped_data_key }, c.name, now)) rotated++;
      }
      return rotated;
    },
  };
}
