import type { Command } from 'commander';
import { action, group, type ActionEnv } from './command.js';

/** `coffer identity …`: user-assigned managed identities (ARM resources), printed like az (properties flattened). */

export const MANAGED_IDENTITY_API_VERSION = '2023-01-31';

interface ArmIdentity {
  id: string; name: string; type: string; location: string; tags?: Record<string, string>;
  properties: { tenantId: string; principalId: string; clientId: string };
}

const toAz = (i: ArmIdentity) => ({
  id: i.id, name: i.name, type: i.type, location: i.location, tags: i.tags ?? {},
  resourceGroup: /\/resourceGroups\/([^/]+)/i.exec(i.id)?.[1] ?? null, ...i.properties,
});

const identitiesPath = (env: ActionEnv, resourceGroup?: string) =>
  `/subscriptions/${env.context().subscriptionId()}${resourceGroup ? `/resourceGroups/${encodeURIComponent(resourceGroup)}` : ''}/providers/Microsoft.ManagedIdentity/userAssignedIdentities`;
const identityPath = (env: ActionEnv, name: string, resourceGroup: string) =>
  `${identitiesPath(env, resourceGroup)}/${encodeURIComponent(name)}?api-version=${MANAGED_IDENTITY_API_VERSION}`;

/** A managed identity by name in a group (what `coffer run --identity` also accepts). */
export async function showIdentity(env: ActionEnv, name: string, resourceGroup: string) {
  return toAz(await env.context().management<ArmIdentity>('GET', identityPath(env, name, resourceGroup)));
}

export function registerIdentityCommands(program: Command) {
  const identity = group(program, 'identity', 'Manage user-assigned managed identities');
  identity.command('create').description('Create a user-assigned managed identity')
    .requiredOption('-n, --name <name>', 'name of the identity')
    .requiredOption('-g, --resource-group <group>', 'resource group')
    .option('-l, --location <location>', 'location', 'local')
    .action(action(async (opts: { name: string; resourceGroup: string; location: string }, env) =>
      toAz(await env.context().management<ArmIdentity>('PUT', identityPath(env, opts.name, opts.resourceGroup), { body: { location: opts.location } }))));
  identity.command('show').description('Show a user-assigned managed identity')
    .requiredOption('-n, --name <name>', 'name of the identity')
    .requiredOption('-g, --resource-group <group>', 'resource group')
    .action(action(async (opts: { name: string; resourceGroup: string }, env) => showIdentity(env, opts.name, opts.resourceGroup)));
  identity.command('list').description('List user-assigned managed identities')
    .option('-g, --resource-group <group>', 'resource group (default: the whole subscription)')
    .action(action(async (opts: { resourceGroup?: string }, env) => {
      const { value } = await env.context().management<{ value: ArmIdentity[] }>('GET', `${identitiesPath(env, opts.resourceGroup)}?api-version=${MANAGED_IDENTITY_API_VERSION}`);
      return value.map(toAz);
    }));
  identity.command('delete').description('Delete a user-assigned managed identity (its tokens stop working at once)')
    .requiredOption('-n, --name <name>', 'name of the identity')
    .requiredOption('-g, --resource-group <group>', 'resource group')
    .action(action(async (opts: { name: string; resourceGroup: string }, env) => {
      await env.context().management('DELETE', identityPath(env, opts.name, opts.resourceGroup));
      return undefined;
    }));
}
