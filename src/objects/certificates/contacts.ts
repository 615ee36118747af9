import type { Vault } from '../../control-plane/vaults.js';
import type { Endpoints } from '../../endpoints.js';
import type { SettingsRepository } from '../../storage/settings.js';
import { badParameter, notFound } from '../../http/errors.js';

/**
 * The vault's certificate contacts (who is told about expiring certificates). They are not secret, so they live in the
 * deployment's settings table under the vault's id (unique per vault, so a re-created vault starts without contacts).
 */
export interface Contact {
  email?: string;
  name?: string;
  phone?: string;
}

const EMAIL = /^[^@\s]+@[^@\s]+$/;
const settingKey = (vault: Vault) => `certificate-contacts:${vault.id}`;

export function createCertificateContacts(deps: { settings: SettingsRepository; endpoints: Endpoints }) {
  const { settings, endpoints } = deps;
  const out = (vault: Vault, contacts: Contact[]) => ({ id: `${endpoints.vaultUrl(vault.name)}/certificates/contacts`, contacts });
  const read = async (vault: Vault): Promise<Contact[]> => JSON.parse((await settings.get(settingKey(vault))) ?? '[]');
  const contactsNotFound = () => notFound('ContactsNotFound', 'Contacts not found');

  return {
    async get(vault: Vault) {
      const contacts = await read(vault);
      if (!contacts.length) throw contactsNotFound();
      return out(vault, contacts);
    },

    async set(vault: Vault, contacts: Contact[]) {
      for (const c of contacts) {
        if (!c.email || !EMAIL.test(c.email)) throw badParameter(`Invalid contact email address: ${c.email ?? ''}`);
      }
      await settings.put(settingKey(vault), JSON.stringify(contacts));
      return out(vault, contacts);
    },

    async delete(vault: Vault) {
      const contacts = await read(vault);
      if (!contacts.length) throw contactsNotFound();
      await settings.put(settingKey(vault), '[]');
      return out(vault, contacts);
    },
  };
}

export type CertificateContacts = ReturnType<typeof createCertificateContacts>;
