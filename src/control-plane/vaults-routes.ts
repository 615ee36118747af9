import type { FastifyInstance, FastifyRequest } from 'fastify';
import { armError, type Arm } from './arm.js';
import type { ResourceGroupsService } from './resource-groups.js';
import { ACCESS_POLICY_PERMISSIONS } from '../gates/authorization/data-actions.js';
import type { AccessPolicyEntry, AccessPolicyUpdateKind, NetworkRuleSet, Vault, VaultSettings, VaultsService } from './vaults.js';
import { parseIpv4Range } from '../gates/network/ip-rules.js';
import { isSubnetId } from './network.js';

type VaultParams = { subscriptionId: string; resourceGroup: string; vaultName: string };

/** Permission enums accept any casing on the wire; the schema lists the common ones and the service compares lower-cased. */
const accessPolicyEntry = {
  type: 'object',
  required: ['tenantId', 'objectId', 'permissions'],
  properties: {
    tenantId: { type: 'string', format: 'uuid' },
    objectId: { type: 'string', minLength: 1 },
    applicationId: { type: 'string', format: 'uuid' },
    permissions: {
      type: 'object',
      properties: Object.fromEntries(Object.entries(ACCESS_POLICY_PERMISSIONS).map(([k]) => [k, { type: 'array', items: { type: 'string' } }])),
    },
  },
} as const;

const settingsProperties = {
  tenantId: { type: 'string', format: 'uuid' },
  sku: { type: 'object', required: ['name'], properties: { family: { type: 'string', enum: ['A'] }, name: { type: 'string', enum: ['standard', 'premium', 'Standard', 'Premium'] } } },
  accessPolicies: { type: 'array', items: accessPolicyEntry, maxItems: 1024 },
  enableRbacAuthorization: { type: 'boolean' },
  enableSoftDelete: { type: 'boolean' },
  softDeleteRetentionInDays: { type: 'integer' },
  enablePurgeProtection: { type: 'boolean' },
  enabledForDeployment: { type: 'boolean' },
  enabledForDiskEncryption: { type: 'boolean' },
  enabledForTemplateDeployment: { type: 'boolean' },
  createMode: { type: 'string', enum: ['recover', 'default'] },
  publicNetworkAccess: { type: 'string', enum: ['Enabled', 'Disabled', 'enabled', 'disabled'] },
  networkAcls: {
    type: 'object',
    properties: {
      bypass: { type: 'string', enum: ['AzureServices', 'None'] },
      defaultAction: { type: 'string', enum: ['Allow', 'Deny'] },
      ipRules: { type: 'array', items: { type: 'object', required: ['value'], properties: { value: { type: 'string' } } } },
      virtualNetworkRules: { type: 'array', items: { type: 'object', required: ['id'], properties: { id: { type: 'string' }, ignoreMissingVnetServiceEndpoint: { type: 'boolean' } } } },
    },
  },
} as const;
const tags = { type: 'object', additionalProperties: { type: 'string' } } as const;

const putBody = {
  type: 'object',
  required: ['location', 'properties'],
  properties: { location: { type: 'string', minLength: 1 }, tags, properties: { type: 'object', properties: settingsProperties } },
} as const;
const patchBody = { type: 'object', properties: { tags, properties: { type: 'object', properties: settingsProperties } } } as const;
const accessPolicyBody = {
  type: 'object',
  required: ['properties'],
  properties: { properties: { type: 'object', required: ['accessPolicies'], properties: { accessPolicies: { type: 'array', items: accessPolicyEntry } } } },
} as const;

type WireSettings = Omit<VaultSettings, 'sku' | 'publicNetworkAccess'> & {
  tenantId?: string; sku?: { name?: string }; createMode?: 'recover' | 'default'; publicNetworkAccess?: string;
};

export const toArmVault = (v: Vault) => ({
  id: v.resourceId,
  name: v.name,
  type: 'Microsoft.KeyVault/vaults',
  location: v.location,
  tags: v.tags,
  properties: v.properties,
});

const toArmDeletedVault = (v: Vault) => ({
  id: `/subscriptions/${v.subscriptionId}/providers/Microsoft.KeyVault/locations/${v.location}/deletedVaults/${v.name}`,
  name: v.name,
  type: 'Microsoft.KeyVault/deletedVaults',
  properties: {
    vaultId: v.resourceId,
    location: v.location,
    deletionDate: new Date(v.deletedAt!).toISOString(),
    scheduledPurgeDate: new Date(v.scheduledPurgeAt!).toISOString(),
    tags: v.tags,
    purgeProtectionEnabled: v.properties.enablePurgeProtection === true,
  },
});

