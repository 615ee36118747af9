import { Option, type Command } from 'commander';
import { action, group, parseTags, type ActionEnv } from './command.js';
import { CliError, usageError } from './errors.js';
import { MANAGEMENT_API_VERSION, findVault, groupLocation, subscriptionPath, withResourceGroup, type ArmVault } from './keyvault.js';

/** The Microsoft.Network api-version the CLI speaks (what az 2.6x's azure-mgmt-network sends). */
export const NETWORK_API_VERSION = '2024-05-01';

interface ArmResource { id: string; name: string; type: string; location?: string; tags?: Record<string, string>; properties: Record<string, any> }

const networkPath = (env: ActionEnv, resourceGroup?: string) =>
  `${subscriptionPath(env)}${resourceGroup ? `/resourceGroups/${encodeURIComponent(resourceGroup)}` : ''}/providers/Microsoft.Network`;
type NetworkType = 'virtualNetworks' | 'privateEndpoints';
const resourcePath = (env: ActionEnv, type: NetworkType, resourceGroup: string, name: string) => `${networkPath(env, resourceGroup)}/${type}/${encodeURIComponent(name)}`;
const vnetPath = (env: ActionEnv, resourceGroup: string, name: string) => resourcePath(env, 'virtualNetworks', resourceGroup, name);
const endpointPath = (env: ActionEnv, resourceGroup: string, name: string) => resourcePath(env, 'privateEndpoints', resourceGroup, name);
const subnetId = (env: ActionEnv, resourceGroup: string, vnet: string, subnet: string) =>
  `${subscriptionPath(env)}/resourceGroups/${resourceGroup}/providers/Microsoft.Network/virtualNetworks/${vnet}/subnets/${subnet}`;
const versioned = (path: string) => `${path}?api-version=${NETWORK_API_VERSION}`;

/** az's network resources print with their resource group, as every ARM resource under a group does. */
const get = async (env: ActionEnv, path: string) => withResourceGroup(await env.context().management<ArmResource>('GET', versioned(path)));
const list = async (env: ActionEnv, path: string) =>
  (await env.context().management<{ value: ArmResource[] }>('GET', versioned(path))).value.map(withResourceGroup);
const remove = async (env: ActionEnv, path: string) => {
  await env.context().management('DELETE', versioned(path));
  return undefined;
};

/** `show`, `list` and `delete` of a Microsoft.Network resource type, as az has them for each. */
function showListDelete(parent: Command, named: (cmd: Command) => Command, type: NetworkType, what: { one: string; many: string; deleted: string }) {
  named(parent.command('show').description(`Show ${what.one}`))
    .action(action(async (opts: { resourceGroup: string; name: string }, env) => get(env, resourcePath(env, type, opts.resourceGroup, opts.name))));
  parent.command('list').description(`List ${what.many}`)
    .option('-g, --resource-group <group>', 'resource group (default: the whole subscription)')
    .action(action(async (opts: { resourceGroup?: string }, env) => list(env, `${networkPath(env, opts.resourceGroup)}/${type}`)));
  named(parent.command('delete').description(`Delete ${what.one} (${what.deleted})`))
    .action(action(async (opts: { resourceGroup: string; name: string }, env) => remove(env, resourcePath(env, type, opts.resourceGroup, opts.name))));
}

/** Where a new resource goes: `--location`, else its resource group's location (which must exist), as az does. */
async function locationFor(env: ActionEnv, resourceGroup: string, location?: string) {
  if (location) return location;
  const at = await groupLocation(env, resourceGroup);
  if (at === undefined) throw new CliError(`(ResourceGroupNotFound) Resource group '${resourceGroup}' could not be found.`, 3, 'ResourceGroupNotFound');
  return at;
}

/**
 * az spells list-valued prefixes in the plural (`--address-prefixes`) and argparse accepts the singular as an
 * abbreviation; commander does not abbreviate, so the singular is a hidden alias.
 */
const prefixes = (cmd: Command, plural: string, description: string, defaultValue?: string) => cmd
  .addOption(new Option(`--${plural} <prefixes...>`, `${description}${defaultValue ? ` (default: ${defaultValue})` : ''}`))
  .addOption(new Option(`--${plural.replace(/es$/, '')} <prefixes...>`).hideHelp());
const prefixValue = (opts: Record<string, unknown>, plural: string) => {
  const camel = (flag: string) => flag.replace(/-(\w)/g, (_m, c: string) => c.toUpperCase());
  return (opts[camel(plural)] ?? opts[camel(plural.replace(/es$/, ''))]) as string[] | undefined;
};

