import crypto from 'node:crypto';
import fs from 'node:fs';
import { Option, type Command } from 'commander';
import { action, group, type ActionEnv } from './command.js';
import { CliError, usageError } from './errors.js';
import { withResourceGroup } from './keyvault.js';

/** The Microsoft.Authorization api-version az 2.45 (azure-mgmt-authorization) sends. */
const AUTHORIZATION_API_VERSION = '2022-04-01';
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const PRINCIPAL_TYPES = ['User', 'Group', 'ServicePrincipal', 'ForeignGroup', 'Device'];

interface ArmRoleDefinition {
  id: string;
  name: string;
  type: string;
  properties: { roleName: string; type: string; description?: string; assignableScopes: string[]; permissions: Permission[] };
}
interface Permission { actions: string[]; notActions: string[]; dataActions: string[]; notDataActions: string[] }
interface ArmRoleAssignment {
  id: string;
  name: string;
  type: string;
  properties: { roleDefinitionId: string; principalId: string; principalType: string; scope: string; [field: string]: unknown };
}

/** azure-mgmt-authorization models flatten `properties`; a role definition's `properties.type` becomes `roleType`. */
const definitionOutput = (d: ArmRoleDefinition) => ({
  assignableScopes: d.properties.assignableScopes,
  createdBy: null,
  createdOn: null,
  description: d.properties.description ?? null,
  id: d.id,
  name: d.name,
  permissions: d.properties.permissions,
  roleName: d.properties.roleName,
  roleType: d.properties.type,
  type: d.type,
  updatedBy: null,
  updatedOn: null,
});

const assignmentOutput = (a: ArmRoleAssignment) => withResourceGroup({ ...a.properties, id: a.id, name: a.name, type: a.type });

const subscriptionScope = (env: ActionEnv) => `/subscriptions/${env.context().subscriptionId()}`;
const definitionsPath = (scope: string) => `${scope.replace(/\/$/, '')}/providers/Microsoft.Authorization/roleDefinitions`;
const assignmentsPath = (scope: string) => `${scope.replace(/\/$/, '')}/providers/Microsoft.Authorization/roleAssignments`;
const withVersion = (path: string, filter?: string) =>
  `${path}?${filter ? `$filter=${encodeURIComponent(filter)}&` : ''}api-version=${AUTHORIZATION_API_VERSION}`;

/** az's `_build_role_scope`: --scope, else the resource group's, else the subscription's. */
function roleScope(env: ActionEnv, opts: { scope?: string; resourceGroup?: string }): string {
  if (opts.scope && opts.resourceGroup) throw usageError('please only specify either --resource-group or --scope');
  if (opts.scope) {
    if (!opts.scope.startsWith('/subscriptions/')) throw new CliError(`Invalid scope '${opts.scope}'. The scope must start with /subscriptions/.`, 2);
    return opts.scope.replace(/\/$/, '');
  }
  return opts.resourceGroup ? `${subscriptionScope(env)}/resourceGroups/${opts.resourceGroup}` : subscriptionScope(env);
}

/** Role definitions by name or id at a scope (az's `_search_role_definitions`). */
async function searchDefinitions(env: ActionEnv, scope: string, nameOrId?: string, customOnly = false): Promise<ArmRoleDefinition[]> {
  const management = env.context().management;
  const guid = nameOrId?.split('/').pop();
  let found: ArmRoleDefinition[];
  if (nameOrId && guid && GUID.test(guid)) {
    try {
      found = [await management<ArmRoleDefinition>('GET', withVersion(`${definitionsPath(scope)}/${guid}`))];
    } catch (err) {
      if (err instanceof CliError && err.exitCode === 3) return [];
      throw err;
    }
  } else {
    const filter = nameOrId ? `roleName eq '${nameOrId.replace(/'/g, "''")}'` : undefined;
    found = (await management<{ value: ArmRoleDefinition[] }>('GET', withVersion(definitionsPath(scope), filter))).value;
  }
  return customOnly ? found.filter((d) => d.properties.type === 'CustomRole') : found;
}

