import type { Vault } from '../../control-plane/vaults.js';
import type { Endpoints } from '../../endpoints.js';
import type { Keyring } from '../../crypto/envelope.js';
import type { Clock } from '../../clock.js';
import type { Kysely } from 'kysely';
import type { Database } from '../../storage/schema.js';
import { badParameter, notFound } from '../../http/errors.js';
import { listPage, seconds } from '../collection-helpers.js';
import { checkObjectName } from '../names.js';

/**
 * The vault's certificate issuers (a CA provider with account credentials and organization details). One row per
 * issuer, keyed by the vault's id (they go when the vault is purged); the account password is sealed with the vault's data key and never
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

export function createCertificateIssuers(deps: { db: Kysely<Database>; endpoints: Endpoints; keyring: Keyring; clock: Clock }) {
  const { db, endpoints, keyring, clock } = deps;
  const url = (vault: Vault, name: string) => `${endpoints.vaultUrl(vault.name)}/certificates/issuers/${name}`;
  const passwordIdentity = (vault: Vault, name: string) => `${vault.id}/certificate-issuers/${name.toLowerCase()}`;
  const rows = () => db.selectFrom('certificate_issuers').select('record');
  const find = async (vault: Vault, name: string): Promise<StoredIssuer | undefined> => {
    const row = await rows().where('vault_id', '=', vault.id).where('name_key', '=', name.toLowerCase()).executeTakeFirst();
    return row && JSON.parse(row.record);
  };
  const write = async (vault: Vault, issuer: StoredIssuer) => {
    const record = JSON.stringify(issuer);
    await db.insertInto('certificate_issuers').values({ vault_id: vault.id, name_key: issuer.name.toLowerCase(), record })
      .onConflict((oc) => oc.columns(['vault_id', 'name_key']).doUpdateSet({ record })).execute();
  };
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
      const all = (await rows().where('vault_id', '=', vault.id).orderBy('name_key').execute()).map((r) => JSON.parse(r.record) as StoredIssuer);
      return listPage({ items: all }, (i) => ({ id: url(vault, i.name), provider: i.provider }), () => '');
    },

    async get(vault: Vault, name: string) {
      checkName(name);
      const found = await find(vault, name);
      if (!found) throw issuerNotFound(name);
      return out(vault, found);
    },

    async set(vault: Vault, name: string, input: IssuerInput) {
      checkName(name);
      const issuer = apply(vault, name, input);
      await write(vault, issuer);
      return out(vault, issuer);
    },

    async update(vault: Vault, name: string, input: IssuerInput) {
      checkName(name);
      const prior = await find(vault, name);
      if (!prior) throw issuerNotFound(name);
      const issuer = apply(vault, name, input, prior);
      await write(vault, issuer);
      return out(vault, issuer);
    },

    async delete(vault: Vault, name: string) {
      checkName(name);
      const found = await find(vault, name);
      if (!found) throw issuerNotFound(name);
      await db.deleteFrom('certificate_issuers').where('vault_id', '=', vault.id).where('name_key', '=', name.toLowerCase()).execute();
      return out(vault, found);
    },
  };
}

export type CertificateIssuers = ReturnType<typeof createCertificateIssuers>;