function registerVnetCommands(network: Command) {
  const vnet = group(network, 'vnet', 'Manage virtual networks (their subnets are address ranges vault network rules admit)');
  const named = (cmd: Command) => cmd.requiredOption('-g, --resource-group <group>', 'resource group').requiredOption('-n, --name <name>', 'name of the virtual network');

  prefixes(named(vnet.command('create').description('Create a virtual network, optionally with one subnet')), 'address-prefixes', 'space-separated CIDR address prefixes', '10.0.0.0/16')
    .option('--subnet-name <name>', 'name of a subnet to create with the network')
    .addOption(new Option('--subnet-prefixes <prefixes...>', 'the subnet\'s CIDR address prefix (default: 10.0.0.0/24)'))
    .addOption(new Option('--subnet-prefix <prefixes...>').hideHelp())
    .option('-l, --location <location>', 'location (default: the resource group\'s)')
    .option('--tags [tags...]', 'space-separated tags: key[=value] [key[=value] ...]')
    .action(action(async (opts: { resourceGroup: string; name: string; subnetName?: string; location?: string; tags?: string[] } & Record<string, unknown>, env) => {
      const subnetPrefixes = prefixValue(opts, 'subnet-prefixes');
      if (subnetPrefixes && !opts.subnetName) throw usageError('--subnet-prefixes requires --subnet-name');
      if (subnetPrefixes && subnetPrefixes.length !== 1) throw usageError('Coffer subnets have one address prefix');
      const body = {
        location: await locationFor(env, opts.resourceGroup, opts.location),
        tags: parseTags(opts.tags),
        properties: {
          addressSpace: { addressPrefixes: prefixValue(opts, 'address-prefixes') ?? ['10.0.0.0/16'] },
          ...(opts.subnetName ? { subnets: [{ name: opts.subnetName, properties: { addressPrefix: subnetPrefixes?.[0] ?? '10.0.0.0/24' } }] } : {}),
        },
      };
      const created = await env.context().management<ArmResource>('PUT', versioned(vnetPath(env, opts.resourceGroup, opts.name)), { body });
      return { newVNet: withResourceGroup(created) };
    }));

  showListDelete(vnet, named, 'virtualNetworks', { one: 'a virtual network', many: 'virtual networks', deleted: 'with its subnets' });

  const subnet = group(vnet, 'subnet', 'Manage the subnets of a virtual network');
  const subnetNamed = (cmd: Command) => cmd.requiredOption('-g, --resource-group <group>', 'resource group')
    .requiredOption('--vnet-name <name>', 'name of the virtual network').requiredOption('-n, --name <name>', 'name of the subnet');
  const subnetPath = (env: ActionEnv, o: { resourceGroup: string; vnetName: string; name: string }) =>
    `${vnetPath(env, o.resourceGroup, o.vnetName)}/subnets/${encodeURIComponent(o.name)}`;
  prefixes(subnetNamed(subnet.command('create').description('Create or update a subnet')), 'address-prefixes', 'the subnet\'s CIDR address prefix')
    .action(action(async (opts: { resourceGroup: string; vnetName: string; name: string } & Record<string, unknown>, env) => {
      const given = prefixValue(opts, 'address-prefixes');
      if (!given || given.length !== 1) throw usageError('--address-prefixes takes one CIDR prefix');
      return withResourceGroup(await env.context().management<ArmResource>('PUT', versioned(subnetPath(env, opts)), { body: { properties: { addressPrefix: given[0] } } }));
    }));
  subnetNamed(subnet.command('show').description('Show a subnet'))
    .action(action(async (opts: { resourceGroup: string; vnetName: string; name: string }, env) => get(env, subnetPath(env, opts))));
  subnet.command('list').description('List the subnets of a virtual network')
    .requiredOption('-g, --resource-group <group>', 'resource group').requiredOption('--vnet-name <name>', 'name of the virtual network')
    .action(action(async (opts: { resourceGroup: string; vnetName: string }, env) => list(env, `${vnetPath(env, opts.resourceGroup, opts.vnetName)}/subnets`)));
  subnetNamed(subnet.command('delete').description('Delete a subnet'))
    .action(action(async (opts: { resourceGroup: string; vnetName: string; name: string }, env) => remove(env, subnetPath(env, opts))));
}

