import type { Command } from 'commander';
import { action, group, type ActionEnv } from './command.js';
import { usageError } from './errors.js';

/** `coffer identity …`: managed identities (ARM resources), printed like az (properties flattened). */

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

interface Target { name?: string; resourceGroup?: string; systemAssignedFor?: string }

/** A user-assigned identity by name and group, or the system-assigned identity of the resource `--system-assigned-for` names. */
function targetPath(env: ActionEnv, opts: Target) {
  if (opts.systemAssignedFor) {
    if (opts.name || opts.resourceGroup) throw usageError('--system-assigned-for names the identity by its owner; leave out --name and --resource-group');
    if (!/^\/subscriptions\/[^/]+\/resourceGroups\/[^/]+\/providers\/[^/]+\/[^/]+\/[^/]+$/i.test(opts.systemAssignedFor)) {
      throw usageError('--system-assigned-for takes a resource id: /subscriptions/{s}/resourceGroups/{rg}/providers/{namespace}/{type}/{name}');
    }
    return `${opts.systemAssignedFor}/providers/Microsoft.ManagedIdentity/identities/default?api-version=${MANAGED_IDENTITY_API_VERSION}`;
  }
  if (!opts.name || !opts.resourceGroup) throw usageError('name the identity with --name and --resource-group (or --system-assigned-for RESOURCE_ID)');
  return identityPath(env, opts.name, opts.resourceGroup);
}

/** The options that name one identity: user-assigned by name and group, or system-assigned by its owner. */
const targetOptions = (command: Command) => command
  .option('-n, --name <name>', 'name of the user-assigned identity')
  .option('-g, --resource-group <group>', 'resource group of the user-assigned identity')
  .option('--system-assigned-for <resourceId>', 'the resource owning a system-assigned identity (e.g. an app\'s Microsoft.Web/sites id)');

export function registerIdentityCommands(program: Command) {
  const identity = group(program, 'identity', 'Manage managed identities (user-assigned, and system-assigned ones of a resource)');
  targetOptions(identity.command('create').description('Create a user-assigned managed identity, or the system-assigned identity of a resource'))
    .option('-l, --location <location>', 'location', 'local')
    .action(action(async (opts: Target & { location: string }, env) =>
      toAz(await env.context().management<ArmIdentity>('PUT', targetPath(env, opts), { body: { location: opts.location } }))));
  targetOptions(identity.command('show').description('Show a managed identity'))
    .action(action(async (opts: Target, env) => toAz(await env.context().management<ArmIdentity>('GET', targetPath(env, opts)))));
  identity.command('list').description('List user-assigned managed identities')
    .option('-g, --resource-group <group>', 'resource group (default: the whole subscription)')
    .action(action(async (opts: { resourceGroup?: string }, env) => {
      const { value } = await env.context().management<{ value: ArmIdentity[] }>('GET', `${identitiesPath(env, opts.resourceGroup)}?api-version=${MANAGED_IDENTITY_API_VERSION}`);
      return value.map(toAz);
    }));
  targetOptions(identity.command('delete').description('Delete a managed identity (its tokens stop working at once)'))
    .action(action(async (opts: Target, env) => {
      await env.context().management('DELETE', targetPath(env, opts));
      return undefined;
    }));
}