/** az's `_resolve_role_id`: a GUID or a full id is taken as is; a name must match exactly one definition. */
export async function resolveRoleId(env: ActionEnv, role: string, scope: string): Promise<string> {
  if (role.startsWith('/')) return role;
  if (GUID.test(role)) return `${definitionsPath(subscriptionScope(env))}/${role}`;
  const found = await searchDefinitions(env, scope, role);
  if (found.length === 0) throw new CliError(`Role '${role}' doesn't exist.`);
  if (found.length > 1) throw new CliError(`More than one role matches the given name '${role}'. Please pick an id from '${found.map((d) => d.id).join(', ')}'`);
  return found[0].id;
}

interface DirectoryObject { id: string; userPrincipalName?: string; displayName?: string; servicePrincipalNames?: string[] }

/** az's principal name: a user's UPN, a service principal's first name (its app id), else the display name. */
const principalName = (o: DirectoryObject) => o.userPrincipalName ?? o.servicePrincipalNames?.[0] ?? o.displayName ?? '';

/**
 * A user, service principal or group by object id, app id or UPN, as az finds principals in Microsoft Graph.
 * `readable: false` when the caller may not read the directory (in Coffer only the administrator may).
 */
async function findDirectoryObject(env: ActionEnv, idOrName: string): Promise<{ readable: boolean; found?: DirectoryObject }> {
  const collections = idOrName.includes('@') ? ['users'] : ['servicePrincipals', 'users', 'groups'];
  for (const collection of collections) {
    try {
      return { readable: true, found: await env.context().management<DirectoryObject>('GET', `/v1.0/${collection}/${encodeURIComponent(idOrName)}`) };
    } catch (err) {
      if (!(err instanceof CliError)) throw err;
      if (err.code === 'Authorization_RequestDenied') return { readable: false };
      if (err.exitCode !== 3) throw err;
    }
  }
  return { readable: true };
}

/**
 * The object id an `--assignee` (object id, app id or UPN) names, looked up in the directory as az does. A caller
 * who may not read the directory can still name a principal by object id.
 */
async function resolveAssignee(env: ActionEnv, assignee: string): Promise<string> {
  const { readable, found } = await findDirectoryObject(env, assignee);
  if (found) return found.id;
  const context = env.context();
  if (!readable && assignee.toLowerCase() === context.profile.clientId.toLowerCase()) return context.callerObjectId();
  if (!readable && GUID.test(assignee)) return assignee.toLowerCase();
  throw new CliError(`Cannot find user or service principal in graph database for '${assignee}'. If the assignee is an appId, make sure the corresponding service principal is created with 'coffer ad sp create-for-rbac'.`);
}

/** Principal names for the ids, from the directory when readable, else only the caller's own (Graph's /me). */
async function principalNames(env: ActionEnv, ids: string[]): Promise<Map<string, string>> {
  const names = new Map<string, string>();
  for (const id of new Set(ids.map((i) => i.toLowerCase()))) {
    const { readable, found } = await findDirectoryObject(env, id);
    if (!readable) {
      const me = await env.context().management<DirectoryObject>('GET', '/v1.0/me');
      names.set(me.id.toLowerCase(), principalName(me));
      break;
    }
    if (found) names.set(id, principalName(found));
  }
  return names;
}

/** az's `_search_role_assignments`: at a scope (exactly, unless inherited ones are wanted), by assignee and role. */
async function searchAssignments(env: ActionEnv, opts: {
  scope?: string; assigneeObjectId?: string; roleId?: string; includeInherited?: boolean;
}): Promise<ArmRoleAssignment[]> {
  const management = env.context().management;
  let list: ArmRoleAssignment[];
  if (opts.scope) {
    list = (await management<{ value: ArmRoleAssignment[] }>('GET', withVersion(assignmentsPath(opts.scope), 'atScope()'))).value;
    const scope = opts.scope.toLowerCase();
    list = list.filter((a) => {
      const at = a.properties.scope.toLowerCase();
      return at === scope || (opts.includeInherited && (scope.startsWith(`${at}/`) || at === '/'));
    });
  } else {
    const filter = opts.assigneeObjectId ? `principalId eq '${opts.assigneeObjectId}'` : undefined;
    list = (await management<{ value: ArmRoleAssignment[] }>('GET', withVersion(assignmentsPath(subscriptionScope(env)), filter))).value;
  }
  const roleGuid = opts.roleId?.split('/').pop()?.toLowerCase();
  return list.filter((a) => (!roleGuid || a.properties.roleDefinitionId.split('/').pop()?.toLowerCase() === roleGuid)
    && (!opts.assigneeObjectId || a.properties.principalId.toLowerCase() === opts.assigneeObjectId.toLowerCase()));
}

