import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Kysely } from 'kysely';
import type { Database } from '../../storage/schema.js';
import type { Contact } from './contacts.js';

/**
 * Certificate emails to the vault's contacts (the EmailContacts lifetime action, and the near-expiry notice of an
 * AutoRenew that Coffer cannot carry out itself) go to an outbox users can read: a JSON Lines file, one message per
 * contact. Each notice is claimed in the database first (one row per certificate version and action), so it goes out
 * once per version even when several nodes run the scheduler.
 */
export const OUTBOX_FILE = path.join('outbox', 'email.jsonl');

/** What the certificates service reports as due for a certificate's current version. */
export interface CertificateNotice {
  vaultName: string;
  certificate: string;
  /** The certificate version's identifier (its URL). */
  id: string;
  version: string;
  /** Expiry, epoch seconds. */
  expires: number;
  /** The lifetime action behind the notice: EmailContacts, or AutoRenew when the issuer is external. */
  action: string;
}

/** One line of the outbox. */
export interface OutboxEmail {
  id: string;
  time: string;
  kind: 'CertificateNearExpiry';
  to: string;
  toName?: string;
  subject: string;
  body: string;
  vault: string;
  certificate: string;
  version: string;
  certificateId: string;
  expires: string;
  action: string;
}

export function createCertificateNotifications(deps: {
  db: Kysely<Database>; contacts: { read(vault: { id: string }): Promise<Contact[]> }; dataDir: string;
}) {
  const { db, contacts } = deps;
  const file = path.join(deps.dataDir, OUTBOX_FILE);

  return {
    file,

    /** Sends the notice to every contact unless it was sent for this version already; returns how many messages. */
    async send(vault: { id: string }, notice: CertificateNotice, now: number): Promise<number> {
      const to = (await contacts.read(vault)).filter((c) => c.email);
      // With no contacts nothing is claimed: contacts added before the certificate changes version still hear of it.
      if (!to.length) return 0;
      const claimed = await db.insertInto('certificate_notices')
        .values({ vault_id: vault.id, name_key: notice.certificate.toLowerCase(), version: notice.version, kind: notice.action, sent_at: now })
        .onConflict((oc) => oc.columns(['vault_id', 'name_key', 'version', 'kind']).doNothing())
        .executeTakeFirst();
      if (Number(claimed.numInsertedOrUpdatedRows ?? 0) === 0) return 0;
      const expires = new Date(notice.expires * 1000).toISOString();
      const lines = to.map((c) => JSON.stringify({
        id: crypto.randomUUID(),
        time: new Date(now).toISOString(),
        kind: 'CertificateNearExpiry',
        to: c.email!,
        ...(c.name ? { toName: c.name } : {}),
        subject: `Certificate ${notice.certificate} in key vault ${notice.vaultName} expires on ${expires}`,
        body: `The certificate ${notice.id} expires on ${expires}. Its policy's ${notice.action} lifetime action asked for this notice; `
          + 'renew or replace the certificate before it expires.',
        vault: notice.vaultName,
        certificate: notice.certificate,
        version: notice.version,
        certificateId: notice.id,
        expires,
        action: notice.action,
      } satisfies OutboxEmail));
      await fs.mkdir(path.dirname(file), { recursive: true });
      await fs.appendFile(file, lines.map((l) => `${l}\n`).join(''), { mode: 0o600 });
      return lines.length;
    },
  };
}

export type CertificateNotifications = ReturnType<typeof createCertificateNotifications>;
