import type { Storage } from '../../storage/engine.js';
import type { CertificatesService } from './service.js';

/**
 * The scheduler job for automatic renewal: every live certificate whose policy has an AutoRenew action is offered to
 * the certificates service, which renews it if the action is due. Returns how many were renewed.
 */
export function createCertificateRenewalJob(deps: { storage: Storage; certificates: CertificatesService }) {
  const { storage, certificates } = deps;
  return {
    name: 'renew-certificates',
    async run(now: number) {
      const candidates = await storage.db.selectFrom('object_names as n')
        .innerJoin('object_versions as v', (j) => j.onRef('v.seq', '=', 'n.current_seq'))
        .innerJoin('vaults', 'vaults.id', 'n.vault_id')
        .select(['n.name', 'vaults.id', 'vaults.name as vault_name', 'vaults.wrapped_data_key'])
        .where('n.collection', '=', 'certificates').where('n.deleted_at', 'is', null).where('vaults.deleted_at', 'is', null)
        // A cheap pre-filter; the service reads the policy itself.
        .where('v.meta', 'like', '%"AutoRenew"%')
        .execute();
      let renewed = 0;
      for (const c of candidates) {
        const vault = { id: c.id, name: c.vault_name, wrappedDataKey: c.wrapped_data_key };
        if (await certificates.renewIfDue(vault, c.name, now)) renewed++;
      }
      return renewed;
    },
  };
}
