import net from 'node:net';
import type { Kysely } from 'kysely';
import type { Database } from '../storage/schema.js';
import type { Clock } from '../clock.js';
import { armError } from './arm.js';
import { parseIpv4Range, rangeContains, rangesOverlap, type Ipv4Range } from '../gates/network/ip-rules.js';

/** The tables of migration 0006_network (typed here, next to their only user). */
export interface NetworkTables {
  /** `id` is the network's ARM resource id lower-cased: ARM ids compare case-insensitively. */
  virtual_networks: {
    id: string; subscription_id: string; resource_group: string; name: string; location: string;
    address_prefixes: string; tags: string; created_at: number;
  };
  subnets: { vnet_id: string; name_key: string; name: string; address_prefix: string; created_at: number };
  /** `vault_id` is the vault's internal id, so a purged vault's successor of the same name is not connected. */
  private_endpoints: {
    id: string; subscription_id: string; resource_group: string; name: string; location: string; vault_id: string;
    vault_resource_id: string; connection_name: string; ip_address: string; subnet_id: string | null; tags: string; created_at: number;
  };
  trusted_services: { principal_id: string; created_by: string; created_at: number };
}
type NetworkDatabase = Database & NetworkTables;

export interface Subnet { id: string; name: string; addressPrefix: string }
export interface VirtualNetwork {
  id: string; name: string; resourceGroup: string; location: string; tags: Record<string, string>;
  addressPrefixes: string[]; subnets: Subnet[];
}
export interface PrivateEndpoint {
  id: string; name: string; resourceGroup: string; location: string; tags: Record<string, string>;
  vaultId: string; vaultResourceId: string; connectionName: string; ipAddress: string; subnetId: string | null;
}

/** Azure's name rule for network resources: 1–80 of letters, digits, `_`, `.`, `-`, starting alphanumeric, not ending in `.` or `-`. */
const NETWORK_NAME = /^[a-zA-Z0-9](?:[\w.-]{0,78}[\w])?$/;
const SUBNET_ID = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.Network\/virtualNetworks\/([^/]+)\/subnets\/([^/]+)$/i;

export const vnetResourceId = (subscriptionId: string, resourceGroup: string, name: string) =>
  `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/providers/Microsoft.Network/virtualNetworks/${name}`;
export const privateEndpointResourceId = (subscriptionId: string, resourceGroup: string, name: string) =>
  `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/providers/Microsoft.Network/privateEndpoints/${name}`;

/** Whether a string is a subnet's resource id (the only thing a vault's virtual-network rule may name). */
export const isSubnetId = (id: string) => SUBNET_ID.test(id);

function checkName(kind: string, name: string) {
  if (!NETWORK_NAME.test(name)) {
    throw armError(400, 'InvalidResourceName', `Resource name ${name} is invalid. The name can be up to 80 characters long. It must begin with a word character, and it must end with a word character or with '_'. The name may contain word characters or '.', '-', '_'. (${kind})`);
  }
}

/** A CIDR address prefix as Azure requires it of networks and subnets: well-formed, host bits clear. */
function checkPrefix(prefix: unknown, resourceId: string): Ipv4Range {
  const range = typeof prefix === 'string' && prefix.includes('/') ? parseIpv4Range(prefix) : undefined;
  if (!range) {
    throw armError(400, 'InvalidAddressPrefixFormat', `Address prefix ${String(prefix)} of resource ${resourceId} is not formatted correctly. It should follow CIDR notation, for example 10.0.0.0/24.`);
  }
  if (range.hostBitsSet) {
    throw armError(400, 'InvalidCIDRNotation', `The address prefix ${String(prefix)} in resource ${resourceId} has an invalid CIDR notation. For the given prefix length, the address prefix should be ${range.canonical}.`);
  }
  return range;
}

export type NetworkService = ReturnType<typeof createNetworkService>;

