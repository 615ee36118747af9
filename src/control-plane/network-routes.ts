import crypto from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { armError, requireDeploymentAdmin, type Arm } from './arm.js';
import type { ResourceGroupsService } from './resource-groups.js';
import type { VaultsService } from './vaults.js';
import type { Directory } from '../identity/directory.js';
import type { Endpoints } from '../endpoints.js';
import type { NetworkService, PrivateEndpoint, Subnet, VirtualNetwork } from './network.js';

type GroupParams = { subscriptionId: string; resourceGroup: string };
type VnetParams = GroupParams & { vnetName: string };
type SubnetParams = VnetParams & { subnetName: string };
type EndpointParams = GroupParams & { endpointName: string };

/** ARM etags: a stable weak tag of the resource's content, as Microsoft.Network returns them. */
const etag = (value: unknown) => `W/"${crypto.createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 32)}"`;
/** A stable GUID per resource id (Microsoft.Network reports one as `resourceGuid`). */
const resourceGuid = (id: string) => {
  const h = crypto.createHash('sha256').update(id.toLowerCase()).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
};

const toArmSubnet = (s: Subnet, endpoints: PrivateEndpoint[]) => {
  const properties = {
    provisioningState: 'Succeeded',
    addressPrefix: s.addressPrefix,
    ...(endpoints.length ? { privateEndpoints: endpoints.map((e) => ({ id: e.id })) } : {}),
    delegations: [],
    privateEndpointNetworkPolicies: 'Disabled',
    privateLinkServiceNetworkPolicies: 'Enabled',
  };
  return { name: s.name, id: s.id, etag: etag(properties), type: 'Microsoft.Network/virtualNetworks/subnets', properties };
};

const toArmVnet = (v: VirtualNetwork, endpoints: PrivateEndpoint[]) => {
  const properties = {
    provisioningState: 'Succeeded',
    resourceGuid: resourceGuid(v.id),
    addressSpace: { addressPrefixes: v.addressPrefixes },
    subnets: v.subnets.map((s) => toArmSubnet(s, endpoints.filter((e) => e.subnetId === s.id.toLowerCase()))),
    virtualNetworkPeerings: [],
    enableDdosProtection: false,
  };
  return { name: v.name, id: v.id, etag: etag(properties), type: 'Microsoft.Network/virtualNetworks', location: v.location, tags: v.tags, properties };
};

const APPROVED = { status: 'Approved', description: 'Auto-Approved', actionsRequired: 'None' };

/** What the vault side of a private endpoint shows in the vault's `privateEndpointConnections`. */
export const toVaultConnection = (e: PrivateEndpoint) => ({
  id: `${e.vaultResourceId}/privateEndpointConnections/${e.connectionName}`,
  etag: '',
  properties: { privateEndpoint: { id: e.id }, privateLinkServiceConnectionState: APPROVED, provisioningState: 'Succeeded' },
});

const toArmEndpoint = (e: PrivateEndpoint, fqdn: string) => {
  const properties = {
    provisioningState: 'Succeeded',
    resourceGuid: resourceGuid(e.id),
    privateLinkServiceConnections: [{
      name: e.connectionName,
      id: `${e.id}/privateLinkServiceConnections/${e.connectionName}`,
      type: 'Microsoft.Network/privateEndpoints/privateLinkServiceConnections',
      properties: { provisioningState: 'Succeeded', privateLinkServiceId: e.vaultResourceId, groupIds: ['vault'], privateLinkServiceConnectionState: APPROVED },
    }],
    manualPrivateLinkServiceConnections: [],
    subnet: e.subnetId ? { id: e.subnetId } : null,
    ipConfigurations: [{ name: 'ipconfig', properties: { groupId: 'vault', memberName: 'default', privateIPAddress: e.ipAddress } }],
    customDnsConfigs: [{ fqdn, ipAddresses: [e.ipAddress] }],
    networkInterfaces: [],
  };
  return { name: e.name, id: e.id, etag: etag(properties), type: 'Microsoft.Network/privateEndpoints', location: e.location, tags: e.tags, properties };
};

