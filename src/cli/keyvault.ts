import { Option, type Command } from 'commander';
import { action, boolOption, group, parsePositiveInt, parseTags, type ActionEnv } from './command.js';
import { CliError } from './errors.js';

/** The management api-version the CLI speaks (what @azure/arm-keyvault of az 2.45's era sends). */
export const MANAGEMENT_API_VERSION = '2023-07-01';
const RESOURCE_GROUPS_API_VERSION = '2021-04-01';
/** az requires `--resource-group`; Coffer has one subscription and lets a default group stand in. */
export const DEFAULT_RESOURCE_GROUP = 'coffer-default';
const DEFAULT_LOCATION = 'local';

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
    .action(action(async (opts: {
      name: string; resourceGroup?: string; location: string; enableRbacAuthorization?: boolean; retentionDays?: number;
      enablePurgeProtection?: boolean; sku: string; tags?: string[];
    }, env) => {
      const context = env.context();
      const body = {
        location: opts.location,
        tags: parseTags(opts.tags),
        properties: {
          tenantId: context.profile.tenantId,
          sku: { family: 'A', name: opts.sku },
          enableRbacAuthorization: opts.enableRbacAuthorization,
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
    .action(action(async (opts: { name: string; resourceGroup?: string }, env) => {
      const management = env.context().management;
      if (opts.resourceGroup) {
        return withResourceGroup(await management<ArmVault>('GET', `${vaultsPath(env, opts.resourceGroup)}/${encodeURIComponent(opts.name)}?api-version=${MANAGEMENT_API_VERSION}`));
      }
      const { value } = await management<{ value: ArmVault[] }>('GET', `${vaultsPath(env)}?api-version=${MANAGEMENT_API_VERSION}`);
      const vault = value.find((v) => v.name.toLowerCase() === opts.name.toLowerCase());
      if (!vault) throw new CliError(`(ResourceNotFound) The Resource 'Microsoft.KeyVault/vaults/${opts.name}' was not found.`, 3);
      return withResourceGroup(vault);
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
