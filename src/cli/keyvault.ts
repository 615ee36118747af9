import { Option, type Command } from 'commander';
import { action, boolOption, group, parsePositiveInt, parseTags, type ActionEnv } from './command.js';
import { CliError, usageError } from './errors.js';

/** The management api-version the CLI speaks (what @azure/arm-keyvault of az 2.45's era sends). */
export const MANAGEMENT_API_VERSION = '2023-07-01';
const RESOURCE_GROUPS_API_VERSION = '2021-04-01';
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

interface ArmVault {
  id: string;
  name: string;
  type: string;
  location: string;
  tags?: Record<string, string>;
  properties: Record<string, unknown>;
}

/** az adds `resourceGroup` to every ARM resource it prints. */
const withResourceGroup = (vault: ArmVault) => ({ ...vault, resourceGroup: /\/resourceGroups\/([^/]+)/i.exec(vault.id)?.[1] ?? null });

const vaultsPath = (env: ActionEnv, resourceGroup?: string) =>
  `/subscriptions/${env.context().subscriptionId()}${resourceGroup ? `/resourceGroups/${encodeURIComponent(resourceGroup)}` : ''}/providers/Microsoft.KeyVault/vaults`;

/** A vault by name: in the given group, else wherever it is in the subscription. */
async function findVault(env: ActionEnv, name: string, resourceGroup?: string): Promise<ArmVault> {
  const management = env.context().management;
  if (resourceGroup) return management<ArmVault>('GET', `${vaultsPath(env, resourceGroup)}/${encodeURIComponent(name)}?api-version=${MANAGEMENT_API_VERSION}`);
  const { value } = await management<{ value: ArmVault[] }>('GET', `${vaultsPath(env)}?api-version=${MANAGEMENT_API_VERSION}`);
  const vault = value.find((v) => v.name.toLowerCase() === name.toLowerCase());
  if (!vault) throw new CliError(`(ResourceNotFound) The Resource 'Microsoft.KeyVault/vaults/${name}' was not found.`, 3);
  return vault;
}

export function registerKeyVaultCommands(program: Command) {
  const keyvault = group(program, 'keyvault', 'Manage vaults and their secrets');

  keyvault.command('create')
    .description('Create a vault')
    .requiredOption('-n, --name <name>', 'name of the vault')
    .option('-g, --resource-group <group>', `resource group (default: ${DEFAULT_RESOURCE_GROUP}, created when missing)`)
    .option('-l, --location <location>', 'location', DEFAULT_LOCATION)
    .addOption(boolOption('--enable-rbac-authorization [bool]', 'use Azure RBAC for data-plane authorization'))
    .option('--retention-days <days>', 'soft-delete retention in days (7-90)', (v) => parsePositiveInt(v, '--retention-days'))
    .addOption(boolOption('--enable-purge-protection [bool]', 'forbid purging soft-deleted vaults and objects during retention'))
    .addOption(new Option('--sku <sku>', 'pricing tier').choices(['standard', 'premium']).default('standard'))
    .option('--tags [tags...]', 'space-separated tags: key[=value] [key[=value] ...]; "" clears')
    .option('--no-self-perms', 'do not grant the caller an access policy (access-policy vaults only)')
    .action(action(async (opts: {
      name: string; resourceGroup?: string; location: string; enableRbacAuthorization?: boolean; retentionDays?: number;
      enablePurgeProtection?: boolean; sku: string; tags?: string[]; selfPerms: boolean;
    }, env) => {
      const context = env.context();
      // az 2.45: access policies unless RBAC is asked for, and the creator gets a policy.
      const rbac = opts.enableRbacAuthorization ?? false;
      const accessPolicies = !rbac && opts.selfPerms
        ? [{ tenantId: context.profile.tenantId, objectId: await context.callerObjectId(), permissions: CREATOR_PERMISSIONS }]
        : undefined;
      const body = {
        location: opts.location,
        tags: parseTags(opts.tags),
        properties: {
          tenantId: context.profile.tenantId,
          sku: { family: 'A', name: opts.sku },
          enableRbacAuthorization: rbac,
          accessPolicies,
          softDeleteRetentionInDays: opts.retentionDays,
          enablePurgeProtection: opts.enablePurgeProtection,
        },
      };
      const resourceGroup = opts.resourceGroup ?? DEFAULT_RESOURCE_GROUP;
      const put = () => context.management<ArmVault>('PUT', `${vaultsPath(env, resourceGroup)}/${encodeURIComponent(opts.name)}?api-version=${MANAGEMENT_API_VERSION}`, { body });
      try {
        return withResourceGroup(await put());
      } catch (err) {
        // A named group must exist (as in az); the default one is created on first use.
        if (opts.resourceGroup || !(err instanceof CliError) || err.code !== 'ResourceGroupNotFound') throw err;
        await context.management('PUT', `/subscriptions/${context.subscriptionId()}/resourcegroups/${resourceGroup}?api-version=${RESOURCE_GROUPS_API_VERSION}`, {
          body: { location: opts.location },
        });
        return withResourceGroup(await put());
      }
    }));

  keyvault.command('show')
    .description('Show a vault')
    .requiredOption('-n, --name <name>', 'name of the vault')
    .option('-g, --resource-group <group>', 'resource group (default: found by name)')
    .action(action(async (opts: { name: string; resourceGroup?: string }, env) => withResourceGroup(await findVault(env, opts.name, opts.resourceGroup))));

  keyvault.command('set-policy')
    .description('Grant a principal data-plane permissions on an access-policy vault')
    .requiredOption('-n, --name <name>', 'name of the vault')
    .option('-g, --resource-group <group>', 'resource group (default: found by name)')
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
      const permissions = {
        secrets: opts.secretPermissions, keys: opts.keyPermissions, certificates: opts.certificatePermissions, storage: opts.storagePermissions,
      };
      if (Object.values(permissions).every((p) => p === undefined)) {
        throw usageError('--secret-permissions | --key-permissions | --certificate-permissions | --storage-permissions');
      }
      await context.management('PUT', `${vault.id}/accessPolicies/add?api-version=${MANAGEMENT_API_VERSION}`, {
        body: { properties: { accessPolicies: [{ tenantId: context.profile.tenantId, objectId: opts.objectId, permissions }] } },
      });
      return withResourceGroup(await context.management<ArmVault>('GET', `${vault.id}?api-version=${MANAGEMENT_API_VERSION}`));
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