const tags = { type: 'object', additionalProperties: { type: 'string' } } as const;
const subnetProperties = { type: 'object', required: ['addressPrefix'], properties: { addressPrefix: { type: 'string' } } } as const;
/** A tracked ARM resource's PUT body: location, tags and the resource's own properties. */
const trackedResourceBody = (properties: object) => ({
  type: 'object',
  required: ['location', 'properties'],
  properties: { location: { type: 'string', minLength: 1 }, tags, properties },
}) as const;
const vnetBody = trackedResourceBody({
  type: 'object',
  required: ['addressSpace'],
  properties: {
    addressSpace: { type: 'object', required: ['addressPrefixes'], properties: { addressPrefixes: { type: 'array', items: { type: 'string' }, maxItems: 64 } } },
    subnets: { type: 'array', maxItems: 256, items: { type: 'object', required: ['name', 'properties'], properties: { name: { type: 'string' }, properties: subnetProperties } } },
  },
});
const subnetBody = { type: 'object', required: ['properties'], properties: { properties: subnetProperties } } as const;
const endpointBody = trackedResourceBody({
  type: 'object',
  required: ['privateLinkServiceConnections', 'ipConfigurations'],
  properties: {
    subnet: { type: 'object', required: ['id'], properties: { id: { type: 'string' } } },
    privateLinkServiceConnections: {
      type: 'array', minItems: 1, maxItems: 1,
      items: {
        type: 'object', required: ['name', 'properties'],
        properties: {
          name: { type: 'string', minLength: 1, maxLength: 80 },
          properties: {
            type: 'object', required: ['privateLinkServiceId'],
            properties: { privateLinkServiceId: { type: 'string' }, groupIds: { type: 'array', items: { type: 'string' } } },
          },
        },
      },
    },
    ipConfigurations: {
      type: 'array', minItems: 1, maxItems: 1,
      items: { type: 'object', required: ['properties'], properties: { name: { type: 'string' }, properties: { type: 'object', required: ['privateIPAddress'], properties: { privateIPAddress: { type: 'string' } } } } },
    },
  },
});

type VnetBody = { location: string; tags?: Record<string, string>; properties: { addressSpace: { addressPrefixes: string[] }; subnets?: { name: string; properties: { addressPrefix: string } }[] } };
type EndpointBody = {
  location: string; tags?: Record<string, string>;
  properties: {
    subnet?: { id: string };
    privateLinkServiceConnections: { name: string; properties: { privateLinkServiceId: string; groupIds?: string[] } }[];
    ipConfigurations: { name?: string; properties: { privateIPAddress: string } }[];
  };
};

const VAULT_ID = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.KeyVault\/vaults\/([^/]+)$/i;

/**
 * Microsoft.Network virtual networks, subnets and private endpoints (the subset the Key Vault firewall uses), and the
 * deployment administrator's list of trusted services (`/coffer/admin/trusted-services`).
 */