/** Access-policy permission values must be the spec's (any casing); anything else is a 400 that changes nothing. */
function checkAccessPolicies(entries: AccessPolicyEntry[] | undefined) {
  for (const entry of entries ?? []) {
    for (const [kind, values] of Object.entries(entry.permissions)) {
      const allowed = ACCESS_POLICY_PERMISSIONS[kind as keyof typeof ACCESS_POLICY_PERMISSIONS];
      const bad = (values ?? []).find((v) => !allowed.includes(v.toLowerCase()));
      if (bad !== undefined) {
        throw armError(400, 'BadRequest', `Invalid value found at accessPolicies[].permissions.${kind}: '${bad}'. Allowed values: ${allowed.join(', ')}.`);
      }
    }
  }
}

/**
 * Network rules must name real things: each ipRule an IPv4 address or CIDR range, each virtual-network rule a subnet's
 * resource id. Anything else is a 400 that changes nothing (the firewall would silently admit nobody for it).
 */
function checkNetworkAcls(acls: NetworkRuleSet | undefined) {
  (acls?.ipRules ?? []).forEach((rule, i) => {
    if (!parseIpv4Range(rule.value)) {
      throw armError(400, 'BadRequest', `Invalid value found at properties.networkAcls.ipRules[${i}].value: '${rule.value}' is not a valid IPv4 address or IPv4 address range in CIDR notation, such as '124.56.78.91' or '124.56.78.0/24'.`);
    }
  });
  (acls?.virtualNetworkRules ?? []).forEach((rule, i) => {
    if (!isSubnetId(rule.id)) {
      throw armError(400, 'BadRequest', `Invalid value found at properties.networkAcls.virtualNetworkRules[${i}].id: '${rule.id}' is not a subnet resource id, such as '/subscriptions/subid/resourceGroups/rg1/providers/Microsoft.Network/virtualNetworks/test-vnet/subnets/subnet1'.`);
    }
  });
}

function toSettings(p: WireSettings): VaultSettings {
  checkAccessPolicies(p.accessPolicies);
  checkNetworkAcls(p.networkAcls);
  return {
    sku: p.sku?.name?.toLowerCase() as VaultSettings['sku'],
    accessPolicies: p.accessPolicies,
    enableRbacAuthorization: p.enableRbacAuthorization,
    enableSoftDelete: p.enableSoftDelete,
    softDeleteRetentionInDays: p.softDeleteRetentionInDays,
    enablePurgeProtection: p.enablePurgeProtection,
    enabledForDeployment: p.enabledForDeployment,
    enabledForDiskEncryption: p.enabledForDiskEncryption,
    enabledForTemplateDeployment: p.enabledForTemplateDeployment,
    networkAcls: p.networkAcls,
    publicNetworkAccess: p.publicNetworkAccess ? (p.publicNetworkAccess.toLowerCase() === 'disabled' ? 'Disabled' : 'Enabled') : undefined,
  };
}

