import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import type { Database } from '../storage/schema.js';
import type { Clock } from '../clock.js';
import { armError, type Arm } from './arm.js';
import { SCOPE_ROUTES, parseScope, type ScopeParams, type ScopeResolver } from './scopes.js';
import { BUILT_IN_ROLES, type Permission, type RoleDefinitionDocument } from '../gates/authorization/builtin-roles.js';
import { scopeEncloses } from '../gates/authorization/evaluate.js';

export interface RoleDefinition extends RoleDefinitionDocument {
  guid: string;
  /** Where a custom role was created; built-ins have none. */
  scope?: string;
}

export interface RoleDefinitionsService {
  get(guid: string): Promise<RoleDefinition | undefined>;
  /** Definitions assignable at or under `scope`: every built-in, and custom roles whose assignable scopes enclose it. */
  list(scope: string): Promise<RoleDefinition[]>;
  put(guid: string, scope: string, doc: Omit<RoleDefinitionDocument, 'type'>): Promise<{ definition: RoleDefinition; created: boolean }>;
  remove(guid: string): Promise<RoleDefinition | undefined>;
}

const BUILT_IN_BY_GUID = new Map(BUILT_IN_ROLES.map((r) => [r.guid, r]));
export const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The GUID at the end of a role definition id (`…/roleDefinitions/{guid}`) or the bare GUID. */
export function roleDefinitionGuid(idOrGuid: string): string | undefined {
  const guid = idOrGuid.split('/').pop() ?? '';
  return GUID.test(guid) ? guid.toLowerCase() : undefined;
}

export function createRoleDefinitionsService(deps: { db: Kysely<Database>; clock: Clock; hasAssignments(guid: string): Promise<boolean> }): RoleDefinitionsService {
  const { db } = deps;
  const toCustom = (row: Database['role_definitions']): RoleDefinition => ({ ...JSON.parse(row.document), type: 'CustomRole', guid: row.id, scope: row.scope });
  const get = async (guid: string) => {
    const builtIn = BUILT_IN_BY_GUID.get(guid.toLowerCase());
    if (builtIn) return builtIn;
    const row = await db.selectFrom('role_definitions').selectAll().where('id', '=', guid.toLowerCase()).executeTakeFirst();
    return row && toCustom(row);
  };
  return {
    get,
    async list(scope) {
      const custom = (await db.selectFrom('role_definitions').selectAll().orderBy('role_name').execute()).map(toCustom)
        .filter((d) => d.assignableScopes.some((s) => scopeEncloses(s, scope) || scopeEncloses(scope, s)));
      return [...BUILT_IN_ROLES, ...custom];
    },
    async put(guid, scope, doc) {
      if (BUILT_IN_BY_GUID.has(guid)) throw armError(403, 'RoleDefinitionUpdateNotAllowed', 'Built-in role definitions cannot be changed.');
      const sameName = await db.selectFrom('role_definitions').select('id')
        .where('role_name', '=', doc.roleName.toLowerCase()).where('id', '!=', guid).executeTakeFirst();
      if (sameName || BUILT_IN_ROLES.some((r) => r.roleName.toLowerCase() === doc.roleName.toLowerCase())) {
        throw armError(409, 'RoleDefinitionWithSameNameExists', 'A custom role with the same name already exists in this directory. Use a different name.');
      }
      const existing = await get(guid);
      const document = JSON.stringify({ ...doc, type: 'CustomRole' });
      if (existing) {
        await db.updateTable('role_definitions').set({ role_name: doc.roleName.toLowerCase(), document }).where('id', '=', guid).execute();
      } else {
        await db.insertInto('role_definitions').values({ id: guid, scope, role_name: doc.roleName.toLowerCase(), document, created_at: deps.clock.now() }).execute();
      }
      return { definition: (await get(guid))!, created: !existing };
    },
    async remove(guid) {
      const existing = await get(guid);
      if (!existing) return undefined;
      if (existing.type === 'BuiltInRole') throw armError(403, 'RoleDefinitionUpdateNotAllowed', 'Built-in role definitions cannot be deleted.');
      if (await deps.hasAssignments(guid)) {
        throw armError(409, 'RoleDefinitionHasAssignments', 'There are existing role assignments referencing role (code: RoleDefinitionHasAssignments).');
      }
      await db.deleteFrom('role_definitions').where('id', '=', guid).execute();
      return existing;
    },
  };
}

export const toArmRoleDefinition = (d: RoleDefinition, subscriptionId: string) => ({
  id: `/subscriptions/${subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/${d.guid}`,
  name: d.guid,
  type: 'Microsoft.Authorization/roleDefinitions',
  properties: {
    roleName: d.roleName,
    type: d.type,
    description: d.description,
    assignableScopes: d.assignableScopes,
    permissions: d.permissions.map(({ assignableRoleIds: _internal, ...p }) => p),
  },
});

