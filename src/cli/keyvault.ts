import { Option, type Command } from 'commander';
import { action, boolOption, group, parsePositiveInt, parseTags, type ActionEnv } from './command.js';
import { CliError, usageError } from './errors.js';

/** The management api-version the CLI speaks (what @azure/arm-keyvault of az 2.45's era sends). */
export const MANAGEMENT_API_VERSION = '2023-07-01';
/** What az 2.45's azure-mgmt-resource sends for resource groups. */
export const RESOURCE_GROUPS_API_VERSION = '2022-09-01';
/** az requires `--resource-group`; Coffer has one subscription and lets a default group stand in. */
export const DEFAULT_RESOURCE_GROUP = 'coffer-default';
const DEFAULT_LOCATION = 'local';

/** What az 2.45 grants the creator of an access-policy vault (note: no purge, as in az). */
const CREATOR_PERMISSIONS = {
  keys: ['get', 'create', 'delete', 'list', 'update', 'import', 'backup', 'restore', 'recover', 'getrotationpolicy', 'setrotationpolicy', 'rotate'],
  secrets: ['get', 'list', 'set', 'delete', 'backup', 'restore', 'recover'],
  certificates: ['get', 'list', 'delete', 'create', 'import', 'update', 'managecontacts', 'getissuers', 'listissuers', 'setissuers', 'deleteissuers', 'manageissuers', 'recover'],
  storage: ['get', 'list', 'delete', 'set', 'update', 'regeneratekey', 'setsas', 'listsas', 'getsas', 'deletesas'],
};

export interface ArmVault {
  id: string;
  name: string;
  type: string;
  location: string;
  tags?: Record<string, string>;
  properties: Record<string, unknown>;
}

interface ArmDeletedVault {
  id: string;
  name: string;
  type: string;
  properties: { vaultId: string; location: string; deletionDate?: string; scheduledPurgeDate?: string; tags?: Record<string, string>; purgeProtectionEnabled?: boolean };
}

/**
 * az adds `resourceGroup` to every ARM resource it prints whose id is under `/subscriptions/{s}/resourceGroups/`
 * (and to none other, e.g. not to deleted vaults).
 */
export function withResourceGroup<T extends { id: string }>(resource: T): T & { resourceGroup?: string } {
  const group = /^\/subscriptions\/[^/]+\/resourceGroups\/([^/]+)/i.exec(resource.id)?.[1];
  return group === undefined ? resource : { ...resource, resourceGroup: group };
}

/** ARM times as az prints the SDK's datetimes: Python's isoformat (microseconds when not zero, `+00:00`). */
const pythonIso = (value: string | undefined) =>
  (value ? new Date(value).toISOString().replace(/\.000Z$/, '+00:00').replace(/\.(\d{3})Z$/, '.$1000+00:00') : null);

/** A deleted vault as az 2.45 prints it. */
const deletedVaultOutput = (v: ArmDeletedVault) => ({
  ...v,
  properties: {
    deletionDate: pythonIso(v.properties.deletionDate),
    location: v.properties.location,
    purgeProtectionEnabled: v.properties.purgeProtectionEnabled ?? null,
    scheduledPurgeDate: pythonIso(v.properties.scheduledPurgeDate),
    tags: v.properties.tags ?? null,
    vaultId: v.properties.vaultId,
  },
});

export const subscriptionPath = (env: ActionEnv) => `/subscriptions/${env.context().subscriptionId()}`;

const vaultsPath = (env: ActionEnv, resourceGroup?: string) =>
  `${subscriptionPath(env)}${resourceGroup ? `/resourceGroups/${encodeURIComponent(resourceGroup)}` : ''}/providers/Microsoft.KeyVault/vaults`;

const notFound = (type: string, name: string) => new CliError(`(ResourceNotFound) The Resource 'Microsoft.KeyVault/${type}/${name}' was not found.`, 3, 'ResourceNotFound');

