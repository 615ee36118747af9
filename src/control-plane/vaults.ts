import crypto from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../storage/schema.js';
import { inTransaction, type Storage } from '../storage/engine.js';
import type { Keyring } from '../crypto/envelope.js';
import type { Clock } from '../clock.js';
import type { Endpoints } from '../endpoints.js';
import { KeyVaultError } from '../http/errors.js';
import type { VaultRef } from '../objects/store.js';
import type { VaultEventHooks } from '../events/event-grid.js';

export interface AccessPolicyEntry {
  tenantId: string;
  objectId: string;
  applicationId?: string;
  permissions: { keys?: string[]; secrets?: string[]; certificates?: string[]; storage?: string[] };
}

export interface NetworkRuleSet {
  bypass?: 'AzureServices' | 'None';
  defaultAction?: 'Allow' | 'Deny';
  ipRules?: { value: string }[];
  virtualNetworkRules?: { id: string; ignoreMissingVnetServiceEndpoint?: boolean }[];
}

export interface VaultProperties {
  sku: { family: 'A'; name: 'standard' | 'premium' };
  tenantId: string;
  accessPolicies: AccessPolicyEntry[];
  enableRbacAuthorization: boolean;
  enableSoftDelete: true;
  softDeleteRetentionInDays: number;
  enablePurgeProtection?: boolean;
  enabledForDeployment?: boolean;
  enabledForDiskEncryption?: boolean;
  enabledForTemplateDeployment?: boolean;
  networkAcls?: NetworkRuleSet;
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

/** The settable properties of a vault (what PUT and PATCH carry). */
export interface VaultSettings {
  sku?: 'standard' | 'premium';
  accessPolicies?: AccessPolicyEntry[];
  enableRbacAuthorization?: boolean;
  enableSoftDelete?: boolean;
  softDeleteRetentionInDays?: number;
  enablePurgeProtection?: boolean;
  enabledForDeployment?: boolean;
  enabledForDiskEncryption?: boolean;
  enabledForTemplateDeployment?: boolean;
  networkAcls?: NetworkRuleSet;
  publicNetworkAccess?: 'Enabled' | 'Disabled';
}

export interface CreateVaultInput extends VaultSettings {
  name: string;
  subscriptionId: string;
  resourceGroup: string;
  location: string;
  tenantId: string;
  tags?: Record<string, string>;
}

export type AccessPolicyUpdateKind = 'add' | 'replace' | 'remove';

/** Azure's vault name rule: 3–24 characters, letters, digits and hyphens, starting with a letter, no `--`. */
export const VAULT_NAME = /^(?=.{3,24}$)[a-zA-Z](?!.*--)[a-zA-Z0-9-]*[a-zA-Z0-9]$/;

const DAY_MS = 86_400_000;

export interface VaultsService {
  create(input: CreateVaultInput): Promise<Vault>;
  /** Replaces (PUT) or patches (PATCH) a live vault's settings and tags, with Azure's immutability rules. */
  update(name: string, change: { settings: VaultSettings; tags?: Record<string, string>; tenantId?: string }): Promise<Vault>;
  /** A live vault by name (names are global and case-insensitive, like DNS). */
  getByName(name: string): Promise<Vault | undefined>;
  list(filter: { subscriptionId: string; resourceGroup?: string }): Promise<Vault[]>;
  /** Soft-deletes a live vault: it keeps its name, objects and settings until purged or recovered. */
  softDelete(name: string): Promise<boolean>;
  getDeleted(name: string): Promise<Vault | undefined>;
  listDeleted(subscriptionId: string): Promise<Vault[]>;
  /** Purges a deleted vault, refusing while purge protection holds. */
  purge(name: string): Promise<void>;
  /** Restores a deleted vault with all its objects, policies and settings. */
  recover(name: string, into: { subscriptionId: string; resourceGroup: string }): Promise<Vault>;
  /** Whether a name can be used for a new vault. */
  checkName(name: string): Promise<{ nameAvailable: boolean; reason?: 'AccountNameInvalid' | 'AlreadyExists'; message?: string }>;
  updateAccessPolicies(name: string, kind: AccessPolicyUpdateKind, entries: AccessPolicyEntry[]): Promise<Vault>;
  /** Purges deleted vaults whose scheduled purge date has passed (the scheduler's job). */
  purgeDue(now: number): Promise<number>;
  /** Records the vault side of its private endpoints (ARM's read-only `privateEndpointConnections`). */
  setPrivateEndpointConnections(name: string, connections: unknown[]): Promise<void>;
}

type VaultRow = Awaited<ReturnType<typeof selectVaults>>[number];
const selectVaults = (storage: Storage) => storage.db.selectFrom('vaults').selectAll().execute();

const badRequest = (message: string) => new KeyVaultError(400, 'BadRequest', message);

export const vaultNameInvalid = (name: string) => new KeyVaultError(400, 'VaultNameNotValid',
  `The vault name '${name}' is invalid. A vault's name must be between 3-24 alphanumeric characters. The name must begin with a letter, end with a letter or digit, and not contain consecutive hyphens.`);

const nameTaken = (name: string) => new KeyVaultError(409, 'VaultAlreadyExists',
  `The vault name '${name}' is already in use. Vault names are globally unique so it is possible that the name is already taken. If you are sure that the vault name was not taken then it is possible that a vault with the same name was recently deleted but not purged after being placed in a recoverable state.`);

function checkRetention(days: number) {
  if (!Number.isInteger(days) || days < 7 || days > 90) {
    throw badRequest('The property "softDeleteRetentionInDays" has an invalid value. It must be between 7 and 90.');
  }
}

const entryKey = (e: AccessPolicyEntry) => `${e.tenantId.toLowerCase()}|${e.objectId.toLowerCase()}|${(e.applicationId ?? '').toLowerCase()}`;
const PERMISSION_KINDS = ['keys', 'secrets', 'certificates', 'storage'] as const;

/** Applies an accessPolicies/{add|replace|remove} change the way ARM does: per (tenant, object, application) entry. */
export function applyAccessPolicyChange(current: AccessPolicyEntry[], kind: AccessPolicyUpdateKind, changes: AccessPolicyEntry[]): AccessPolicyEntry[] {
  const result = current.map((e) => ({ ...e, permissions: { ...e.permissions } }));
  for (const change of changes) {
    const i = result.findIndex((e) => entryKey(e) === entryKey(change));
    if (kind === 'replace' || (kind === 'add' && i < 0)) {
      if (i >= 0) result[i] = change; else result.push(change);
      continue;
    }
    if (i < 0) continue;
    const entry = result[i];
    for (const k of PERMISSION_KINDS) {
      if (entry.permissions[k] === undefined && change.permissions[k] === undefined) continue;
      const have = entry.permissions[k] ?? [];
      const delta = (change.permissions[k] ?? []).map((p) => p.toLowerCase());
      entry.permissions[k] = kind === 'add'
        ? [...have, ...(change.permissions[k] ?? []).filter((p) => !have.some((h) => h.toLowerCase() === p.toLowerCase()))]
        : have.filter((p) => !delta.includes(p.toLowerCase()));
    }
    if (kind === 'remove' && PERMISSION_KINDS.every((k) => (entry.permissions[k] ?? []).length === 0)) result.splice(i, 1);
  }
  return result;
}

export function createVaultsService(deps: { storage: Storage; keyring: Keyring; clock: Clock; endpoints: Endpoints; events?: VaultEventHooks }): VaultsService {
  const { storage, keyring, clock, endpoints } = deps;
  const db = storage.db;
  /**
   * A purge ends a vault for good: its row (objects, contacts and issuers go with it) and the role assignments scoped to
   * it or below, which ARM deletes with their resource, so a new vault of the same name starts with none.
   */
  const purgeVaults = (vaults: Vault[]) => inTransaction(storage, async (trx) => {
    for (const vault of vaults) {
      const scope = vault.resourceId.toLowerCase();
      await trx.deleteFrom('role_assignments')
        .where((eb) => eb.or([eb('scope_key', '=', scope), eb(sql`substr(scope_key, 1, ${scope.length + 1})`, '=', `${scope}/`)]))
        .execute();
      await trx.deleteFrom('vaults').where('id', '=', vault.id).execute();
    }
  });
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
  const row = (name: string, deleted: boolean) => {
    const q = db.selectFrom('vaults').selectAll().where('name_key', '=', name.toLowerCase());
    return (deleted ? q.where('deleted_at', 'is not', null) : q.where('deleted_at', 'is', null)).executeTakeFirst();
  };
  const getByName = async (name: string) => {
    const r = await row(name, false);
    return r && toVault(r);
  };
  const getDeleted = async (name: string) => {
    const r = await row(name, true);
    return r && toVault(r);
  };
  const saveProperties = (id: string, properties: Omit<VaultProperties, 'vaultUri'>, tags: Record<string, string>, executor: Kysely<Database> = db) =>
    executor.updateTable('vaults').set({ properties: JSON.stringify(properties), tags: JSON.stringify(tags) }).where('id', '=', id).execute();
  /** Saves new access policies with their VaultAccessPolicyChanged event in the same transaction (when someone subscribed). */
  async function saveWithPolicyEvent(vault: Vault, properties: Omit<VaultProperties, 'vaultUri'>, tags: Record<string, string>) {
    const hook = await deps.events?.accessPolicyChanged(vault);
    if (!hook) return saveProperties(vault.id, properties, tags);
    await inTransaction(storage, async (trx) => {
      await saveProperties(vault.id, properties, tags, trx);
      await hook.inTransaction(trx);
    });
    hook.afterCommit();
  }
  const stored = ({ vaultUri: _uri, ...rest }: VaultProperties): Omit<VaultProperties, 'vaultUri'> => rest;

  return {
    async create(input) {
      if (!VAULT_NAME.test(input.name)) throw vaultNameInvalid(input.name);
      if (input.enableSoftDelete === false) {
        throw badRequest('The property "enableSoftDelete" cannot be set to false. Soft delete is always on.');
      }
      if (input.enablePurgeProtection === false) {
        throw badRequest('The property "enablePurgeProtection" cannot be set to false. Enabling the purge protection for a vault is an irreversible action.');
      }
      const retention = input.softDeleteRetentionInDays ?? 90;
      checkRetention(retention);
      const deleted = await row(input.name, true);
      if (deleted) throw new KeyVaultError(409, 'ConflictError', 'Exist soft deleted vault with the same name. ');
      const id = crypto.randomUUID();
      const properties: Omit<VaultProperties, 'vaultUri'> = {
        sku: { family: 'A', name: input.sku ?? 'standard' },
        tenantId: input.tenantId,
        accessPolicies: input.accessPolicies ?? [],
        enabledForDeployment: input.enabledForDeployment ?? false,
        enabledForDiskEncryption: input.enabledForDiskEncryption ?? false,
        enabledForTemplateDeployment: input.enabledForTemplateDeployment ?? false,
        enableRbacAuthorization: input.enableRbacAuthorization ?? true,
        enableSoftDelete: true,
        softDeleteRetentionInDays: retention,
        ...(input.enablePurgeProtection ? { enablePurgeProtection: true } : {}),
        ...(input.networkAcls ? { networkAcls: input.networkAcls } : {}),
        publicNetworkAccess: input.publicNetworkAccess ?? 'Enabled',
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
      if (!inserted) throw nameTaken(input.name);
      return toVault(inserted);
    },

    async update(name, { settings, tags, tenantId }) {
      const vault = await getByName(name);
      if (!vault) throw new KeyVaultError(404, 'ResourceNotFound', `The Resource 'Microsoft.KeyVault/vaults/${name}' was not found.`);
      const p = vault.properties;
      if (settings.enableSoftDelete === false) {
        throw badRequest('The property "enableSoftDelete" cannot be set to false. Soft delete is always on.');
      }
      if (settings.enablePurgeProtection === false && p.enablePurgeProtection) {
        throw badRequest('The property "enablePurgeProtection" cannot be set to false. Enabling the purge protection for a vault is an irreversible action.');
      }
      if (settings.softDeleteRetentionInDays !== undefined) {
        checkRetention(settings.softDeleteRetentionInDays);
        if (settings.softDeleteRetentionInDays !== p.softDeleteRetentionInDays) {
          throw badRequest('The property "softDeleteRetentionInDays" cannot be changed once the vault has been created.');
        }
      }
      const next: Omit<VaultProperties, 'vaultUri'> = {
        ...stored(p),
        ...(tenantId ? { tenantId } : {}),
        ...(settings.sku ? { sku: { family: 'A' as const, name: settings.sku } } : {}),
        ...(settings.accessPolicies ? { accessPolicies: settings.accessPolicies } : {}),
        ...(settings.enableRbacAuthorization !== undefined ? { enableRbacAuthorization: settings.enableRbacAuthorization } : {}),
        ...(settings.enablePurgeProtection ? { enablePurgeProtection: true } : {}),
        ...(settings.enabledForDeployment !== undefined ? { enabledForDeployment: settings.enabledForDeployment } : {}),
        ...(settings.enabledForDiskEncryption !== undefined ? { enabledForDiskEncryption: settings.enabledForDiskEncryption } : {}),
        ...(settings.enabledForTemplateDeployment !== undefined ? { enabledForTemplateDeployment: settings.enabledForTemplateDeployment } : {}),
        ...(settings.networkAcls ? { networkAcls: settings.networkAcls } : {}),
        ...(settings.publicNetworkAccess ? { publicNetworkAccess: settings.publicNetworkAccess } : {}),
      };
      const policiesChanged = settings.accessPolicies && JSON.stringify(settings.accessPolicies) !== JSON.stringify(p.accessPolicies);
      await (policiesChanged ? saveWithPolicyEvent(vault, next, tags ?? vault.tags) : saveProperties(vault.id, next, tags ?? vault.tags));
      return (await getByName(name))!;
    },

    getByName,
    getDeleted,

    async list({ subscriptionId, resourceGroup }) {
      const rows = (await db.selectFrom('vaults').selectAll().where('subscription_id', '=', subscriptionId).where('deleted_at', 'is', null)
        .orderBy('name_key').execute()).map(toVault);
      // Resource group names compare case-insensitively, as ARM's do.
      return resourceGroup ? rows.filter((v) => v.resourceGroup.toLowerCase() === resourceGroup.toLowerCase()) : rows;
    },

    async softDelete(name) {
      const vault = await getByName(name);
      if (!vault) return false;
      const now = clock.now();
      await db.updateTable('vaults')
        .set({ deleted_at: now, scheduled_purge_at: now + vault.properties.softDeleteRetentionInDays * DAY_MS })
        .where('id', '=', vault.id).where('deleted_at', 'is', null).execute();
      return true;
    },

    async listDeleted(subscriptionId) {
      const rows = await db.selectFrom('vaults').selectAll().where('subscription_id', '=', subscriptionId)
        .where('deleted_at', 'is not', null).orderBy('name_key').execute();
      return rows.map(toVault);
    },

    async purge(name) {
      const vault = await getDeleted(name);
      if (!vault) throw new KeyVaultError(404, 'ResourceNotFound', `The Resource 'Microsoft.KeyVault/deletedVaults/${name}' was not found.`);
      if (vault.properties.enablePurgeProtection && clock.now() < (vault.scheduledPurgeAt ?? 0)) {
        throw badRequest(`Operation "purge" is not allowed on vault '${vault.name}' because purge protection is enabled. The vault can be purged after its scheduled purge date, ${new Date(vault.scheduledPurgeAt!).toISOString()}.`);
      }
      await purgeVaults([vault]);
    },

    async recover(name, into) {
      const vault = await getDeleted(name);
      if (!vault || vault.subscriptionId !== into.subscriptionId) {
        throw new KeyVaultError(404, 'ResourceNotFound', `The specified vault '${name}' could not be found in deleted vaults.`);
      }
      if (vault.resourceGroup.toLowerCase() !== into.resourceGroup.toLowerCase()) {
        throw badRequest(`The deleted vault '${name}' belonged to resource group '${vault.resourceGroup}'; recover it there.`);
      }
      await db.updateTable('vaults').set({ deleted_at: null, scheduled_purge_at: null }).where('id', '=', vault.id).execute();
      return (await getByName(name))!;
    },

    async checkName(name) {
      if (!VAULT_NAME.test(name)) {
        return { nameAvailable: false, reason: 'AccountNameInvalid', message: vaultNameInvalid(name).message };
      }
      const taken = await db.selectFrom('vaults').select('id').where('name_key', '=', name.toLowerCase()).executeTakeFirst();
      return taken
        ? { nameAvailable: false, reason: 'AlreadyExists', message: `The vault name '${name}' is already in use.` }
        : { nameAvailable: true };
    },

    async updateAccessPolicies(name, kind, entries) {
      const vault = await getByName(name);
      if (!vault) throw new KeyVaultError(404, 'ResourceNotFound', `The Resource 'Microsoft.KeyVault/vaults/${name}' was not found.`);
      const accessPolicies = applyAccessPolicyChange(vault.properties.accessPolicies, kind, entries);
      await saveWithPolicyEvent(vault, { ...stored(vault.properties), accessPolicies }, vault.tags);
      return (await getByName(name))!;
    },

    async setPrivateEndpointConnections(name, connections) {
      const vault = await getByName(name);
      if (!vault) return;
      const { privateEndpointConnections: _old, ...rest } = stored(vault.properties);
      await saveProperties(vault.id, connections.length ? { ...rest, privateEndpointConnections: connections } : rest, vault.tags);
    },

    async purgeDue(now) {
      const due = await db.selectFrom('vaults').selectAll().where('deleted_at', 'is not', null).where('scheduled_purge_at', '<=', now).execute();
      await purgeVaults(due.map(toVault));
      return due.length;
    },
  };
}
