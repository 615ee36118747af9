import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import type { Database } from '../storage/schema.js';
import type { Clock } from '../clock.js';
import type { Directory } from '../identity/directory.js';
import { armError, type Arm } from './arm.js';
import { SCOPE_ROUTES, type ScopeParams, type ScopeResolver } from './scopes.js';
import { GUID, roleDefinitionGuid, type RoleDefinitionsService } from './role-definitions.js';
import { scopeEncloses, type Authorizer } from '../gates/authorization/evaluate.js';

export type PrincipalType = 'User' | 'Group' | 'ServicePrincipal' | 'ForeignGroup' | 'Device';

export interface RoleAssignment {
  name: string;
  scope: string;
  roleDefinitionGuid: string;
  principalId: string;
  principalType: string;
  createdBy: string | null;
  createdAt: number;
}

export interface RoleAssignmentsService {
  create(input: Omit<RoleAssignment, 'createdAt'>): Promise<RoleAssignment>;
  get(name: string): Promise<RoleAssignment | undefined>;
  remove(name: string): Promise<void>;
  /** Assignments at the scope, above it, and (unless `atScope`) below it. */
  list(scope: string, opts?: { atScope?: boolean }): Promise<RoleAssignment[]>;
  forPrincipals(principalIds: string[]): Promise<RoleAssignment[]>;
  hasForRole(guid: string): Promise<boolean>;
}

const toAssignment = (row: Database['role_assignments']): RoleAssignment => ({
  name: row.id,
  scope: row.scope,
  roleDefinitionGuid: row.role_definition_id,
  principalId: row.principal_id,
  principalType: row.principal_type,
  createdBy: row.created_by,
  createdAt: Number(row.created_at),
});

export function createRoleAssignmentsService(deps: { db: Kysely<Database>; clock: Clock }): RoleAssignmentsService {
  const { db } = deps;
  const get = async (name: string) => {
    const row = await db.selectFrom('role_assignments').selectAll().where('id', '=', name.toLowerCase()).executeTakeFirst();
    return row && toAssignment(row);
  };
  return {
    get,
    async create(input) {
      const scopeKey = input.scope.toLowerCase();
      const duplicate = await db.selectFrom('role_assignments').select('id').where('scope_key', '=', scopeKey)
        .where('role_definition_id', '=', input.roleDefinitionGuid).where('principal_id', '=', input.principalId).executeTakeFirst();
      if (duplicate) throw armError(409, 'RoleAssignmentExists', 'The role assignment already exists.');
      await db.insertInto('role_assignments').values({
        id: input.name.toLowerCase(), scope: input.scope, scope_key: scopeKey, role_definition_id: input.roleDefinitionGuid,
        principal_id: input.principalId, principal_type: input.principalType, created_by: input.createdBy, created_at: deps.clock.now(),
      }).execute();
      return (await get(input.name))!;
    },
    async remove(name) {
      await db.deleteFrom('role_assignments').where('id', '=', name.toLowerCase()).execute();
    },
    async list(scope, opts = {}) {
      const rows = (await db.selectFrom('role_assignments').selectAll().orderBy('created_at').execute()).map(toAssignment);
      return rows.filter((a) => scopeEncloses(a.scope, scope) || (!opts.atScope && scopeEncloses(scope, a.scope)));
    },
    async forPrincipals(principalIds) {
      if (principalIds.length === 0) return [];
      const rows = await db.selectFrom('role_assignments').selectAll().where('principal_id', 'in', principalIds).execute();
      return rows.map(toAssignment);
    },
    async hasForRole(guid) {
      return (await db.selectFrom('role_assignments').select('id').where('role_definition_id', '=', guid).executeTakeFirst()) !== undefined;
    },
  };
}

export const roleAssignmentId = (a: Pick<RoleAssignment, 'scope' | 'name'>) => `${a.scope}/providers/Microsoft.Authorization/roleAssignments/${a.name}`;

const toArm = (a: RoleAssignment, subscriptionId: string) => ({
  id: roleAssignmentId(a),
  name: a.name,
  type: 'Microsoft.Authorization/roleAssignments',
  properties: {
    roleDefinitionId: `/subscriptions/${subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/${a.roleDefinitionGuid}`,
    principalId: a.principalId,
    principalType: a.principalType,
    scope: a.scope,
    condition: null,
    conditionVersion: null,
    createdOn: new Date(a.createdAt).toISOString(),
    updatedOn: new Date(a.createdAt).toISOString(),
    createdBy: a.createdBy,
    updatedBy: a.createdBy,
    delegatedManagedIdentityResourceId: null,
    description: null,
  },
});

