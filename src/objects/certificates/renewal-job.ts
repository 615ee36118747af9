import type { Storage } from '../../storage/engine.js';
import { liveObjectsMentioning } from '../scheduled-candidates.js';
import type { CertificatesService } from './service.js';
import type { CertificateNotifications } from './notifications.js';

/**
 * The scheduler job for certificates' lifetime actions: every live certificate whose policy has one is offered to the
 * certificates service, which says whether an email notice is due (sent to the contacts' outbox first, so it names
 * the expiring version) and renews the certificate if its AutoRenew action is due. Returns what it did.
 */
export function createCertificateRenewalJob(deps: { storage: Storage; certificates: CertificatesService; notifications?: CertificateNotifications }) {
  const { storage, certificates, notifications } = deps;
  return {
    name: 'renew-certificates',
    async run(now: number) {
      const candidates = await liveObjectsMentioning(storage, 'certificates', ['"AutoRenew"', '"EmailContacts"']);
      let renewed = 0;
      let emailed = 0;
      const failed: string[] = [];
      for (const c of candidates) {
        const vault = { id: c.id, name: c.vault_name, wrappedDataKey: c.wrapped_data_key };
        // One certificate that cannot be renewed must not hold up the others: it is reported after the pass.
        try {
          const notice = notifications && (await certificates.noticeDue(vault, c.name, now));
          if (notice) emailed += await notifications.send(vault, notice, now);
          if (await certificates.renewIfDue(vault, c.name, now)) renewed++;
        } catch (err) {
          failed.push(`${c.vault_name}/${c.name}: ${(err as Error).message}`);
        }
      }
      if (failed.length) throw new Error(`lifetime actions failed for ${failed.length} certificate(s) (${renewed} renewed, ${emailed} emails): ${failed.join('; ')}`);
      // Nothing done is falsy, so the scheduler logs only passes that did something.
      return renewed + emailed > 0 ? { renewed, emailed } : undefined;
    },
  };
}
