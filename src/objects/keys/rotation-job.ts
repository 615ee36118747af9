import type { Storage } from '../../storage/engine.js';
import { liveObjectsMentioning } from '../scheduled-candidates.js';
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
      const candidates = await liveObjectsMentioning(storage, 'keys', ['"rotationPolicy"']);
      let rotated = 0;
      for (const c of candidates) {
        if (await keys.rotateIfDue({ id: c.id, wrappedDataKey: c.wrapped_data_key }, c.name, now)) rotated++;
      }
      return rotated;
    },
  };
}
