import type { Vault } from '../../control-plane/vaults.js';
import type { Endpoints } from '../../endpoints.js';
import type { Kysely } from 'kysely';
import type { Database } from '../../storage/schema.js';
import { badParameter, notFound } from '../../http/errors.js';

/**
 * The vault's certificate contacts (who is told about expiring certificates). They are not secret: one row per vault,
 * keyed by the vault's id, so they go when the vault is purged and a re-created vault starts without contacts.
 */
export interface Contact {
  email?: string;
  name?: string;
  phone?: string;
}

const EMAIL = /^[^@\s]+@[^@\s]+$/;

export function createCertificateContacts(deps: { db: Kysely<Database>; endpoints: Endpoints }) {
  const { db, endpoints } = deps;
  const out = (vault: Vault, contacts: Contact[]) => ({ id: `${endpoints.vaultUrl(vault.name)}/certificates/contacts`, contacts });
  /** The contacts of a vault (none: an empty list); the scheduler's notifications read them too. */
  const read = async (vault: Pick<Vault, 'id'>): Promise<Contact[]> => {
    const row = await db.selectFrom('certificate_contacts').select('contacts').where('vault_id', '=', vault.id).executeTakeFirst();
    return row ? JSON.parse(row.contacts) : [];
  };
  const contactsNotFound = () => notFound('ContactsNotFound', 'Contacts not found');

  return {
    read,

    async get(vault: Vault) {
      const contacts = await read(vault);
      if (!contacts.length) throw contactsNotFound();
      return out(vault, contacts);
    },

    async set(vault: Vault, contacts: Contact[]) {
      for (const c of contacts) {
        if (!c.email || !EMAIL.test(c.email)) throw badParameter(`Invalid contact email address: ${c.email ?? ''}`);
      }
      const value = JSON.stringify(contacts);
      await db.insertInto('certificate_contacts').values({ vault_id: vault.id, contacts: value })
        .onConflict((oc) => oc.column('vault_id').doUpdateSet({ contacts: value })).execute();
      return out(vault, contacts);
    },

    async delete(vault: Vault) {
      const contacts = await read(vault);
      if (!contacts.length) throw contactsNotFound();
      await db.deleteFrom('certificate_contacts').where('vault_id', '=', vault.id).execute();
      return out(vault, contacts);
    },
  };
}

export type CertificateContacts = ReturnType<typeof createCertificateContacts>;