function registerPrivateEndpointCommands(network: Command) {
  const pe = group(network, 'private-endpoint', 'Manage private endpoints (an address Coffer also listens on, for one vault)');
  const named = (cmd: Command) => cmd.requiredOption('-g, --resource-group <group>', 'resource group').requiredOption('-n, --name <name>', 'name of the private endpoint');

  named(pe.command('create').description('Create a private endpoint: Coffer listens on --ip-address for the vault, whatever its public access'))
    .option('--vault-name <name>', 'the vault to connect (or --private-connection-resource-id)')
    .option('--private-connection-resource-id <id>', 'resource id of the vault to connect')
    .requiredOption('--ip-address <address>', 'the endpoint\'s address (e.g. 127.20.0.5), on the server\'s port')
    .option('--connection-name <name>', 'name of the private link service connection (default: the endpoint\'s name)')
    .addOption(new Option('--group-id <id>', 'the vault\'s sub-resource').choices(['vault']).default('vault'))
    .option('--vnet-name <name>', 'virtual network of --subnet (same resource group)')
    .option('--subnet <name-or-id>', 'subnet the address must lie in (a name with --vnet-name, or an id)')
    .option('-l, --location <location>', 'location (default: the resource group\'s)')
    .option('--tags [tags...]', 'space-separated tags: key[=value] [key[=value] ...]')
    .action(action(async (opts: {
      resourceGroup: string; name: string; vaultName?: string; privateConnectionResourceId?: string; ipAddress: string; connectionName?: string;
      groupId: string; vnetName?: string; subnet?: string; location?: string; tags?: string[];
    }, env) => {
      if (!opts.vaultName === !opts.privateConnectionResourceId) throw usageError('--vault-name NAME | --private-connection-resource-id ID');
      const vaultId = opts.privateConnectionResourceId ?? (await findVault(env, opts.vaultName!)).id;
      const subnet = resolveSubnet(env, opts.resourceGroup, opts.subnet, opts.vnetName);
      const body = {
        location: await locationFor(env, opts.resourceGroup, opts.location),
        tags: parseTags(opts.tags),
        properties: {
          ...(subnet ? { subnet: { id: subnet } } : {}),
          privateLinkServiceConnections: [{ name: opts.connectionName ?? opts.name, properties: { privateLinkServiceId: vaultId, groupIds: [opts.groupId] } }],
          ipConfigurations: [{ name: 'ipconfig', properties: { groupId: opts.groupId, memberName: 'default', privateIPAddress: opts.ipAddress } }],
        },
      };
      return withResourceGroup(await env.context().management<ArmResource>('PUT', versioned(endpointPath(env, opts.resourceGroup, opts.name)), { body }));
    }));
  showListDelete(pe, named, 'privateEndpoints', { one: 'a private endpoint', many: 'private endpoints', deleted: 'every node stops listening on its address' });
}

/** az's subnet argument: an id, or a name with --vnet-name in the command's resource group. */
function resolveSubnet(env: ActionEnv, resourceGroup: string | undefined, subnet: string | undefined, vnetName: string | undefined) {
  if (!subnet) {
    if (vnetName) throw usageError('--subnet ID | --subnet NAME --vnet-name NAME');
    return undefined;
  }
  if (subnet.startsWith('/')) return subnet;
  if (!vnetName || !resourceGroup) throw usageError('--subnet ID | --subnet NAME --vnet-name NAME');
  return subnetId(env, resourceGroup, vnetName, subnet);
}

interface NetworkAcls { bypass?: string; defaultAction?: string; ipRules?: { value: string }[]; virtualNetworkRules?: { id: string; ignoreMissingVnetServiceEndpoint?: boolean }[] }

/** A vault's network rules as az prints its NetworkRuleSet (every field present, null when unset). */
const aclsOutput = (acls: NetworkAcls | undefined) => ({
  bypass: acls?.bypass ?? null,
  defaultAction: acls?.defaultAction ?? null,
  ipRules: acls?.ipRules ?? null,
  virtualNetworkRules: acls?.virtualNetworkRules?.map((r) => ({ id: r.id, ignoreMissingVnetServiceEndpoint: r.ignoreMissingVnetServiceEndpoint ?? null })) ?? null,
});

/** The same address, as az compares them: `1.2.3.4` and `1.2.3.4/32` are one rule. */
const sameIp = (a: string, b: string) => a.replace(/\/32$/, '') === b.replace(/\/32$/, '');

