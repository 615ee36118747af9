import { armError, type Arm } from './arm.js';
import type { ResourceGroupsService } from './resource-groups.js';
import type { VaultsService } from './vaults.js';
import { OBJECT_NAME } from '../objects/names.js';

/** The scopes Microsoft.Authorization resources hang off: subscription, resource group, vault, and one vault object. */
export const SCOPE_ROUTES = [
  '/subscriptions/:subscriptionId',
  '/subscriptions/:subscriptionId/resourceGroups/:resourceGroup',
  '/subscriptions/:subscriptionId/resourceGroups/:resourceGroup/providers/Microsoft.KeyVault/vaults/:vaultName',
  '/subscriptions/:subscriptionId/resourceGroups/:resourceGroup/providers/Microsoft.KeyVault/vaults/:vaultName/:collection/:objectName',
] as const;

export interface ScopeParams {
  subscriptionId: string;
  resourceGroup?: string;
  vaultName?: string;
  collection?: string;
  objectName?: string;
}

const OBJECT_COLLECTIONS = ['secrets', 'keys', 'certificates'];

export type ScopeResolver = (params: ScopeParams) => Promise<string>;

/** Turns route parameters into the canonical scope id, refusing scopes whose resources do not exist (as ARM does). */
export function createScopeResolver(deps: { arm: Arm; resourceGroups: ResourceGroupsService; vaults: VaultsService }): ScopeResolver {
  return async (p) => {
    deps.arm.checkSubscription(p.subscriptionId);
    let scope = `/subscriptions/${deps.arm.subscriptionId}`;
    if (p.resourceGroup === undefined) return scope;
    const group = await deps.resourceGroups.get(p.resourceGroup);
    if (!group) throw armError(404, 'ResourceGroupNotFound', `Resource group '${p.resourceGroup}' could not be found.`);
    scope = `${scope}/resourceGroups/${group.name}`;
    if (p.vaultName === undefined) return scope;
    const vault = await deps.vaults.getByName(p.vaultName);
    if (!vault || vault.resourceGroup.toLowerCase() !== group.name.toLowerCase()) {
      throw armError(404, 'ResourceNotFound', `The Resource 'Microsoft.KeyVault/vaults/${p.vaultName}' under resource group '${p.resourceGroup}' was not found.`);
    }
    scope = vault.resourceId;
    if (p.collection === undefined) return scope;
    if (!OBJECT_COLLECTIONS.includes(p.collection.toLowerCase()) || !OBJECT_NAME.test(p.objectName ?? '')) {
      throw armError(400, 'InvalidResourceType', `The resource type '${p.collection}' could not be found in the namespace 'Microsoft.KeyVault' for api version.`);
    }
    return `${scope}/${p.collection.toLowerCase()}/${p.objectName}`;
  };
}

/** Parses a full scope id (e.g. from a request body or a roleDefinition's assignableScopes) into route parameters. */
export function parseScope(scope: string): ScopeParams | undefined {
  const m = /^\/subscriptions\/([^/]+)(?:\/resourceGroups\/([^/]+)(?:\/providers\/Microsoft\.KeyVault\/vaults\/([^/]+)(?:\/([^/]+)\/([^/]+))?)?)?\/?$/i.exec(scope);
  if (!m) return undefined;
  return { subscriptionId: m[1], resourceGroup: m[2], vaultName: m[3], collection: m[4], objectName: m[5] };
}