const assignmentBody = {
  type: 'object',
  required: ['properties'],
  properties: {
    properties: {
      type: 'object',
      required: ['roleDefinitionId', 'principalId'],
      properties: {
        roleDefinitionId: { type: 'string', minLength: 1 },
        principalId: { type: 'string', minLength: 1 },
        principalType: { type: 'string', enum: ['User', 'Group', 'ServicePrincipal', 'ForeignGroup', 'Device'] },
        description: { type: ['string', 'null'] },
      },
    },
  },
} as const;

type AssignmentBody = { properties: { roleDefinitionId: string; principalId: string; principalType?: PrincipalType } };

/** The directory's principal kinds, as role assignments name them (managed identities are service principals). */
const ASSIGNMENT_TYPE: Record<string, PrincipalType> = { ServicePrincipal: 'ServicePrincipal', ManagedIdentity: 'ServicePrincipal', User: 'User', Group: 'Group' };

/** Parses the `$filter`s az and the SDKs send: atScope(), principalId eq '…', assignedTo('…'), joined by `and`. */
/** `$filter` once, as a string: a repeated one arrives as an array, refused (400) rather than parsed. */
const listQuery = { type: 'object', properties: { $filter: { type: 'string', maxLength: 2048 } } } as const;

function parseFilter(filter: string | undefined) {
  const result: { atScope?: boolean; principalId?: string; assignedTo?: string } = {};
  if (!filter) return result;
  for (const clause of filter.split(/\s+and\s+/i)) {
    let m: RegExpExecArray | null;
    if (/^\s*atScope\(\)\s*$/i.test(clause)) result.atScope = true;
    else if ((m = /^\s*principalId\s+eq\s+'([^']+)'\s*$/i.exec(clause))) result.principalId = m[1].toLowerCase();
    else if ((m = /^\s*assignedTo\('([^']+)'\)\s*$/i.exec(clause))) result.assignedTo = m[1].toLowerCase();
    else throw armError(400, 'InvalidFilter', `The filter '${filter}' is not supported. Supported filters: atScope(), principalId eq '{id}', assignedTo('{id}').`);
  }
  return result;
}

/** Microsoft.Authorization role assignments at subscription, resource group, vault and vault-object scope. */
export function roleAssignmentRoutes(app: FastifyInstance, deps: {
  arm: Arm; assignments: RoleAssignmentsService; definitions: RoleDefinitionsService; directory: Directory;
  authorizer: Authorizer; resolveScope: ScopeResolver; memberships(principalId: string): Promise<string[]>;
}) {
  const { arm, assignments, definitions, directory, authorizer, resolveScope } = deps;

  /** Write and delete need the action; a conditioned grant (Key Vault Data Access Administrator) only for its roles. */
  async function requireAssignmentAction(req: Parameters<Arm['requireAction']>[0], scope: string, action: string, roleGuid: string) {
    await arm.requireAction(req, scope, action);
    const grants = await authorizer.findActionGrants(arm.callerId(req), scope, action);
    if (!grants.some((g) => !g.permission.assignableRoleIds || g.permission.assignableRoleIds.includes(roleGuid))) {
      const oid = arm.callerId(req);
      throw armError(403, 'AuthorizationFailed',
        `The client '${req.coffer.caller?.claims.appid ?? oid}' with object id '${oid}' does not have authorization to perform action '${action}' over scope '${scope}' or the scope is invalid. The role assignment's condition does not allow role definition '${roleGuid}'.`);
    }
  }

  for (const prefix of SCOPE_ROUTES) {
    const base = `${prefix}/providers/Microsoft.Authorization/roleAssignments`;
    app.get<{ Params: ScopeParams; Querystring: { $filter?: string } }>(base, { ...arm.config('RoleAssignmentList'), schema: { querystring: listQuery } }, async (req) => {
      const scope = await resolveScope(req.params);
      const filter = parseFilter(req.query.$filter);
      await arm.requireAction(req, scope, 'Microsoft.Authorization/roleAssignments/read');
      let list = await assignments.list(scope, { atScope: filter.atScope });
      if (filter.principalId) list = list.filter((a) => a.principalId.toLowerCase() === filter.principalId);
      if (filter.assignedTo) {
        const ids = [filter.assignedTo, ...(await deps.memberships(filter.assignedTo))];
        list = list.filter((a) => ids.includes(a.principalId.toLowerCase()));
      }
      return { value: list.map((a) => toArm(a, arm.subscriptionId)) };
    });

    app.get<{ Params: ScopeParams & { name: string } }>(`${base}/:name`, arm.config('RoleAssignmentGet'), async (req) => {
      const scope = await resolveScope(req.params);
      await arm.requireAction(req, scope, 'Microsoft.Authorization/roleAssignments/read');
      const found = await assignments.get(req.params.name);
      if (!found || found.scope.toLowerCase() !== scope.toLowerCase()) {
        throw armError(404, 'RoleAssignmentNotFound', `The role assignment '${req.params.name}' is not found.`);
      }
      return toArm(found, arm.subscriptionId);
    });

    app.put<{ Params: ScopeParams & { name: string }; Body: AssignmentBody }>(`${base}/:name`,
      { ...arm.config('RoleAssignmentPut'), schema: { body: assignmentBody } }, async (req, reply) => {
        const scope = await resolveScope(req.params);
        if (!GUID.test(req.params.name)) {
          throw armError(400, 'InvalidRoleAssignmentId', `The role assignment ID '${req.params.name}' is not valid. The role assignment ID must be a GUID.`);
        }
        const p = req.body.properties;
        const guid = roleDefinitionGuid(p.roleDefinitionId);
        const definition = guid && await definitions.get(guid);
        if (!guid || !definition) {
          throw armError(400, 'RoleDefinitionDoesNotExist', `The specified role definition with ID '${p.roleDefinitionId.split('/').pop()}' does not exist.`);
        }
        if (!definition.assignableScopes.some((s) => scopeEncloses(s, scope))) {
          throw armError(400, 'InvalidRoleAssignmentScope', `The role definition '${definition.roleName}' is not assignable at scope '${scope}'.`);
        }
        await requireAssignmentAction(req, scope, 'Microsoft.Authorization/roleAssignments/write', guid);
        const principal = GUID.test(p.principalId) ? await directory.getPrincipal(p.principalId.toLowerCase()) : undefined;
        if (!principal) {
          throw armError(400, 'PrincipalNotFound',
            `Principal ${p.principalId.replace(/-/g, '')} does not exist in the directory ${arm.tenantId}. Check that you have the correct principal ID. If you are creating this principal and then immediately assigning a role, this error might be related to a replication delay. In this case, set the role assignment principalType property to a value, such as ServicePrincipal, User, or Group. See https://aka.ms/docs-principaltype`);
        }
        const actualType = ASSIGNMENT_TYPE[principal.kind] ?? 'ServicePrincipal';
        if (p.principalType && p.principalType !== actualType) {
          throw armError(400, 'UnmatchedPrincipalType',
            `The PrincipalId '${p.principalId.replace(/-/g, '')}' has type '${actualType}' , which is different from specified PrincipalType '${p.principalType}'.`);
        }
        const existing = await assignments.get(req.params.name);
        if (existing) {
          const same = existing.scope.toLowerCase() === scope.toLowerCase() && existing.principalId === principal.objectId && existing.roleDefinitionGuid === guid;
          if (!same) throw armError(409, 'RoleAssignmentUpdateNotPermitted', 'Tenant ID, application ID, principal ID, and scope are not allowed to be updated.');
          return toArm(existing, arm.subscriptionId);
        }
        const created = await assignments.create({
          name: req.params.name, scope, roleDefinitionGuid: guid, principalId: principal.objectId, principalType: actualType, createdBy: arm.callerId(req),
        });
        reply.code(201);
        return toArm(created, arm.subscriptionId);
      });

    app.delete<{ Params: ScopeParams & { name: string } }>(`${base}/:name`, arm.config('RoleAssignmentDelete'), async (req, reply) => {
      const scope = await resolveScope(req.params);
      const found = await assignments.get(req.params.name);
      if (!found || found.scope.toLowerCase() !== scope.toLowerCase()) return reply.code(204).send();
      await requireAssignmentAction(req, scope, 'Microsoft.Authorization/roleAssignments/delete', found.roleDefinitionGuid);
      await assignments.remove(found.name);
      return toArm(found, arm.subscriptionId);
    });
  }
}