function registerNetworkRuleCommands(program: Command) {
  const keyvault = group(program, 'keyvault', 'Manage vaults and their secrets');
  const rules = group(keyvault, 'network-rule', 'Manage a vault\'s network rules (ipRules and virtualNetworkRules)');
  const target = (cmd: Command) => cmd
    .requiredOption('-n, --name <name>', 'name of the vault')
    .option('-g, --resource-group <group>', 'resource group (default: found by name)')
    .option('--ip-address <addresses...>', 'IPv4 addresses or CIDR ranges')
    .option('--subnet <name-or-id>', 'subnet: an id, or a name with --vnet-name (in -g)')
    .option('--vnet-name <name>', 'virtual network of --subnet');
  type RuleOpts = { name: string; resourceGroup?: string; ipAddress?: string[]; subnet?: string; vnetName?: string };

  /** Applies a change to the vault's networkAcls; az prints the vault (unchanged when there was nothing to do). */
  async function change(env: ActionEnv, opts: RuleOpts, edit: (acls: NetworkAcls, subnet: string | undefined) => boolean) {
    if (!opts.ipAddress && !opts.subnet) throw usageError('--ip-address ADDRESS [ADDRESS ...] | --subnet ID | --subnet NAME --vnet-name NAME');
    const vault = await findVault(env, opts.name, opts.resourceGroup);
    const subnet = resolveSubnet(env, opts.resourceGroup ?? withResourceGroup(vault).resourceGroup, opts.subnet, opts.vnetName);
    // As az: a vault without rules starts from Allow / AzureServices.
    const acls: NetworkAcls = structuredClone((vault.properties.networkAcls as NetworkAcls | undefined) ?? { defaultAction: 'Allow', bypass: 'AzureServices' });
    if (!edit(acls, subnet)) return withResourceGroup(vault);
    return withResourceGroup(await env.context().management<ArmVault>('PATCH', `${vault.id}?api-version=${MANAGEMENT_API_VERSION}`, { body: { properties: { networkAcls: acls } } }));
  }

  target(rules.command('add').description('Add IP or virtual-network rules to a vault'))
    .action(action(async (opts: RuleOpts, env) => change(env, opts, (acls, subnet) => {
      let changed = false;
      for (const ip of opts.ipAddress ?? []) {
        if ((acls.ipRules ?? []).some((r) => sameIp(r.value, ip))) continue;
        (acls.ipRules ??= []).push({ value: ip });
        changed = true;
      }
      if (subnet && !(acls.virtualNetworkRules ?? []).some((r) => r.id.toLowerCase() === subnet.toLowerCase())) {
        (acls.virtualNetworkRules ??= []).push({ id: subnet });
        changed = true;
      }
      return changed;
    })));

  target(rules.command('remove').description('Remove IP or virtual-network rules from a vault'))
    .action(action(async (opts: RuleOpts, env) => change(env, opts, (acls, subnet) => {
      const ips = acls.ipRules ?? [];
      const vnets = acls.virtualNetworkRules ?? [];
      acls.ipRules = ips.filter((r) => !(opts.ipAddress ?? []).some((ip) => sameIp(r.value, ip)));
      acls.virtualNetworkRules = vnets.filter((r) => !subnet || r.id.toLowerCase() !== subnet.toLowerCase());
      return acls.ipRules.length !== ips.length || acls.virtualNetworkRules.length !== vnets.length;
    })));

  rules.command('list').description('List a vault\'s network rules')
    .requiredOption('-n, --name <name>', 'name of the vault')
    .option('-g, --resource-group <group>', 'resource group (default: found by name)')
    .action(action(async (opts: { name: string; resourceGroup?: string }, env) =>
      aclsOutput((await findVault(env, opts.name, opts.resourceGroup)).properties.networkAcls as NetworkAcls | undefined)));
}

/**
 * Trusted services are Coffer's stand-in for Azure's "trusted Microsoft services": principals the deployment
 * administrator names, let through the firewall of vaults whose networkAcls bypass is AzureServices.
 */
function registerTrustedServiceCommands(program: Command) {
  const keyvault = group(program, 'keyvault', 'Manage vaults and their secrets');
  const trusted = group(keyvault, 'trusted-service', 'Manage the principals vault firewalls trust when bypass is AzureServices (deployment administrator only)');
  const path = (id: string) => `/coffer/admin/trusted-services/${encodeURIComponent(id)}`;
  trusted.command('add').description('Mark a principal as a trusted service')
    .requiredOption('--id <id>', 'object id or app id of the principal')
    .action(action(async (opts: { id: string }, env) => env.context().management('PUT', path(opts.id))));
  trusted.command('remove').description('Stop trusting a principal')
    .requiredOption('--id <id>', 'object id or app id of the principal')
    .action(action(async (opts: { id: string }, env) => {
      await env.context().management('DELETE', path(opts.id));
      return undefined;
    }));
  trusted.command('list').description('List the trusted services')
    .action(action(async (_opts, env) => (await env.context().management<{ value: unknown[] }>('GET', '/coffer/admin/trusted-services')).value));
}

/** `coffer network …` (virtual networks, subnets, private endpoints) and the vault commands that use them. */
export function registerNetworkCommands(program: Command) {
  const network = group(program, 'network', 'Manage virtual networks and private endpoints');
  registerVnetCommands(network);
  registerPrivateEndpointCommands(network);
  registerNetworkRuleCommands(program);
  registerTrustedServiceCommands(program);
}