/**
 * Virtual networks, subnets, private endpoints and trusted services: the network resources the data-plane firewall
 * reads. Subnets are real address ranges (what a vault's virtual-network rule admits); a private endpoint is an
 * address Coffer listens on for one vault.
 */
export function createNetworkService(deps: { db: Kysely<Database>; clock: Clock; subscriptionId: string }) {
  const db = deps.db as unknown as Kysely<NetworkDatabase>;
  const { subscriptionId, clock } = deps;

  const loadVnet = async (resourceGroup: string, name: string): Promise<VirtualNetwork | undefined> => {
    const id = vnetResourceId(subscriptionId, resourceGroup, name);
    const row = await db.selectFrom('virtual_networks').selectAll().where('id', '=', id.toLowerCase()).executeTakeFirst();
    if (!row) return undefined;
    const subnets = await db.selectFrom('subnets').selectAll().where('vnet_id', '=', row.id).orderBy('name_key').execute();
    const vnetId = vnetResourceId(subscriptionId, row.resource_group, row.name);
    return {
      id: vnetId, name: row.name, resourceGroup: row.resource_group, location: row.location, tags: JSON.parse(row.tags),
      addressPrefixes: JSON.parse(row.address_prefixes),
      subnets: subnets.map((s) => ({ id: `${vnetId}/subnets/${s.name}`, name: s.name, addressPrefix: s.address_prefix })),
    };
  };

  /** Refuses a subnet outside its network or overlapping a sibling (Azure's NetcfgSubnet… errors). */
  function checkSubnetFits(vnet: { name: string; addressPrefixes: string[] }, subnet: { name: string; addressPrefix: string }, siblings: Subnet[]) {
    const range = checkPrefix(subnet.addressPrefix, `${vnet.name}/subnets/${subnet.name}`);
    if (!vnet.addressPrefixes.some((p) => rangeContains(parseIpv4Range(p)!, range))) {
      throw armError(400, 'NetcfgSubnetRangeOutsideVnet', `Subnet '${subnet.name}' is not valid because its IP address range is outside the IP address range of virtual network '${vnet.name}'.`);
    }
    const clash = siblings.find((s) => s.name.toLowerCase() !== subnet.name.toLowerCase() && rangesOverlap(parseIpv4Range(s.addressPrefix)!, range));
    if (clash) {
      throw armError(400, 'NetcfgSubnetRangesOverlap', `Subnet '${subnet.name}' is not valid because its IP address range overlaps with that of an existing subnet '${clash.name}' in virtual network '${vnet.name}'.`);
    }
  }

  const subnetUsers = async (subnetId: string) =>
    (await db.selectFrom('private_endpoints').select(['resource_group', 'name']).where('subnet_id', '=', subnetId.toLowerCase()).execute())
      .map((pe) => privateEndpointResourceId(subscriptionId, pe.resource_group, pe.name));
  const inUse = (subnetName: string, users: string[]) =>
    armError(400, 'InUseSubnetCannotBeDeleted', `Subnet ${subnetName} is in use by ${users.join(', ')} and cannot be deleted. In order to delete the subnet, delete all the resources within the subnet.`);

  const toEndpoint = (row: NetworkTables['private_endpoints']): PrivateEndpoint => ({
    id: privateEndpointResourceId(subscriptionId, row.resource_group, row.name), name: row.name, resourceGroup: row.resource_group,
    location: row.location, tags: JSON.parse(row.tags), vaultId: row.vault_id, vaultResourceId: row.vault_resource_id,
    connectionName: row.connection_name, ipAddress: row.ip_address, subnetId: row.subnet_id,
  });

  const getPrivateEndpoint = async (resourceGroup: string, name: string) => {
    const row = await db.selectFrom('private_endpoints').selectAll()
      .where('id', '=', privateEndpointResourceId(subscriptionId, resourceGroup, name).toLowerCase()).executeTakeFirst();
    return row && toEndpoint(row);
  };

  return {
    getVnet: loadVnet,

    async listVnets(resourceGroup?: string): Promise<VirtualNetwork[]> {
      let q = db.selectFrom('virtual_networks').select(['resource_group', 'name']).where('subscription_id', '=', subscriptionId);
      if (resourceGroup) q = q.where('resource_group', '=', resourceGroup);
      const rows = await q.orderBy('id').execute();
      return (await Promise.all(rows.map((r) => loadVnet(r.resource_group, r.name)))).filter((v): v is VirtualNetwork => v !== undefined);
    },

    /** Creates or replaces a network (PUT). Subnets given replace the network's subnets; omitted, they are kept. */
    async putVnet(input: { resourceGroup: string; name: string; location: string; tags?: Record<string, string>; addressPrefixes: string[]; subnets?: { name: string; addressPrefix: string }[] }) {
      checkName('virtualNetworks', input.name);
      const id = vnetResourceId(subscriptionId, input.resourceGroup, input.name);
      if (!input.addressPrefixes.length) throw armError(400, 'InvalidRequestFormat', `Virtual network ${id} must have at least one address prefix (properties.addressSpace.addressPrefixes).`);
      const ranges = input.addressPrefixes.map((p) => checkPrefix(p, id));
      ranges.forEach((a, i) => ranges.slice(i + 1).forEach((b) => {
        if (rangesOverlap(a, b)) throw armError(400, 'NetcfgDuplicateAddressPrefixes', `Virtual network ${id} has overlapping address prefixes in its address space.`);
      }));
      const existing = await loadVnet(input.resourceGroup, input.name);
      const subnets = input.subnets ?? existing?.subnets ?? [];
      for (const s of subnets) checkName('subnets', s.name);
      const names = new Set<string>();
      for (const s of subnets) {
        if (names.has(s.name.toLowerCase())) throw armError(400, 'InvalidRequestFormat', `Virtual network ${id} has more than one subnet named '${s.name}'.`);
        names.add(s.name.toLowerCase());
        checkSubnetFits({ name: input.name, addressPrefixes: input.addressPrefixes }, s, subnets.map((x) => ({ ...x, id: '' })));
      }
      const key = id.toLowerCase();
      for (const gone of (existing?.subnets ?? []).filter((s) => !names.has(s.name.toLowerCase()))) {
        const users = await subnetUsers(gone.id);
        if (users.length) throw inUse(gone.name, users);
      }
      await db.transaction().execute(async (trx) => {
        const row = { address_prefixes: JSON.stringify(input.addressPrefixes), location: input.location, tags: JSON.stringify(input.tags ?? {}) };
        if (existing) await trx.updateTable('virtual_networks').set(row).where('id', '=', key).execute();
        else {
          await trx.insertInto('virtual_networks').values({
            id: key, subscription_id: subscriptionId, resource_group: input.resourceGroup, name: input.name, created_at: clock.now(), ...row,
          }).execute();
        }
        await trx.deleteFrom('subnets').where('vnet_id', '=', key).execute();
        for (const s of subnets) {
          await trx.insertInto('subnets').values({ vnet_id: key, name_key: s.name.toLowerCase(), name: s.name, address_prefix: s.addressPrefix, created_at: clock.now() }).execute();
        }
      });
      return { vnet: (await loadVnet(input.resourceGroup, input.name))!, created: !existing };
    },

    /** Deletes a network and its subnets; false when there was none. Refused while a private endpoint sits in one of them. */
    async deleteVnet(resourceGroup: string, name: string) {
      const vnet = await loadVnet(resourceGroup, name);
      if (!vnet) return false;
      for (const s of vnet.subnets) {
        const users = await subnetUsers(s.id);
        if (users.length) throw inUse(s.name, users);
      }
      await db.deleteFrom('subnets').where('vnet_id', '=', vnet.id.toLowerCase()).execute();
      await db.deleteFrom('virtual_networks').where('id', '=', vnet.id.toLowerCase()).execute();
      return true;
    },

    async putSubnet(resourceGroup: string, vnetName: string, subnet: { name: string; addressPrefix: string }) {
      const vnet = await loadVnet(resourceGroup, vnetName);
      if (!vnet) return undefined;
      checkName('subnets', subnet.name);
      checkSubnetFits(vnet, subnet, vnet.subnets);
      const key = vnet.id.toLowerCase();
      const existed = vnet.subnets.some((s) => s.name.toLowerCase() === subnet.name.toLowerCase());
      await db.insertInto('subnets').values({ vnet_id: key, name_key: subnet.name.toLowerCase(), name: subnet.name, address_prefix: subnet.addressPrefix, created_at: clock.now() })
        .onConflict((oc) => oc.columns(['vnet_id', 'name_key']).doUpdateSet({ address_prefix: subnet.addressPrefix })).execute();
      const saved = (await loadVnet(resourceGroup, vnetName))!.subnets.find((s) => s.name.toLowerCase() === subnet.name.toLowerCase())!;
      return { subnet: saved, created: !existed };
    },

    /** Deletes a subnet; false when there was none. A vault rule naming it then admits nobody (as in Azure). */
    async deleteSubnet(resourceGroup: string, vnetName: string, name: string) {
      const vnet = await loadVnet(resourceGroup, vnetName);
      const subnet = vnet?.subnets.find((s) => s.name.toLowerCase() === name.toLowerCase());
      if (!vnet || !subnet) return false;
      const users = await subnetUsers(subnet.id);
      if (users.length) throw inUse(subnet.name, users);
      await db.deleteFrom('subnets').where('vnet_id', '=', vnet.id.toLowerCase()).where('name_key', '=', name.toLowerCase()).execute();
      return true;
    },

    /** The address prefixes of the subnets these resource ids name (the firewall's SubnetPrefixes seam). */
    async subnetPrefixes(subnetIds: string[]): Promise<string[]> {
      const wanted = subnetIds.map((id) => SUBNET_ID.exec(id)).filter((m): m is RegExpExecArray => m !== null && m[1].toLowerCase() === subscriptionId.toLowerCase());
      if (!wanted.length) return [];
      const rows = await db.selectFrom('subnets').select(['vnet_id', 'name_key', 'address_prefix'])
        .where('vnet_id', 'in', wanted.map((m) => vnetResourceId(subscriptionId, m[2], m[3]).toLowerCase())).execute();
      return rows.filter((r) => wanted.some((m) => vnetResourceId(subscriptionId, m[2], m[3]).toLowerCase() === r.vnet_id && m[4].toLowerCase() === r.name_key))
        .map((r) => r.address_prefix);
    },

    getPrivateEndpoint,

    async listPrivateEndpoints(filter: { resourceGroup?: string; vaultId?: string } = {}) {
      let q = db.selectFrom('private_endpoints').selectAll().where('subscription_id', '=', subscriptionId);
      if (filter.resourceGroup) q = q.where('resource_group', '=', filter.resourceGroup);
      if (filter.vaultId) q = q.where('vault_id', '=', filter.vaultId);
      return (await q.orderBy('id').execute()).map(toEndpoint);
    },

    /** Every private-endpoint address (what each node listens on). */
    async privateEndpointAddresses(): Promise<string[]> {
      return (await db.selectFrom('private_endpoints').select('ip_address').execute()).map((r) => r.ip_address);
    },

    /** The vault (internal id) a private endpoint at this address connects, if any. */
    async vaultAtAddress(address: string): Promise<string | undefined> {
      return (await db.selectFrom('private_endpoints').select('vault_id').where('ip_address', '=', address).executeTakeFirst())?.vault_id;
    },

    /** Creates a private endpoint (an endpoint is immutable once made: a PUT of an existing one must name the same vault and address). */
    async putPrivateEndpoint(input: {
      resourceGroup: string; name: string; location: string; tags?: Record<string, string>; vault: { id: string; resourceId: string };
      connectionName: string; ipAddress: string; subnetId?: string;
    }) {
      checkName('privateEndpoints', input.name);
      const id = privateEndpointResourceId(subscriptionId, input.resourceGroup, input.name);
      const ip = input.ipAddress;
      // A private endpoint is a unicast address Coffer binds; wildcard, broadcast and multicast addresses are not.
      if (!net.isIPv4(ip) || ip === '0.0.0.0' || ip === '255.255.255.255' || Number(ip.split('.')[0]) >= 224) {
        throw armError(400, 'InvalidPrivateIPAddress', `Private IP address ${ip} of private endpoint ${id} is not a valid unicast IPv4 address.`);
      }
      let subnetKey: string | null = null;
      if (input.subnetId) {
        const m = SUBNET_ID.exec(input.subnetId);
        const vnet = m && m[1].toLowerCase() === subscriptionId.toLowerCase() ? await loadVnet(m[2], m[3]) : undefined;
        const subnet = vnet?.subnets.find((s) => s.name.toLowerCase() === m![4].toLowerCase());
        if (!subnet) throw armError(400, 'InvalidResourceReference', `Resource ${input.subnetId} referenced by resource ${id} was not found. Please make sure that the referenced resource exists, and that both resources are in the same region.`);
        if (!rangeContains(parseIpv4Range(subnet.addressPrefix)!, parseIpv4Range(ip)!)) {
          throw armError(400, 'PrivateIPAddressNotInSubnet', `Private static IP address ${ip} does not belong to the range of subnet prefix ${subnet.addressPrefix}.`);
        }
        subnetKey = subnet.id.toLowerCase();
      }
      const existing = await getPrivateEndpoint(input.resourceGroup, input.name);
      if (existing) {
        if (existing.vaultId !== input.vault.id || existing.ipAddress !== ip) {
          throw armError(400, 'CannotChangePrivateEndpoint', `Private endpoint ${id} already connects ${existing.vaultResourceId} at ${existing.ipAddress}; delete it to connect another vault or address.`);
        }
        await db.updateTable('private_endpoints').set({ tags: JSON.stringify(input.tags ?? {}) }).where('id', '=', id.toLowerCase()).execute();
        return { endpoint: (await getPrivateEndpoint(input.resourceGroup, input.name))!, created: false };
      }
      const inserted = await db.insertInto('private_endpoints').values({
        id: id.toLowerCase(), subscription_id: subscriptionId, resource_group: input.resourceGroup, name: input.name, location: input.location,
        vault_id: input.vault.id, vault_resource_id: input.vault.resourceId, connection_name: input.connectionName, ip_address: ip,
        subnet_id: subnetKey, tags: JSON.stringify(input.tags ?? {}), created_at: clock.now(),
      }).onConflict((oc) => oc.doNothing()).returningAll().executeTakeFirst();
      if (!inserted) {
        throw armError(409, 'PrivateIPAddressInUse', `IP address ${ip} is already in use by another private endpoint.`);
      }
      return { endpoint: toEndpoint(inserted), created: true };
    },

    async deletePrivateEndpoint(resourceGroup: string, name: string) {
      const found = await db.deleteFrom('private_endpoints')
        .where('id', '=', privateEndpointResourceId(subscriptionId, resourceGroup, name).toLowerCase()).returningAll().executeTakeFirst();
      return found && toEndpoint(found);
    },

    async isTrustedService(principalId: string) {
      return (await db.selectFrom('trusted_services').select('principal_id').where('principal_id', '=', principalId).executeTakeFirst()) !== undefined;
    },
    async listTrustedServices() {
      return db.selectFrom('trusted_services').selectAll().orderBy('created_at').execute();
    },
    async addTrustedService(principalId: string, createdBy: string) {
      await db.insertInto('trusted_services').values({ principal_id: principalId, created_by: createdBy, created_at: clock.now() })
        .onConflict((oc) => oc.doNothing()).execute();
    },
    async removeTrustedService(principalId: string) {
      const r = await db.deleteFrom('trusted_services').where('principal_id', '=', principalId).executeTakeFirst();
      return Number(r.numDeletedRows) > 0;
    },
  };
}
