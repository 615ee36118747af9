import type { Vault } from '../../control-plane/vaults.js';
import type { Endpoints } from '../../endpoints.js';
import type { Keyring } from '../../crypto/envelope.js';
import type { Clock } from '../../clock.js';
import type { SettingsRepository } from '../../storage/settings.js';
import { badParameter, notFound } from '../../http/errors.js';
import { listPage, seconds } from '../collection-helpers.js';
import { checkObjectName } from '../names.js';

/**
 * The vault's certificate issuers (a CA provider with account credentials and organization details). The records
 * live in the settings table under the vault's id; the account password is sealed with the vault's data key and never
 * returned. Issuance through external providers is not available in Coffer: `Self` and `Unknown` need no issuer.
 */
export interface IssuerInput {
  provider?: string;
  credentials?: { account_id?: string; pwd?: string };
  org_details?: { id?: string; admin_details?: { first_name?: string; last_name?: string; email?: string; phone?: string }[] };
  attributes?: { enabled?: boolean };
}

interface StoredIssuer {
  name: string;
  provider: string;
  accountId?: string;
  sealedPassword?: string;
  orgDetails?: IssuerInput['org_details'];
  enabled: boolean;
  created: number;
  updated: number;
}

/** `Self` and `Unknown` are the built-in issuer names a policy uses; they cannot be configured. */
const RESERVED = ['self', 'unknown'];

export function createCertificateIssuers(deps: { settings: SettingsRepository; endpoints: Endpoints; keyring: Keyring; clock: Clock }) {
  const { settings, endpoints, keyring, clock } = deps;
  const settingKey = (vault: Vault) => `certificate-issuers:${vault.id}`;
  const url = (vault: Vault, name: string) => `${endpoints.vaultUrl(vault.name)}/certificates/issuers/${name}`;
  const passwordIdentity = (vault: Vault, name: string) => `${vault.id}/certificate-issuers/${name.toLowerCase()}`;
  const read = async (vault: Vault): Promise<Record<string, StoredIssuer>> => JSON.parse((await settings.get(settingKey(vault))) ?? '{}');
  const write = (vault: Vault, all: Record<string, StoredIssuer>) => settings.put(settingKey(vault), JSON.stringify(all));
  const issuerNotFound = (name: string) => notFound('CertificateIssuerNotFound', `Issuer not found: ${name}`);

  const checkName = (name: string) => {
    checkObjectName(name);
    if (RESERVED.includes(name.toLowerCase())) throw badParameter(`Issuer name ${name} is reserved.`);
  };

  const out = (vault: Vault, i: StoredIssuer) => ({
    id: url(vault, i.name),
    provider: i.provider,
    ...(i.accountId !== undefined ? { credentials: { account_id: i.accountId } } : {}),
    ...(i.orgDetails ? { org_details: i.orgDetails } : {}),
    attributes: { enabled: i.enabled, created: seconds(i.created), updated: seconds(i.updated) },
  });

  function apply(vault: Vault, name: string, input: IssuerInput, prior?: StoredIssuer): StoredIssuer {
    const now = clock.now();
    const provider = input.provider ?? prior?.provider;
    if (!provider) throw badParameter('The issuer provider is required.');
    const pwd = input.credentials?.pwd;
    return {
      name: prior?.name ?? name,
      provider,
      accountId: input.credentials?.account_id ?? prior?.accountId,
      sealedPassword: pwd !== undefined
        ? keyring.sealValue(vault.id, vault.wrappedDataKey, passwordIdentity(vault, name), Buffer.from(pwd, 'utf8')).toString('base64')
        : prior?.sealedPassword,
      orgDetails: input.org_details ?? prior?.orgDetails,
      enabled: input.attributes?.enabled ?? prior?.enabled ?? true,
      created: prior?.created ?? now,
      updated: now,
    };
  }

  return {
    async list(vault: Vault) {
      const all = Object.values(await read(vault)).sort((a, b) => a.name.localeCompare(b.name));
      return listPage({ items: all }, (i) => ({ id: url(vault, i.name), provider: i.provider }), () => '');
    },

    async get(vault: Vault, name: string) {
      checkName(name);
      const found = (await read(vault))[name.toLowerCase()];
      if (!found) throw issuerNotFound(name);
      return out(vault, found);
    },

    async set(vault: Vault, name: string, input: IssuerInput) {
      checkName(name);
      const all = await read(vault);
      all[name.toLowerCase()] = apply(vault, name, input);
      await write(vault, all);
      return out(vault, all[name.toLowerCase()]);
    },

    async update(vault: Vault, name: string, input: IssuerInput) {
      checkName(name);
      const all = await read(vault);
      const prior = all[name.toLowerCase()];
      if (!prior) throw issuerNotFound(name);
      all[name.toLowerCase()] = apply(vault, name, input, prior);
      await write(vault, all);
      return out(vault, all[name.toLowerCase()]);
    },

    async delete(vault: Vault, name: string) {
      checkName(name);
      const all = await read(vault);
      const found = all[name.toLowerCase()];
      if (!found) throw issuerNotFound(name);
      delete all[name.toLowerCase()];
      await write(vault, all);
      return out(vault, found);
    },
  };
}

export type CertificateIssuers = ReturnType<typeof createCertificateIssuers>;