/** A vault by name: in the given group, else wherever it is in the subscription (as az finds it). */
export async function findVault(env: ActionEnv, name: string, resourceGroup?: string): Promise<ArmVault> {
  const management = env.context().management;
  if (resourceGroup) return management<ArmVault>('GET', `${vaultsPath(env, resourceGroup)}/${encodeURIComponent(name)}?api-version=${MANAGEMENT_API_VERSION}`);
  const { value } = await management<{ value: ArmVault[] }>('GET', `${vaultsPath(env)}?api-version=${MANAGEMENT_API_VERSION}`);
  const vault = value.find((v) => v.name.toLowerCase() === name.toLowerCase());
  if (!vault) throw notFound('vaults', name);
  return vault;
}

const deletedVaultsPath = (env: ActionEnv) => `${subscriptionPath(env)}/providers/Microsoft.KeyVault/deletedVaults`;
const deletedVaultPath = (env: ActionEnv, location: string, name: string) =>
  `${subscriptionPath(env)}/providers/Microsoft.KeyVault/locations/${encodeURIComponent(location)}/deletedVaults/${encodeURIComponent(name)}`;

/** A deleted vault by name: at the given location, else found in the subscription's deleted vaults. */
async function findDeletedVault(env: ActionEnv, name: string, location?: string): Promise<ArmDeletedVault> {
  const management = env.context().management;
  if (location) return management<ArmDeletedVault>('GET', `${deletedVaultPath(env, location, name)}?api-version=${MANAGEMENT_API_VERSION}`);
  const { value } = await management<{ value: ArmDeletedVault[] }>('GET', `${deletedVaultsPath(env)}?api-version=${MANAGEMENT_API_VERSION}`);
  const vault = value.find((v) => v.name.toLowerCase() === name.toLowerCase());
  if (!vault) throw notFound('deletedVaults', name);
  return vault;
}

interface AccessPolicy { tenantId: string; objectId: string; applicationId?: string; permissions: Record<string, string[] | undefined> }

/** The principal's own access-policy entry (not a compound one for an application). */
const policyOf = (vault: ArmVault, objectId: string) => ((vault.properties.accessPolicies ?? []) as AccessPolicy[])
  .find((p) => p.objectId.toLowerCase() === objectId.toLowerCase() && !p.applicationId);

const getVault = async (env: ActionEnv, id: string) => withResourceGroup(await env.context().management<ArmVault>('GET', `${id}?api-version=${MANAGEMENT_API_VERSION}`));

/** A resource group's location, or undefined when the group does not exist. */
export async function groupLocation(env: ActionEnv, resourceGroup: string): Promise<string | undefined> {
  try {
    const rg = await env.context().management<{ location: string }>('GET', `${subscriptionPath(env)}/resourcegroups/${encodeURIComponent(resourceGroup)}?api-version=${RESOURCE_GROUPS_API_VERSION}`);
    return rg.location;
  } catch (err) {
    if (err instanceof CliError && err.code === 'ResourceGroupNotFound') return undefined;
    throw err;
  }
}

const nameAndGroup = (cmd: Command) => cmd
  .requiredOption('-n, --name <name>', 'name of the vault')
  .option('-g, --resource-group <group>', 'resource group (default: found by name)');

/** az prints warnings on stderr unless --only-show-errors. */
const warn = (env: ActionEnv, message: string) => {
  if (!(env.globals as { onlyShowErrors?: boolean }).onlyShowErrors) process.stderr.write(`WARNING: ${message}\n`);
};