/** az's `--role-definition`: JSON text or `@file`/a path; PascalCase keys as in the docs' samples, or camelCase. */
function parseRoleDefinition(value: string): Record<string, unknown> {
  const text = value.startsWith('@') ? readFile(value.slice(1)) : fs.existsSync(value) ? readFile(value) : value;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new CliError(`Failed to parse the role definition: '${value.slice(0, 80)}' is neither a file nor valid JSON.`, 2);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new CliError('The role definition must be a JSON object.', 2);
  return Object.fromEntries(Object.entries(parsed).map(([k, v]) => [k[0].toLowerCase() + k.slice(1), v]));
}

function readFile(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    throw new CliError(`Cannot read the role definition file '${file}'.`, 2);
  }
}

const stringList = (value: unknown, field: string): string[] => {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) throw new CliError(`The role definition's '${field}' must be a list of strings.`, 2);
  return value as string[];
};

/** The --role-definition (or --custom-role-definition) argument, parsed. */
function roleDefinitionArgument(opts: { roleDefinition?: string; customRoleDefinition?: string }) {
  const text = opts.roleDefinition ?? opts.customRoleDefinition;
  if (!text) throw new CliError('the following arguments are required: --role-definition', 2);
  return parseRoleDefinition(text);
}

/**
 * A role definition document as ARM properties. Permissions come from `Permissions` or from the flat
 * `Actions`/`NotActions`/`DataActions`/`NotDataActions` of az's samples; undefined when the document names none.
 */
function definitionProperties(doc: Record<string, unknown>) {
  const roleName = doc.roleName ?? (typeof doc.name === 'string' && !GUID.test(doc.name) ? doc.name : undefined);
  const flat = ['actions', 'notActions', 'dataActions', 'notDataActions'].some((k) => doc[k] !== undefined);
  const permissions = doc.permissions !== undefined
    ? (doc.permissions as Record<string, unknown>[]).map((p) => ({
      actions: stringList(p.actions, 'actions'), notActions: stringList(p.notActions, 'notActions'),
      dataActions: stringList(p.dataActions, 'dataActions'), notDataActions: stringList(p.notDataActions, 'notDataActions'),
    }))
    : flat ? [{
      actions: stringList(doc.actions, 'Actions'), notActions: stringList(doc.notActions, 'NotActions'),
      dataActions: stringList(doc.dataActions, 'DataActions'), notDataActions: stringList(doc.notDataActions, 'NotDataActions'),
    }] : undefined;
  return {
    roleName: typeof roleName === 'string' ? roleName : '',
    description: typeof doc.description === 'string' ? doc.description : undefined,
    type: 'CustomRole',
    assignableScopes: stringList(doc.assignableScopes, 'AssignableScopes'),
    permissions,
  };
}