/** Microsoft.KeyVault vaults, deleted vaults, name checks and access-policy edits, as @azure/arm-keyvault calls them. */
export function vaultRoutes(app: FastifyInstance, deps: { arm: Arm; vaults: VaultsService; resourceGroups: ResourceGroupsService }) {
  const { arm, vaults, resourceGroups } = deps;
  const vaultUrl = '/subscriptions/:subscriptionId/resourceGroups/:resourceGroup/providers/Microsoft.KeyVault/vaults/:vaultName';
  const vaultId = (p: VaultParams) => `/subscriptions/${arm.subscriptionId}/resourceGroups/${p.resourceGroup}/providers/Microsoft.KeyVault/vaults/${p.vaultName}`;
  const notFound = (p: VaultParams) => armError(404, 'ResourceNotFound', `The Resource 'Microsoft.KeyVault/vaults/${p.vaultName}' under resource group '${p.resourceGroup}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix`);
  const requireGroup = async (name: string) => {
    const group = await resourceGroups.get(name);
    if (!group) throw armError(404, 'ResourceGroupNotFound', `Resource group '${name}' could not be found.`);
    return group;
  };
  /** The live vault the route names, in the resource group it names. */
  const liveVault = async (p: VaultParams) => {
    arm.checkSubscription(p.subscriptionId);
    const vault = await vaults.getByName(p.vaultName);
    if (!vault || vault.resourceGroup.toLowerCase() !== p.resourceGroup.toLowerCase()) throw notFound(p);
    return vault;
  };
  const visible = async (req: FastifyRequest, list: Vault[]) => {
    const out = [];
    for (const v of list) if (await arm.holds(req, v.resourceId, 'Microsoft.KeyVault/vaults/read')) out.push(toArmVault(v));
    return { value: out };
  };

  app.put<{ Params: VaultParams; Body: { location: string; tags?: Record<string, string>; properties: WireSettings } }>(vaultUrl,
    { ...arm.config('VaultPut'), schema: { body: putBody } }, async (req, reply) => {
      arm.checkSubscription(req.params.subscriptionId);
      const group = await requireGroup(req.params.resourceGroup);
      await arm.requireAction(req, vaultId(req.params), 'Microsoft.KeyVault/vaults/write');
      const p = req.body.properties;
      const settings = toSettings(p);
      if (p.createMode === 'recover') {
        const recovered = await vaults.recover(req.params.vaultName, { subscriptionId: arm.subscriptionId, resourceGroup: group.name });
        return toArmVault(recovered);
      }
      const existing = await vaults.getByName(req.params.vaultName);
      if (existing && existing.resourceGroup.toLowerCase() === group.name.toLowerCase()) {
        return toArmVault(await vaults.update(existing.name, { settings, tags: req.body.tags ?? {}, tenantId: p.tenantId }));
      }
      if (!p.tenantId || !p.sku) {
        throw armError(400, 'BadRequest', `The properties 'tenantId' and 'sku' are required to create vault '${req.params.vaultName}'.`);
      }
      const vault = await vaults.create({
        ...settings, name: req.params.vaultName, subscriptionId: arm.subscriptionId, resourceGroup: group.name,
        location: req.body.location, tenantId: p.tenantId, tags: req.body.tags,
      });
      // 200 with provisioningState Succeeded: the SDK's long-running-operation poller ends at once.
      reply.code(200);
      return toArmVault(vault);
    });

  app.patch<{ Params: VaultParams; Body: { tags?: Record<string, string>; properties?: WireSettings } }>(vaultUrl,
    { ...arm.config('VaultPatch'), schema: { body: patchBody } }, async (req) => {
      const vault = await liveVault(req.params);
      await arm.requireAction(req, vault.resourceId, 'Microsoft.KeyVault/vaults/write');
      const p = req.body.properties ?? {};
      return toArmVault(await vaults.update(vault.name, { settings: toSettings(p), tags: req.body.tags, tenantId: p.tenantId }));
    });

  app.get<{ Params: VaultParams }>(vaultUrl, arm.config('VaultGet'), async (req) => {
    const vault = await liveVault(req.params);
    await arm.requireAction(req, vault.resourceId, 'Microsoft.KeyVault/vaults/read');
    return toArmVault(vault);
  });

  app.delete<{ Params: VaultParams }>(vaultUrl, arm.config('VaultDelete'), async (req, reply) => {
    arm.checkSubscription(req.params.subscriptionId);
    const vault = await vaults.getByName(req.params.vaultName);
    // ARM answers 204 for deleting what is not there.
    if (!vault || vault.resourceGroup.toLowerCase() !== req.params.resourceGroup.toLowerCase()) return reply.code(204).send();
    await arm.requireAction(req, vault.resourceId, 'Microsoft.KeyVault/vaults/delete');
    await vaults.softDelete(vault.name);
    return reply.code(200).send();
  });

  app.get<{ Params: { subscriptionId: string; resourceGroup: string } }>('/subscriptions/:subscriptionId/resourceGroups/:resourceGroup/providers/Microsoft.KeyVault/vaults',
    arm.config('VaultList'), async (req) => {
      arm.checkSubscription(req.params.subscriptionId);
      const group = await requireGroup(req.params.resourceGroup);
      return visible(req, await vaults.list({ subscriptionId: arm.subscriptionId, resourceGroup: group.name }));
    });

  app.get<{ Params: { subscriptionId: string } }>('/subscriptions/:subscriptionId/providers/Microsoft.KeyVault/vaults', arm.config('VaultList'), async (req) => {
    arm.checkSubscription(req.params.subscriptionId);
    return visible(req, await vaults.list({ subscriptionId: arm.subscriptionId }));
  });

  // The generic resources list, which VaultsClient.list() reads with a resourceType filter; Coffer's only resources are vaults.
  app.get<{ Params: { subscriptionId: string }; Querystring: { $filter?: string; $top?: string } }>('/subscriptions/:subscriptionId/resources',
    arm.config('ResourceList'), async (req) => {
      arm.checkSubscription(req.params.subscriptionId);
      const filter = req.query.$filter;
      const type = filter === undefined ? undefined : /^\s*resourceType\s+eq\s+'([^']+)'\s*$/i.exec(filter)?.[1];
      if (filter !== undefined && type === undefined) throw armError(400, 'InvalidFilter', `The filter '${filter}' is not supported.`);
      if (type !== undefined && type.toLowerCase() !== 'microsoft.keyvault/vaults') return { value: [] };
      const top = req.query.$top === undefined ? Infinity : Number(req.query.$top);
      if (!Number.isInteger(top) && top !== Infinity) throw armError(400, 'InvalidParameter', `The $top value '${req.query.$top}' is not an integer.`);
      const { value } = await visible(req, await vaults.list({ subscriptionId: arm.subscriptionId }));
      return { value: value.slice(0, top).map(({ id, name, type: t, location, tags: vaultTags }) => ({ id, name, type: t, location, tags: vaultTags })) };
    });

  app.get<{ Params: { subscriptionId: string } }>('/subscriptions/:subscriptionId/providers/Microsoft.KeyVault/deletedVaults', arm.config('DeletedVaultList'), async (req) => {
    arm.checkSubscription(req.params.subscriptionId);
    await arm.requireAction(req, `/subscriptions/${arm.subscriptionId}`, 'Microsoft.KeyVault/deletedVaults/read');
    return { value: (await vaults.listDeleted(arm.subscriptionId)).map(toArmDeletedVault) };
  });

  type DeletedParams = { subscriptionId: string; location: string; vaultName: string };
  const deletedUrl = '/subscriptions/:subscriptionId/providers/Microsoft.KeyVault/locations/:location/deletedVaults/:vaultName';
  const deletedVault = async (p: DeletedParams) => {
    arm.checkSubscription(p.subscriptionId);
    const vault = await vaults.getDeleted(p.vaultName);
    if (!vault || vault.subscriptionId !== arm.subscriptionId || vault.location.toLowerCase() !== p.location.toLowerCase()) {
      throw armError(404, 'ResourceNotFound', `The Resource 'Microsoft.KeyVault/deletedVaults/${p.vaultName}' was not found.`);
    }
    return vault;
  };
  app.get<{ Params: DeletedParams }>(deletedUrl, arm.config('DeletedVaultGet'), async (req) => {
    const vault = await deletedVault(req.params);
    await arm.requireAction(req, `/subscriptions/${arm.subscriptionId}`, 'Microsoft.KeyVault/deletedVaults/read');
    return toArmDeletedVault(vault);
  });
  app.post<{ Params: DeletedParams }>(`${deletedUrl}/purge`, arm.config('DeletedVaultPurge'), async (req, reply) => {
    const vault = await deletedVault(req.params);
    await arm.requireAction(req, `/subscriptions/${arm.subscriptionId}`, 'Microsoft.KeyVault/locations/deletedVaults/purge/action');
    await vaults.purge(vault.name);
    return reply.code(200).send();
  });

  app.post<{ Params: { subscriptionId: string }; Body: { name: string; type: string } }>('/subscriptions/:subscriptionId/providers/Microsoft.KeyVault/checkNameAvailability', {
    ...arm.config('VaultCheckNameAvailability'),
    schema: { body: { type: 'object', required: ['name', 'type'], properties: { name: { type: 'string' }, type: { type: 'string', enum: ['Microsoft.KeyVault/vaults'] } } } },
  }, async (req) => {
    arm.checkSubscription(req.params.subscriptionId);
    await arm.requireAction(req, `/subscriptions/${arm.subscriptionId}`, 'Microsoft.KeyVault/checkNameAvailability/read');
    return vaults.checkName(req.body.name);
  });

  app.put<{ Params: VaultParams & { operationKind: string }; Body: { properties: { accessPolicies: AccessPolicyEntry[] } } }>(`${vaultUrl}/accessPolicies/:operationKind`,
    { ...arm.config('VaultAccessPolicyUpdate'), schema: { body: accessPolicyBody } }, async (req) => {
      const kind = req.params.operationKind.toLowerCase() as AccessPolicyUpdateKind;
      if (!['add', 'replace', 'remove'].includes(kind)) {
        throw armError(400, 'BadRequest', `The access policy operation '${req.params.operationKind}' is not one of add, replace, remove.`);
      }
      const vault = await liveVault(req.params);
      await arm.requireAction(req, vault.resourceId, 'Microsoft.KeyVault/vaults/accessPolicies/write');
      checkAccessPolicies(req.body.properties.accessPolicies);
      const updated = await vaults.updateAccessPolicies(vault.name, kind, req.body.properties.accessPolicies);
      return {
        id: `${updated.resourceId}/accessPolicies/${kind}`,
        type: 'Microsoft.KeyVault/vaults/accessPolicies',
        name: kind,
        location: updated.location,
        properties: { accessPolicies: updated.properties.accessPolicies },
      };
    });
}