export function registerKeyVaultCommands(program: Command) {
  const keyvault = group(program, 'keyvault', 'Manage vaults and their secrets');

  keyvault.command('create')
    .description('Create a vault')
    .requiredOption('-n, --name <name>', 'name of the vault')
    .option('-g, --resource-group <group>', `resource group (default: ${DEFAULT_RESOURCE_GROUP}, created when missing)`)
    .option('-l, --location <location>', 'location (default: the resource group\'s)')
    .addOption(boolOption('--enable-rbac-authorization [bool]', 'use Azure RBAC for data-plane authorization'))
    .option('--retention-days <days>', 'soft-delete retention in days (7-90)', (v) => parsePositiveInt(v, '--retention-days'))
    .addOption(boolOption('--enable-purge-protection [bool]', 'forbid purging soft-deleted vaults and objects during retention'))
    .addOption(new Option('--sku <sku>', 'pricing tier').choices(['standard', 'premium']).default('standard'))
    .addOption(new Option('--public-network-access <access>', 'whether the vault accepts traffic from public networks').choices(['Enabled', 'Disabled']))
    .option('--tags [tags...]', 'space-separated tags: key[=value] [key[=value] ...]; "" clears')
    .option('--no-self-perms', 'do not grant the caller an access policy (access-policy vaults only)')
    .action(action(async (opts: {
      name: string; resourceGroup?: string; location?: string; enableRbacAuthorization?: boolean; retentionDays?: number;
      enablePurgeProtection?: boolean; sku: string; publicNetworkAccess?: string; tags?: string[]; selfPerms: boolean;
    }, env) => {
      const context = env.context();
      const resourceGroup = opts.resourceGroup ?? DEFAULT_RESOURCE_GROUP;
      // As az: without --location the vault goes where its group is (a named group must exist). The default group
      // is created on first use.
      let location = opts.location;
      if (!opts.resourceGroup || !location) {
        const groupAt = await groupLocation(env, resourceGroup);
        if (groupAt === undefined) {
          if (opts.resourceGroup) throw new CliError(`(ResourceGroupNotFound) Resource group '${resourceGroup}' could not be found.`, 3, 'ResourceGroupNotFound');
          await context.management('PUT', `${subscriptionPath(env)}/resourcegroups/${resourceGroup}?api-version=${RESOURCE_GROUPS_API_VERSION}`, {
            body: { location: location ?? DEFAULT_LOCATION },
          });
        }
        location ??= groupAt ?? DEFAULT_LOCATION;
      }
      // az 2.45: access policies unless RBAC is asked for, and the creator gets a policy.
      const rbac = opts.enableRbacAuthorization ?? false;
      const accessPolicies = !rbac && opts.selfPerms
        ? [{ tenantId: context.profile.tenantId, objectId: await context.callerObjectId(), permissions: CREATOR_PERMISSIONS }]
        : [];
      const body = {
        location,
        tags: parseTags(opts.tags),
        properties: {
          tenantId: context.profile.tenantId,
          sku: { family: 'A', name: opts.sku },
          enableRbacAuthorization: rbac,
          accessPolicies,
          softDeleteRetentionInDays: opts.retentionDays ?? 90,
          enablePurgeProtection: opts.enablePurgeProtection,
          publicNetworkAccess: opts.publicNetworkAccess,
        },
      };
      return withResourceGroup(await context.management<ArmVault>('PUT', `${vaultsPath(env, resourceGroup)}/${encodeURIComponent(opts.name)}?api-version=${MANAGEMENT_API_VERSION}`, { body }));
    }));

  nameAndGroup(keyvault.command('show').description('Show a vault'))
    .action(action(async (opts: { name: string; resourceGroup?: string }, env) => withResourceGroup(await findVault(env, opts.name, opts.resourceGroup))));

  nameAndGroup(keyvault.command('update').description('Update a vault\'s properties'))
    .addOption(boolOption('--enable-rbac-authorization [bool]', 'use Azure RBAC for data-plane authorization'))
    .addOption(boolOption('--enable-purge-protection [bool]', 'forbid purging soft-deleted vaults and objects during retention (irreversible)'))
    .option('--retention-days <days>', 'soft-delete retention in days (fixed once the vault exists)', (v) => parsePositiveInt(v, '--retention-days'))
    .addOption(new Option('--public-network-access <access>', 'whether the vault accepts traffic from public networks').choices(['Enabled', 'Disabled']))
    .addOption(new Option('--default-action <action>', 'network rules: the default action').choices(['Allow', 'Deny']))
    .addOption(new Option('--bypass <bypass>', 'network rules: traffic that bypasses them').choices(['AzureServices', 'None']))
    .addOption(boolOption('--enabled-for-deployment [bool]', 'let virtual machines retrieve certificates stored as secrets'))
    .addOption(boolOption('--enabled-for-disk-encryption [bool]', 'let Azure Disk Encryption retrieve secrets and unwrap keys'))
    .addOption(boolOption('--enabled-for-template-deployment [bool]', 'let Resource Manager retrieve secrets'))
    .action(action(async (opts: {
      name: string; resourceGroup?: string; enableRbacAuthorization?: boolean; enablePurgeProtection?: boolean; retentionDays?: number;
      publicNetworkAccess?: string; defaultAction?: string; bypass?: string; enabledForDeployment?: boolean;
      enabledForDiskEncryption?: boolean; enabledForTemplateDeployment?: boolean;
    }, env) => {
      const vault = await findVault(env, opts.name, opts.resourceGroup);
      const networkAcls = opts.defaultAction || opts.bypass
        ? { ...(vault.properties.networkAcls as object | undefined), ...(opts.defaultAction ? { defaultAction: opts.defaultAction } : {}), ...(opts.bypass ? { bypass: opts.bypass } : {}) }
        : undefined;
      const properties = Object.fromEntries(Object.entries({
        enableRbacAuthorization: opts.enableRbacAuthorization,
        enablePurgeProtection: opts.enablePurgeProtection,
        softDeleteRetentionInDays: opts.retentionDays,
        publicNetworkAccess: opts.publicNetworkAccess,
        networkAcls,
        enabledForDeployment: opts.enabledForDeployment,
        enabledForDiskEncryption: opts.enabledForDiskEncryption,
        enabledForTemplateDeployment: opts.enabledForTemplateDeployment,
      }).filter(([, v]) => v !== undefined));
      return withResourceGroup(await env.context().management<ArmVault>('PATCH', `${vault.id}?api-version=${MANAGEMENT_API_VERSION}`, { body: { properties } }));
    }));

  nameAndGroup(keyvault.command('delete').description('Delete a vault (softly: it can be recovered until purged)'))
    .action(action(async (opts: { name: string; resourceGroup?: string }, env) => {
      const vault = await findVault(env, opts.name, opts.resourceGroup);
      warn(env, 'If you have soft-delete protection enabled on this key vault, you will not be able to reuse this key vault name until the key vault has been purged from the soft deleted state. Please see the following documentation for additional guidance.\nhttps://docs.microsoft.com/azure/key-vault/general/soft-delete-overview');
      await env.context().management('DELETE', `${vault.id}?api-version=${MANAGEMENT_API_VERSION}`);
      return undefined;
    }));

  keyvault.command('list-deleted')
    .description('List soft-deleted vaults')
    .addOption(new Option('--resource-type <type>', 'the kind of deleted resource').choices(['vault']).default('vault'))
    .action(action(async (_opts, env) => {
      const { value } = await env.context().management<{ value: ArmDeletedVault[] }>('GET', `${deletedVaultsPath(env)}?api-version=${MANAGEMENT_API_VERSION}`);
      return value.map(deletedVaultOutput);
    }));

  keyvault.command('show-deleted')
    .description('Show a soft-deleted vault')
    .requiredOption('-n, --name <name>', 'name of the deleted vault')
    .option('-l, --location <location>', 'location of the deleted vault (default: found by name)')
    .action(action(async (opts: { name: string; location?: string }, env) => deletedVaultOutput(await findDeletedVault(env, opts.name, opts.location))));

  keyvault.command('purge')
    .description('Permanently delete a soft-deleted vault')
    .requiredOption('-n, --name <name>', 'name of the deleted vault')
    .option('-l, --location <location>', 'location of the deleted vault (default: found by name)')
    .option('--no-wait', 'do not wait for the purge to finish (it always finishes at once)')
    .action(action(async (opts: { name: string; location?: string }, env) => {
      const deleted = await findDeletedVault(env, opts.name, opts.location);
      await env.context().management('POST', `${deletedVaultPath(env, deleted.properties.location, deleted.name)}/purge?api-version=${MANAGEMENT_API_VERSION}`);
      return undefined;
    }));

  keyvault.command('recover')
    .description('Recover a soft-deleted vault with all its objects and settings')
    .requiredOption('-n, --name <name>', 'name of the deleted vault')
    .option('-g, --resource-group <group>', 'resource group (default: the one it was deleted from)')
    .option('-l, --location <location>', 'location of the deleted vault (default: found by name)')
    .option('--no-wait', 'do not wait for the recovery to finish (it always finishes at once)')
    .action(action(async (opts: { name: string; resourceGroup?: string; location?: string }, env) => {
      const context = env.context();
      // As az: the deleted vault tells where it lived; it is recovered there.
      const deleted = await findDeletedVault(env, opts.name, opts.location);
      const resourceGroup = opts.resourceGroup ?? /\/resourceGroups\/([^/]+)/i.exec(deleted.properties.vaultId)?.[1] ?? DEFAULT_RESOURCE_GROUP;
      const body = {
        location: deleted.properties.location,
        properties: { tenantId: context.profile.tenantId, sku: { family: 'A', name: 'standard' }, createMode: 'recover' },
      };
      return withResourceGroup(await context.management<ArmVault>('PUT', `${vaultsPath(env, resourceGroup)}/${encodeURIComponent(deleted.name)}?api-version=${MANAGEMENT_API_VERSION}`, { body }));
    }));

  nameAndGroup(keyvault.command('set-policy').description('Grant a principal data-plane permissions on an access-policy vault'))
    .requiredOption('--object-id <id>', 'object id of the principal')
    .option('--secret-permissions [permissions...]', 'space-separated secret permissions, e.g. get list set delete purge')
    .option('--key-permissions [permissions...]', 'space-separated key permissions')
    .option('--certificate-permissions [permissions...]', 'space-separated certificate permissions')
    .option('--storage-permissions [permissions...]', 'space-separated storage permissions')
    .action(action(async (opts: {
      name: string; resourceGroup?: string; objectId: string; secretPermissions?: string[]; keyPermissions?: string[];
      certificatePermissions?: string[]; storagePermissions?: string[];
    }, env) => {
      const context = env.context();
      const vault = await findVault(env, opts.name, opts.resourceGroup);
      const given = {
        secrets: opts.secretPermissions, keys: opts.keyPermissions, certificates: opts.certificatePermissions, storage: opts.storagePermissions,
      };
      if (Object.values(given).every((p) => p === undefined)) {
        throw usageError('--secret-permissions | --key-permissions | --certificate-permissions | --storage-permissions');
      }
      // As az: the kinds given replace the principal's lists of those kinds; the other kinds stay as they were.
      const existing = policyOf(vault, opts.objectId);
      const permissions = Object.fromEntries(Object.entries(given)
        .map(([kind, list]) => [kind, list ?? existing?.permissions[kind as keyof typeof given]])
        .filter(([, list]) => list !== undefined));
      await context.management('PUT', `${vault.id}/accessPolicies/${existing ? 'replace' : 'add'}?api-version=${MANAGEMENT_API_VERSION}`, {
        body: { properties: { accessPolicies: [{ tenantId: existing?.tenantId ?? context.profile.tenantId, objectId: existing?.objectId ?? opts.objectId, permissions }] } },
      });
      return getVault(env, vault.id);
    }));

  nameAndGroup(keyvault.command('delete-policy').description('Remove a principal\'s access policy from a vault'))
    .requiredOption('--object-id <id>', 'object id of the principal')
    .action(action(async (opts: { name: string; resourceGroup?: string; objectId: string }, env) => {
      const context = env.context();
      const vault = await findVault(env, opts.name, opts.resourceGroup);
      const entry = policyOf(vault, opts.objectId);
      // az: removing a policy that is not there is not an error; the vault prints unchanged.
      if (!entry) return withResourceGroup(vault);
      await context.management('PUT', `${vault.id}/accessPolicies/remove?api-version=${MANAGEMENT_API_VERSION}`, {
        body: { properties: { accessPolicies: [entry] } },
      });
      return getVault(env, vault.id);
    }));

  keyvault.command('list')
    .description('List vaults')
    .option('-g, --resource-group <group>', 'resource group (default: the whole subscription)')
    .action(action(async (opts: { resourceGroup?: string }, env) => {
      const { value } = await env.context().management<{ value: ArmVault[] }>('GET', `${vaultsPath(env, opts.resourceGroup)}?api-version=${MANAGEMENT_API_VERSION}`);
      // az lists generic resources: no properties.
      return value.map(withResourceGroup).map(({ id, location, name, resourceGroup, tags, type }) => ({ id, location, name, resourceGroup, tags: tags ?? {}, type }));
    }));

  return keyvault;
}