export function registerRoleCommands(program: Command) {
  const role = group(program, 'role', 'Manage Azure role-based access control (RBAC)');
  const definition = group(role, 'definition', 'Manage role definitions');
  const assignment = group(role, 'assignment', 'Manage role assignments');

  definition.command('list')
    .description('List role definitions')
    .option('-n, --name <name>', 'a role\'s name or id, e.g. "Key Vault Secrets User"')
    .option('--custom-role-only', 'custom roles only')
    .option('--scope <scope>', 'scope (default: the subscription)')
    .option('-g, --resource-group <group>', 'resource group scope')
    .action(action(async (opts: { name?: string; customRoleOnly?: boolean; scope?: string; resourceGroup?: string }, env) =>
      (await searchDefinitions(env, roleScope(env, opts), opts.name, opts.customRoleOnly)).map(definitionOutput)));

  definition.command('create')
    .description('Create a custom role definition')
    .addOption(new Option('--role-definition <json>', 'the role as JSON, or @file (Name, Description, Actions, NotActions, DataActions, NotDataActions, AssignableScopes)'))
    .addOption(new Option('--custom-role-definition <json>', 'same as --role-definition').hideHelp())
    .action(action(async (opts: { roleDefinition?: string; customRoleDefinition?: string }, env) => {
      const doc = roleDefinitionArgument(opts);
      const properties = definitionProperties(doc);
      if (!properties.roleName) throw new CliError('please provide role name', 2);
      if (!properties.assignableScopes.length) throw new CliError("please provide 'assignableScopes'", 2);
      const permissions = properties.permissions ?? [{ actions: [], notActions: [], dataActions: [], notDataActions: [] }];
      const created = await env.context().management<ArmRoleDefinition>('PUT', withVersion(`${definitionsPath(properties.assignableScopes[0])}/${crypto.randomUUID()}`), { body: { properties: { ...properties, permissions } } });
      return definitionOutput(created);
    }));

  definition.command('update')
    .description('Update a custom role definition (found by its id or name; fields left out keep their values)')
    .addOption(new Option('--role-definition <json>', 'the role as JSON, or @file, with its Id or Name and the fields to change'))
    .addOption(new Option('--custom-role-definition <json>', 'same as --role-definition').hideHelp())
    .action(action(async (opts: { roleDefinition?: string; customRoleDefinition?: string }, env) => {
      const doc = roleDefinitionArgument(opts);
      const key = typeof doc.id === 'string' && doc.id ? doc.id : (doc.name ?? doc.roleName);
      if (typeof key !== 'string' || !key) throw new CliError('please provide the role\'s Id or Name', 2);
      const [existing] = await searchDefinitions(env, subscriptionScope(env), key, true);
      if (!existing) throw new CliError(`Role '${key}' doesn't exist.`, 3);
      const given = definitionProperties(doc);
      const current = existing.properties;
      const properties = {
        roleName: given.roleName || current.roleName,
        description: given.description ?? current.description,
        type: 'CustomRole',
        assignableScopes: given.assignableScopes.length ? given.assignableScopes : current.assignableScopes,
        permissions: given.permissions ?? current.permissions,
      };
      const updated = await env.context().management<ArmRoleDefinition>('PUT', withVersion(`${definitionsPath(properties.assignableScopes[0])}/${existing.name}`), { body: { properties } });
      return definitionOutput(updated);
    }));

  definition.command('delete')
    .description('Delete a custom role definition')
    .requiredOption('-n, --name <name>', 'the role\'s name or id')
    .option('--custom-role-only', 'custom roles only')
    .option('--scope <scope>', 'scope (default: the subscription)')
    .option('-g, --resource-group <group>', 'resource group scope')
    .action(action(async (opts: { name: string; customRoleOnly?: boolean; scope?: string; resourceGroup?: string }, env) => {
      const scope = roleScope(env, opts);
      const found = await searchDefinitions(env, scope, opts.name, opts.customRoleOnly);
      if (!found.length) throw new CliError(`Role '${opts.name}' doesn't exist.`, 3);
      for (const d of found) await env.context().management('DELETE', withVersion(`${definitionsPath(scope)}/${d.name}`));
      return undefined;
    }));

  assignment.command('create')
    .description('Create a role assignment')
    .requiredOption('--role <role>', 'role name or id, e.g. "Key Vault Secrets User"')
    .option('--assignee <assignee>', 'the principal: object id, app id or user principal name')
    .option('--assignee-object-id <id>', 'the principal\'s object id (no directory lookup)')
    .addOption(new Option('--assignee-principal-type <type>', 'the principal\'s type (with --assignee-object-id)').choices(PRINCIPAL_TYPES))
    .option('--scope <scope>', 'scope, e.g. a vault id (default: the subscription)')
    .option('-g, --resource-group <group>', 'resource group scope')
    .option('--description <text>', 'description of the assignment')
    .action(action(async (opts: {
      role: string; assignee?: string; assigneeObjectId?: string; assigneePrincipalType?: string; scope?: string; resourceGroup?: string; description?: string;
    }, env) => {
      if (Boolean(opts.assignee) === Boolean(opts.assigneeObjectId)) throw usageError('--assignee ASSIGNEE | --assignee-object-id OBJECT_ID');
      if (opts.assigneePrincipalType && !opts.assigneeObjectId) throw usageError('--assignee-principal-type requires --assignee-object-id');
      const scope = roleScope(env, opts);
      const principalId = opts.assigneeObjectId ?? await resolveAssignee(env, opts.assignee!);
      const roleDefinitionId = await resolveRoleId(env, opts.role, scope);
      const body = { properties: { roleDefinitionId, principalId, principalType: opts.assigneePrincipalType, description: opts.description } };
      return assignmentOutput(await env.context().management<ArmRoleAssignment>('PUT', withVersion(`${assignmentsPath(scope)}/${crypto.randomUUID()}`), { body }));
    }));

  assignment.command('list')
    .description('List role assignments (by default those at the subscription scope)')
    .option('--assignee <assignee>', 'the principal: object id, app id or user principal name')
    .option('--role <role>', 'role name or id')
    .option('--scope <scope>', 'scope (default: the subscription)')
    .option('-g, --resource-group <group>', 'resource group scope')
    .option('--all', 'every assignment in the subscription, at any scope')
    .option('--include-inherited', 'include assignments at enclosing scopes')
    .action(action(async (opts: {
      assignee?: string; role?: string; scope?: string; resourceGroup?: string; all?: boolean; includeInherited?: boolean;
    }, env) => {
      if (opts.all && (opts.scope || opts.resourceGroup)) throw usageError('--all | --scope SCOPE | --resource-group GROUP');
      const scope = opts.all ? undefined : roleScope(env, opts);
      const assigneeObjectId = opts.assignee ? await resolveAssignee(env, opts.assignee) : undefined;
      const roleId = opts.role ? await resolveRoleId(env, opts.role, scope ?? subscriptionScope(env)) : undefined;
      const found = await searchAssignments(env, { scope, assigneeObjectId, roleId, includeInherited: opts.includeInherited });
      // az names each assignment's role and principal.
      const roleNames = new Map((await searchDefinitions(env, subscriptionScope(env))).map((d) => [d.name.toLowerCase(), d.properties.roleName]));
      const names = await principalNames(env, found.map((a) => a.properties.principalId));
      const rows = found.map((a) => ({
        ...assignmentOutput(a),
        principalName: names.get(a.properties.principalId.toLowerCase()) ?? '',
        roleDefinitionName: roleNames.get(a.properties.roleDefinitionId.split('/').pop()!.toLowerCase()) ?? null,
      }));
      // az's table transformer (without --query): Principal, Role, Scope.
      if (env.globals.output === 'table' && !env.globals.query) {
        return rows.map((r) => ({ Principal: r.principalName || r.principalId, Role: r.roleDefinitionName, Scope: r.scope }));
      }
      return rows;
    }));

  assignment.command('delete')
    .description('Delete role assignments')
    .option('--ids <ids...>', 'role assignment ids')
    .option('--assignee <assignee>', 'the principal: object id, app id or user principal name')
    .option('--role <role>', 'role name or id')
    .option('--scope <scope>', 'scope (default: the subscription)')
    .option('-g, --resource-group <group>', 'resource group scope')
    .option('--include-inherited', 'also delete matching assignments at enclosing scopes')
    .action(action(async (opts: {
      ids?: string[]; assignee?: string; role?: string; scope?: string; resourceGroup?: string; includeInherited?: boolean;
    }, env) => {
      const management = env.context().management;
      if (opts.ids) {
        if (opts.assignee || opts.role || opts.scope || opts.resourceGroup) throw usageError('--ids IDS | --assignee/--role/--scope/--resource-group');
        for (const id of opts.ids) await management('DELETE', withVersion(id));
        return undefined;
      }
      if (!opts.assignee && !opts.role && !opts.scope && !opts.resourceGroup) {
        throw usageError('please provide at least one of --ids, --assignee, --role, --scope or --resource-group');
      }
      const scope = roleScope(env, opts);
      const assigneeObjectId = opts.assignee ? await resolveAssignee(env, opts.assignee) : undefined;
      const roleId = opts.role ? await resolveRoleId(env, opts.role, scope) : undefined;
      const found = await searchAssignments(env, { scope, assigneeObjectId, roleId, includeInherited: opts.includeInherited });
      if (!found.length) {
        process.stderr.write('WARNING: No matched assignments were found to delete\n');
        return undefined;
      }
      for (const a of found) await management('DELETE', withVersion(a.id));
      return undefined;
    }));

  return role;
}
