import type { Permission, RoleDefinitionDocument } from './builtin-roles.js';

/** Azure's action pattern match: case-insensitive, `*` spans any characters (slashes included). */
export function actionMatches(pattern: string, action: string): boolean {
  const regex = new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\/]/g, '\\$&')).join('.*')}$`, 'i');
  return regex.test(action);
}

/** Whether `scope` is `resource` or encloses it (ARM ids compare case-insensitively). */
export function scopeEncloses(scope: string, resource: string): boolean {
  const s = scope.toLowerCase().replace(/\/+$/, '');
  const r = resource.toLowerCase().replace(/\/+$/, '');
  return s === '' || r === s || r.startsWith(`${s}/`);
}

export interface AssignmentForEvaluation {
  id: string;
  scope: string;
  roleDefinitionGuid: string;
}

export interface Grant {
  assignmentId: string;
  roleDefinitionGuid: string;
  permission: Permission;
}

export interface Authorizer {
  /** The assignment whose role grants `action` (a control-plane action) at `resource`, if any. */
  findActionGrant(principalId: string, resource: string, action: string): Promise<Grant | undefined>;
  /** The assignment whose role grants `dataAction` at `resource`, if any. */
  findDataActionGrant(principalId: string, resource: string, dataAction: string): Promise<Grant | undefined>;
  /** Every grant of `action` at `resource` (for conditions such as Key Vault Data Access Administrator's). */
  findActionGrants(principalId: string, resource: string, action: string): Promise<Grant[]>;
}

/**
 * RBAC evaluation as Azure does it: the assignments of the principal (and of the groups it belongs to) at the
 * resource and every enclosing scope; a permission grants an action when one of its actions matches and none of
 * its notActions does. Nothing is cached here; the pipeline caches data-plane decisions only under the database's
 * cache generation (src/pipeline/gate-cache.ts), so role and assignment changes still take effect at once.
 */
export function createAuthorizer(deps: {
  assignmentsFor(principalIds: string[]): Promise<AssignmentForEvaluation[]>;
  roleDefinition(guid: string): Promise<RoleDefinitionDocument | undefined>;
  /** Group object ids the principal belongs to; the identity area plugs groups in here. */
  memberships(principalId: string): Promise<string[]>;
}): Authorizer {
  async function grants(principalId: string, resource: string, allowed: (p: Permission) => boolean): Promise<Grant[]> {
    const principalIds = [principalId, ...(await deps.memberships(principalId))];
    const assignments = (await deps.assignmentsFor(principalIds)).filter((a) => scopeEncloses(a.scope, resource));
    const found: Grant[] = [];
    for (const a of assignments) {
      const definition = await deps.roleDefinition(a.roleDefinitionGuid);
      for (const permission of definition?.permissions ?? []) {
        if (allowed(permission)) found.push({ assignmentId: a.id, roleDefinitionGuid: a.roleDefinitionGuid, permission });
      }
    }
    return found;
  }
  const grantsAction = (action: string) => (p: Permission) =>
    p.actions.some((x) => actionMatches(x, action)) && !p.notActions.some((x) => actionMatches(x, action));
  const grantsDataAction = (action: string) => (p: Permission) =>
    p.dataActions.some((x) => actionMatches(x, action)) && !p.notDataActions.some((x) => actionMatches(x, action));

  return {
    async findActionGrant(principalId, resource, action) {
      return (await grants(principalId, resource, grantsAction(action)))[0];
    },
    findActionGrants: (principalId, resource, action) => grants(principalId, resource, grantsAction(action)),
    async findDataActionGrant(principalId, resource, dataAction) {
      return (await grants(principalId, resource, grantsDataAction(dataAction)))[0];
    },
  };
}
