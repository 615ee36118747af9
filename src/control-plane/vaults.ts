import crypto from 'node:crypto';
import type { Storage } from '../storage/engine.js';
import type { Keyring } from '../crypto/envelope.js';
import type { Clock } from '../clock.js';
import type { Endpoints } from '../endpoints.js';
import { KeyVaultError } from '../http/errors.js';
import type { VaultRef } from '../objects/store.js';

export interface VaultProperties {
  sku: { family: 'A'; name: 'standard' | 'premium' };
  tenantId: string;
  accessPolicies: unknown[];
  enableRbacAuthorization: boolean;
  enableSoftDelete: true;
  softDeleteRetentionInDays: number;
  enablePurgeProtection?: boolean;
  publicNetworkAccess: 'Enabled' | 'Disabled';
  vaultUri: string;
  provisioningState: 'Succeeded';
  [field: string]: unknown;
}

export interface Vault extends VaultRef {
  name: string;
  resourceId: string;
  tenantId: string;
  subscriptionId: string;
  resourceGroup: string;
  location: string;
  tags: Record<string, string>;
  properties: VaultProperties;
  createdAt: number;
  deletedAt: number | null;
  scheduledPurgeAt: number | null;
}

export interface CreateVaultInput {
  name: string;
  subscriptionId: string;
  resourceGroup: string;
  location: string;
  tenantId: string;
  tags?: Record<string, string>;
  sku?: 'standard' | 'premium';
  enableRbacAuthorization?: boolean;
  softDeleteRetentionInDays?: number;
  enablePurgeProtection?: boolean;
}

/** Azure's vault name rule: 3–24 characters, letters, digits and hyphens, starting with a letter, no `--`. */
export const VAULT_NAME = /^(?=.{3,24}$)[a-zA-Z](?!.*--)[a-zA-Z0-9-]*[a-zA-Z0-9]$/;

export interface VaultsService {
  create(input: CreateVaultInput): Promise<Vault>;
  /** A live vault by name (names are global and case-insensitive, like DNS). */
  getByName(name: string): Promise<Vault | undefined>;
  list(filter: { subscriptionId: string; resourceGroup?: string }): Promise<Vault[]>;
}

type VaultRow = Awaited<ReturnType<typeof selectVaults>>[number];
const selectVaults = (storage: Storage) => storage.db.selectFrom('vaults').selectAll().execute();

export function createVaultsService(deps: { storage: Storage; keyring: Keyring; clock: Clock; endpoints: Endpoints }): VaultsService {
  const { storage, keyring, clock, endpoints } = deps;
  const db = storage.db;
  const toVault = (row: VaultRow): Vault => ({
    id: row.id,
    name: row.name,
    resourceId: `/subscriptions/${row.subscription_id}/resourceGroups/${row.resource_group}/providers/Microsoft.KeyVault/vaults/${row.name}`,
    tenantId: row.tenant_id,
    subscriptionId: row.subscription_id,
    resourceGroup: row.resource_group,
    location: row.location,
    tags: JSON.parse(row.tags),
    properties: { ...JSON.parse(row.properties), vaultUri: `${endpoints.vaultUrl(row.name)}/` },
    wrappedDataKey: row.wrapped_data_key,
    createdAt: Number(row.created_at),
    deletedAt: row.deleted_at === null ? null : Number(row.deleted_at),
    scheduledPurgeAt: row.scheduled_purge_at === null ? null : Number(row.scheduled_purge_at),
  });

  return {
    async create(input) {
      if (!VAULT_NAME.test(input.name)) {
        throw new KeyVaultError(400, 'VaultNameNotValid',
          `The vault name '${input.name}' is invalid. A vault's name must be between 3-24 alphanumeric characters. The name must begin with a letter, end with a letter or digit, and not contain consecutive hyphens.`);
      }
      const retention = input.softDeleteRetentionInDays ?? 90;
      if (!Number.isInteger(retention) || retention < 7 || retention > 90) {
        throw new KeyVaultError(400, 'BadRequest', 'The property "softDeleteRetentionInDays" has an invalid value. It must be between 7 and 90.');
      }
      const id = crypto.randomUUID();
      const properties: Omit<VaultProperties, 'vaultUri'> = {
        sku: { family: 'A', name: input.sku ?? 'standard' },
        tenantId: input.tenantId,
        accessPolicies: [],
        enableRbacAuthorization: input.enableRbacAuthorization ?? true,
        enableSoftDelete: true,
        softDeleteRetentionInDays: retention,
        ...(input.enablePurgeProtection ? { enablePurgeProtection: true } : {}),
        publicNetworkAccess: 'Enabled',
        provisioningState: 'Succeeded',
      };
      const inserted = await db.insertInto('vaults').values({
        id,
        name: input.name,
        name_key: input.name.toLowerCase(),
        tenant_id: input.tenantId,
        subscription_id: input.subscriptionId,
        resource_group: input.resourceGroup,
        location: input.location,
        properties: JSON.stringify(properties),
        tags: JSON.stringify(input.tags ?? {}),
        wrapped_data_key: keyring.newWrappedDataKey(id),
        created_at: clock.now(),
        deleted_at: null,
        scheduled_purge_at: null,
      }).onConflict((oc) => oc.column('name_key').doNothing()).returningAll().executeTakeFirst();
      if (!inserted) {
        throw new KeyVaultError(409, 'VaultAlreadyExists',
          `The vault name '${input.name}' is already in use. Vault names are globally unique so it is possible that the name is already taken. If you are sure that the vault name was not taken then it is possible that a vault with the same name was recently deleted but not purged after being placed in a recoverable state.`);
      }
      return toVault(inserted);
    },

    async getByName(name) {
      const row = await db.selectFrom('vaults').selectAll()
        .where('name_key', '=', name.toLowerCase()).where('deleted_at', 'is', null).executeTakeFirst();
      return row && toVault(row);
    },

    async list({ subscriptionId, resourceGroup }) {
      let q = db.selectFrom('vaults').selectAll().where('subscription_id', '=', subscriptionId).where('deleted_at', 'is', null);
      if (resourceGroup) q = q.where('resource_group', '=', resourceGroup);
      return (await q.orderBy('name_key').execute()).map(toVault);
    },
  };
}