export function networkRoutes(app: FastifyInstance, deps: {
  arm: Arm; network: NetworkService; resourceGroups: ResourceGroupsService; vaults: VaultsService; directory: Directory;
  endpoints: Endpoints; adminObjectId: string;
  /** Called after a private endpoint is created or deleted, so this node's listeners follow at once. */
  onPrivateEndpointsChanged: () => Promise<void>;
}) {
  const { arm, network, resourceGroups, vaults } = deps;
  const base = '/subscriptions/:subscriptionId/resourceGroups/:resourceGroup/providers/Microsoft.Network';
  const vnetUrl = `${base}/virtualNetworks/:vnetName`;
  const endpointUrl = `${base}/privateEndpoints/:endpointName`;

  /** The resource group the route names, by its canonical name (ids carry it as it was created). */
  const group = async (p: GroupParams) => {
    arm.checkSubscription(p.subscriptionId);
    const found = await resourceGroups.get(p.resourceGroup);
    if (!found) throw armError(404, 'ResourceGroupNotFound', `Resource group '${p.resourceGroup}' could not be found.`);
    return found.name;
  };
  const notFound = (type: string, name: string, rg: string) =>
    armError(404, 'ResourceNotFound', `The Resource '${type}/${name}' under resource group '${rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix`);
  const liveVnet = async (p: VnetParams) => {
    const rg = await group(p);
    const vnet = await network.getVnet(rg, p.vnetName);
    if (!vnet) throw notFound('Microsoft.Network/virtualNetworks', p.vnetName, p.resourceGroup);
    return vnet;
  };
  const endpointsIn = async (rg?: string) => network.listPrivateEndpoints({ resourceGroup: rg });
  const visible = async <T extends { id: string }>(req: FastifyRequest, list: T[], action: string) => {
    const out: T[] = [];
    for (const item of list) if (await arm.holds(req, item.id, action)) out.push(item);
    return out;
  };
  const deleted = (reply: FastifyReply, existed: boolean) => reply.code(existed ? 200 : 204).send();

  app.put<{ Params: VnetParams; Body: VnetBody }>(vnetUrl, { ...arm.config('VirtualNetworkPut'), schema: { body: vnetBody } }, async (req, reply) => {
    const rg = await group(req.params);
    await arm.requireAction(req, `/subscriptions/${arm.subscriptionId}/resourceGroups/${rg}/providers/Microsoft.Network/virtualNetworks/${req.params.vnetName}`, 'Microsoft.Network/virtualNetworks/write');
    const { vnet, created } = await network.putVnet({
      resourceGroup: rg, name: req.params.vnetName, location: req.body.location, tags: req.body.tags,
      addressPrefixes: req.body.properties.addressSpace.addressPrefixes,
      subnets: req.body.properties.subnets?.map((s) => ({ name: s.name, addressPrefix: s.properties.addressPrefix })),
    });
    reply.code(created ? 201 : 200);
    return toArmVnet(vnet, await endpointsIn(rg));
  });

  app.get<{ Params: VnetParams }>(vnetUrl, arm.config('VirtualNetworkGet'), async (req) => {
    const vnet = await liveVnet(req.params);
    await arm.requireAction(req, vnet.id, 'Microsoft.Network/virtualNetworks/read');
    return toArmVnet(vnet, await endpointsIn());
  });

  app.delete<{ Params: VnetParams }>(vnetUrl, arm.config('VirtualNetworkDelete'), async (req, reply) => {
    const rg = await group(req.params);
    const vnet = await network.getVnet(rg, req.params.vnetName);
    if (!vnet) return deleted(reply, false);
    await arm.requireAction(req, vnet.id, 'Microsoft.Network/virtualNetworks/delete');
    return deleted(reply, await network.deleteVnet(rg, vnet.name));
  });

  app.get<{ Params: GroupParams }>(`${base}/virtualNetworks`, arm.config('VirtualNetworkList'), async (req) => {
    const rg = await group(req.params);
    const all = await endpointsIn();
    return { value: (await visible(req, await network.listVnets(rg), 'Microsoft.Network/virtualNetworks/read')).map((v) => toArmVnet(v, all)) };
  });

  app.get<{ Params: { subscriptionId: string } }>('/subscriptions/:subscriptionId/providers/Microsoft.Network/virtualNetworks', arm.config('VirtualNetworkList'), async (req) => {
    arm.checkSubscription(req.params.subscriptionId);
    const all = await endpointsIn();
    return { value: (await visible(req, await network.listVnets(), 'Microsoft.Network/virtualNetworks/read')).map((v) => toArmVnet(v, all)) };
  });

  app.put<{ Params: SubnetParams; Body: { properties: { addressPrefix: string } } }>(`${vnetUrl}/subnets/:subnetName`,
    { ...arm.config('SubnetPut'), schema: { body: subnetBody } }, async (req, reply) => {
      const vnet = await liveVnet(req.params);
      await arm.requireAction(req, `${vnet.id}/subnets/${req.params.subnetName}`, 'Microsoft.Network/virtualNetworks/subnets/write');
      const result = (await network.putSubnet(vnet.resourceGroup, vnet.name, { name: req.params.subnetName, addressPrefix: req.body.properties.addressPrefix }))!;
      reply.code(result.created ? 201 : 200);
      return toArmSubnet(result.subnet, (await endpointsIn()).filter((e) => e.subnetId === result.subnet.id.toLowerCase()));
    });

  app.get<{ Params: SubnetParams }>(`${vnetUrl}/subnets/:subnetName`, arm.config('SubnetGet'), async (req) => {
    const vnet = await liveVnet(req.params);
    const subnet = vnet.subnets.find((s) => s.name.toLowerCase() === req.params.subnetName.toLowerCase());
    if (!subnet) throw notFound(`Microsoft.Network/virtualNetworks/${vnet.name}/subnets`, req.params.subnetName, req.params.resourceGroup);
    await arm.requireAction(req, subnet.id, 'Microsoft.Network/virtualNetworks/subnets/read');
    return toArmSubnet(subnet, (await endpointsIn()).filter((e) => e.subnetId === subnet.id.toLowerCase()));
  });

  app.get<{ Params: VnetParams }>(`${vnetUrl}/subnets`, arm.config('SubnetList'), async (req) => {
    const vnet = await liveVnet(req.params);
    await arm.requireAction(req, vnet.id, 'Microsoft.Network/virtualNetworks/subnets/read');
    const all = await endpointsIn();
    return { value: vnet.subnets.map((s) => toArmSubnet(s, all.filter((e) => e.subnetId === s.id.toLowerCase()))) };
  });

  app.delete<{ Params: SubnetParams }>(`${vnetUrl}/subnets/:subnetName`, arm.config('SubnetDelete'), async (req, reply) => {
    const vnet = await liveVnet(req.params);
    await arm.requireAction(req, `${vnet.id}/subnets/${req.params.subnetName}`, 'Microsoft.Network/virtualNetworks/subnets/delete');
    return deleted(reply, await network.deleteSubnet(vnet.resourceGroup, vnet.name, req.params.subnetName));
  });

  /** Rewrites a vault's `privateEndpointConnections` from its endpoints (idempotent, so concurrent changes converge). */
  const refreshConnections = async (vaultName: string, vaultId: string) =>
    vaults.setPrivateEndpointConnections(vaultName, (await network.listPrivateEndpoints({ vaultId })).map(toVaultConnection));
  const endpointView = (e: PrivateEndpoint) => toArmEndpoint(e, new URL(deps.endpoints.vaultUrl(/[^/]+$/.exec(e.vaultResourceId)![0])).hostname);

  app.put<{ Params: EndpointParams; Body: EndpointBody }>(endpointUrl, { ...arm.config('PrivateEndpointPut'), schema: { body: endpointBody } }, async (req, reply) => {
    const rg = await group(req.params);
    await arm.requireAction(req, `/subscriptions/${arm.subscriptionId}/resourceGroups/${rg}/providers/Microsoft.Network/privateEndpoints/${req.params.endpointName}`, 'Microsoft.Network/privateEndpoints/write');
    const [connection] = req.body.properties.privateLinkServiceConnections;
    const groupIds = connection.properties.groupIds ?? ['vault'];
    if (groupIds.length !== 1 || groupIds[0].toLowerCase() !== 'vault') {
      throw armError(400, 'PrivateEndpointBadRequest', `Call to Microsoft.KeyVault/vaults failed. Error message: The group id(s) '${groupIds.join(',')}' are not supported; a vault's only group id is 'vault'.`);
    }
    const target = VAULT_ID.exec(connection.properties.privateLinkServiceId);
    const vault = target && target[1].toLowerCase() === arm.subscriptionId.toLowerCase() ? await vaults.getByName(target[3]) : undefined;
    if (!vault || vault.resourceGroup.toLowerCase() !== target![2].toLowerCase()) {
      throw armError(400, 'PrivateLinkServiceNotFound', `Private link service or resource ${connection.properties.privateLinkServiceId} referenced by private endpoint ${req.params.endpointName} was not found.`);
    }
    // As in Azure, the connection is approved at once only for a caller who may approve connections to the vault.
    await arm.requireAction(req, vault.resourceId, 'Microsoft.KeyVault/vaults/privateEndpointConnectionsApproval/action');
    const { endpoint, created } = await network.putPrivateEndpoint({
      resourceGroup: rg, name: req.params.endpointName, location: req.body.location, tags: req.body.tags,
      vault: { id: vault.id, resourceId: vault.resourceId }, connectionName: connection.name,
      ipAddress: req.body.properties.ipConfigurations[0].properties.privateIPAddress, subnetId: req.body.properties.subnet?.id,
    });
    await refreshConnections(vault.name, vault.id);
    await deps.onPrivateEndpointsChanged();
    reply.code(created ? 201 : 200);
    return endpointView(endpoint);
  });

  app.get<{ Params: EndpointParams }>(endpointUrl, arm.config('PrivateEndpointGet'), async (req) => {
    const rg = await group(req.params);
    const endpoint = await network.getPrivateEndpoint(rg, req.params.endpointName);
    if (!endpoint) throw notFound('Microsoft.Network/privateEndpoints', req.params.endpointName, req.params.resourceGroup);
    await arm.requireAction(req, endpoint.id, 'Microsoft.Network/privateEndpoints/read');
    return endpointView(endpoint);
  });

  app.delete<{ Params: EndpointParams }>(endpointUrl, arm.config('PrivateEndpointDelete'), async (req, reply) => {
    const rg = await group(req.params);
    const endpoint = await network.getPrivateEndpoint(rg, req.params.endpointName);
    if (!endpoint) return deleted(reply, false);
    await arm.requireAction(req, endpoint.id, 'Microsoft.Network/privateEndpoints/delete');
    await network.deletePrivateEndpoint(rg, endpoint.name);
    const vault = await vaults.getByName(/[^/]+$/.exec(endpoint.vaultResourceId)![0]);
    if (vault?.id === endpoint.vaultId) await refreshConnections(vault.name, vault.id);
    await deps.onPrivateEndpointsChanged();
    return deleted(reply, true);
  });

  app.get<{ Params: GroupParams }>(`${base}/privateEndpoints`, arm.config('PrivateEndpointList'), async (req) => {
    const rg = await group(req.params);
    return { value: (await visible(req, await network.listPrivateEndpoints({ resourceGroup: rg }), 'Microsoft.Network/privateEndpoints/read')).map(endpointView) };
  });

  app.get<{ Params: { subscriptionId: string } }>('/subscriptions/:subscriptionId/providers/Microsoft.Network/privateEndpoints', arm.config('PrivateEndpointList'), async (req) => {
    arm.checkSubscription(req.params.subscriptionId);
    return { value: (await visible(req, await network.listPrivateEndpoints(), 'Microsoft.Network/privateEndpoints/read')).map(endpointView) };
  });

  // The vault side of private link (read-only: connections are approved when the endpoint is made, and go with it).
  type VaultParams = GroupParams & { vaultName: string };
  const vaultUrl = '/subscriptions/:subscriptionId/resourceGroups/:resourceGroup/providers/Microsoft.KeyVault/vaults/:vaultName';
  const vaultNamed = async (req: FastifyRequest<{ Params: VaultParams }>) => {
    arm.checkSubscription(req.params.subscriptionId);
    const vault = await vaults.getByName(req.params.vaultName);
    if (!vault || vault.resourceGroup.toLowerCase() !== req.params.resourceGroup.toLowerCase()) throw notFound('Microsoft.KeyVault/vaults', req.params.vaultName, req.params.resourceGroup);
    await arm.requireAction(req, vault.resourceId, 'Microsoft.KeyVault/vaults/privateEndpointConnections/read');
    return vault;
  };
  const connectionsOf = async (vault: { id: string; location: string }) => (await network.listPrivateEndpoints({ vaultId: vault.id }))
    .map((e) => ({ ...toVaultConnection(e), name: e.connectionName, type: 'Microsoft.KeyVault/vaults/privateEndpointConnections', location: vault.location }));

  app.get<{ Params: VaultParams }>(`${vaultUrl}/privateEndpointConnections`, arm.config('VaultPrivateEndpointConnectionList'), async (req) =>
    ({ value: await connectionsOf(await vaultNamed(req)) }));
  app.get<{ Params: VaultParams & { connectionName: string } }>(`${vaultUrl}/privateEndpointConnections/:connectionName`,
    arm.config('VaultPrivateEndpointConnectionGet'), async (req) => {
      const found = (await connectionsOf(await vaultNamed(req))).find((c) => c.name.toLowerCase() === req.params.connectionName.toLowerCase());
      if (!found) throw notFound(`Microsoft.KeyVault/vaults/${req.params.vaultName}/privateEndpointConnections`, req.params.connectionName, req.params.resourceGroup);
      return found;
    });
  app.get<{ Params: VaultParams }>(`${vaultUrl}/privateLinkResources`, arm.config('VaultPrivateLinkResourceList'), async (req) => {
    const vault = await vaultNamed(req);
    return {
      value: [{
        id: `${vault.resourceId}/privateLinkResources/vault`, name: 'vault', type: 'Microsoft.KeyVault/vaults/privateLinkResources',
        properties: { groupId: 'vault', requiredMembers: ['default'], requiredZoneNames: ['privatelink.vaultcore.azure.net'] },
      }],
    };
  });

  // Trusted services: Azure's list is Microsoft's first-party services; Coffer's is the principals its administrator
  // names here. A vault whose networkAcls bypass is AzureServices lets them through its firewall.
  const requireAdmin = (req: FastifyRequest) => requireDeploymentAdmin(req, deps.adminObjectId);
  const config = (operation: string) => ({ config: { plane: 'management' as const, operation } });
  const describeTrusted = async (row: { principal_id: string; created_at: number }) => {
    const p = await deps.directory.getPrincipal(row.principal_id);
    return { objectId: row.principal_id, appId: p?.appId ?? null, displayName: p?.displayName ?? null, trustedSince: new Date(Number(row.created_at)).toISOString() };
  };
  /** A principal by object id or, for service principals, app id. */
  const principalNamed = async (id: string) => {
    const p = (await deps.directory.getPrincipal(id)) ?? (await deps.directory.getByAppId(id));
    if (!p) throw armError(404, 'Request_ResourceNotFound', `Resource '${id}' does not exist or one of its queried reference-property objects are not present.`);
    return p;
  };

  app.get('/coffer/admin/trusted-services', config('TrustedServiceList'), async (req) => {
    requireAdmin(req);
    return { value: await Promise.all((await network.listTrustedServices()).map(describeTrusted)) };
  });
  app.put<{ Params: { id: string } }>('/coffer/admin/trusted-services/:id', config('TrustedServiceAdd'), async (req) => {
    requireAdmin(req);
    const p = await principalNamed(req.params.id);
    await network.addTrustedService(p.objectId, req.coffer.caller!.principal.objectId);
    return describeTrusted((await network.listTrustedServices()).find((t) => t.principal_id === p.objectId)!);
  });
  app.delete<{ Params: { id: string } }>('/coffer/admin/trusted-services/:id', config('TrustedServiceRemove'), async (req, reply) => {
    requireAdmin(req);
    const p = await principalNamed(req.params.id);
    return reply.code(await network.removeTrustedService(p.objectId) ? 200 : 204).send();
  });
}