const patternList = { type: 'array', items: { type: 'string', minLength: 1, maxLength: 512 } } as const;
const definitionBody = {
  type: 'object',
  required: ['properties'],
  properties: {
    properties: {
      type: 'object',
      required: ['roleName', 'permissions', 'assignableScopes'],
      properties: {
        roleName: { type: 'string', minLength: 1, maxLength: 512 },
        description: { type: 'string', maxLength: 2048 },
        type: { type: 'string' },
        assignableScopes: { type: 'array', minItems: 1, items: { type: 'string' } },
        permissions: {
          type: 'array', minItems: 1,
          items: { type: 'object', properties: { actions: patternList, notActions: patternList, dataActions: patternList, notDataActions: patternList } },
        },
      },
    },
  },
} as const;

type DefinitionBody = { properties: { roleName: string; description?: string; assignableScopes: string[]; permissions: Partial<Permission>[] } };

/** Microsoft.Authorization role definitions at every scope: built-ins read-only, custom roles with wildcards. */
export function roleDefinitionRoutes(app: FastifyInstance, deps: { arm: Arm; definitions: RoleDefinitionsService; resolveScope: ScopeResolver }) {
  const { arm, definitions, resolveScope } = deps;
  const notFound = (id: string) => armError(404, 'RoleDefinitionDoesNotExist', `The specified role definition with ID '${id}' does not exist.`);
  for (const prefix of SCOPE_ROUTES) {
    const base = `${prefix}/providers/Microsoft.Authorization/roleDefinitions`;
    app.get<{ Params: ScopeParams; Querystring: { $filter?: string } }>(base, arm.config('RoleDefinitionList'), async (req) => {
      const scope = await resolveScope(req.params);
      await arm.requireAction(req, scope, 'Microsoft.Authorization/roleDefinitions/read');
      let list = await definitions.list(scope);
      const filter = req.query.$filter;
      if (filter) {
        const m = /^\s*(roleName|type)\s+eq\s+'([^']*)'\s*$/i.exec(filter);
        if (!m) throw armError(400, 'InvalidFilter', `The filter '${filter}' is not supported. Supported filters: roleName eq '{name}', type eq '{BuiltInRole|CustomRole}'.`);
        const [, field, value] = m;
        list = list.filter((d) => (field.toLowerCase() === 'rolename' ? d.roleName : d.type).toLowerCase() === value.toLowerCase());
      }
      return { value: list.map((d) => toArmRoleDefinition(d, arm.subscriptionId)) };
    });
    app.get<{ Params: ScopeParams & { id: string } }>(`${base}/:id`, arm.config('RoleDefinitionGet'), async (req) => {
      const scope = await resolveScope(req.params);
      await arm.requireAction(req, scope, 'Microsoft.Authorization/roleDefinitions/read');
      const guid = roleDefinitionGuid(req.params.id);
      const found = guid && await definitions.get(guid);
      if (!found) throw notFound(req.params.id);
      return toArmRoleDefinition(found, arm.subscriptionId);
    });
    app.put<{ Params: ScopeParams & { id: string }; Body: DefinitionBody }>(`${base}/:id`,
      { ...arm.config('RoleDefinitionPut'), schema: { body: definitionBody } }, async (req, reply) => {
        const scope = await resolveScope(req.params);
        const guid = roleDefinitionGuid(req.params.id);
        if (!guid) throw armError(400, 'InvalidRoleDefinitionId', `The role definition ID '${req.params.id}' is not valid. It must be a GUID.`);
        const p = req.body.properties;
        for (const s of p.assignableScopes) {
          const parsed = parseScope(s);
          if (!parsed) throw armError(400, 'InvalidAssignableScope', `The assignable scope '${s}' is not valid.`);
          await resolveScope(parsed);
          await arm.requireAction(req, s, 'Microsoft.Authorization/roleDefinitions/write');
        }
        await arm.requireAction(req, scope, 'Microsoft.Authorization/roleDefinitions/write');
        const permissions = p.permissions.map((x) => ({ actions: x.actions ?? [], notActions: x.notActions ?? [], dataActions: x.dataActions ?? [], notDataActions: x.notDataActions ?? [] }));
        const { definition, created } = await definitions.put(guid, scope, {
          roleName: p.roleName, description: p.description ?? '', assignableScopes: p.assignableScopes, permissions,
        });
        reply.code(created ? 201 : 200);
        return toArmRoleDefinition(definition, arm.subscriptionId);
      });
    app.delete<{ Params: ScopeParams & { id: string } }>(`${base}/:id`, arm.config('RoleDefinitionDelete'), async (req, reply) => {
      const scope = await resolveScope(req.params);
      await arm.requireAction(req, scope, 'Microsoft.Authorization/roleDefinitions/delete');
      const guid = roleDefinitionGuid(req.params.id);
      const removed = guid && await definitions.remove(guid);
      if (!removed) return reply.code(204).send();
      return toArmRoleDefinition(removed, arm.subscriptionId);
    });
  }
}

