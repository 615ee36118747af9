import type { FastifyRequest } from 'fastify';
import type { Gate } from '../../pipeline/pipeline.js';
import type { RequestContext } from '../../pipeline/context.js';
import type { Vault } from '../../control-plane/vaults.js';
import { forbidden } from '../../http/errors.js';
import type { Authorizer } from './evaluate.js';
import { requirementFor, type OperationRequirement } from './data-actions.js';

/** What the authorization step decided, kept on the request for the audit record. */
export interface AuthorizationDecision {
  model: 'rbac' | 'accessPolicy';
  action: string;
  resource: string;
  isRbacAuthorized?: boolean;
  isAccessPolicyMatch?: boolean;
  /** The role assignment whose role granted the action (RBAC vaults). */
  roleAssignmentId?: string;
}

declare module '../../pipeline/context.js' {
  interface RequestContext {
    authorization?: AuthorizationDecision;
  }
}

/** How Key Vault names the caller in its 403 messages. */
const callerDescription = (ctx: RequestContext) => {
  const c = ctx.caller!.claims;
  return `appid=${c.appid ?? c.azp ?? ''};oid=${c.oid};iss=${c.iss}`;
};
const vaultDescription = (vault: Vault) => `${vault.name};location=${vault.location}`;

/**
 * The data plane's authorization step. A vault is governed by exactly one model — the one its
 * `enableRbacAuthorization` selects, current on every request (the vault step's cache is validated by the database's
 * cache generation) — and grants in the other model are ignored.
 */
export function createAuthorizationGate(deps: {
  authorizer: Authorizer;
  /** Group object ids the principal belongs to (access policies may name groups). */
  memberships(principalId: string): Promise<string[]>;
}): Gate {
  async function rbac(ctx: RequestContext, vault: Vault, need: OperationRequirement, objectName: string | undefined) {
    const resource = objectName === undefined ? vault.resourceId : `${vault.resourceId}/${need.collection}/${objectName}`;
    const grant = await deps.authorizer.findDataActionGrant(ctx.caller!.principal.objectId, resource, need.dataAction);
    ctx.authorization = { model: 'rbac', action: need.dataAction, resource, isRbacAuthorized: grant !== undefined, roleAssignmentId: grant?.assignmentId };
    if (!grant) {
      throw forbidden([
        'Caller is not authorized to perform action on resource.',
        'If role assignments, deny assignments or role definitions were changed recently, please observe propagation time.',
        `Caller: ${callerDescription(ctx)}`,
        `Action: '${need.dataAction}'`,
        `Resource: '${resource.toLowerCase()}'`,
        'Assignment: (not found)',
        'DenyAssignmentId: null',
        'DecisionReason: null ',
        `Vault: ${vaultDescription(vault)}`,
        '',
      ].join('\r\n'), 'ForbiddenByRbac');
    }
  }

  async function accessPolicy(ctx: RequestContext, vault: Vault, need: OperationRequirement) {
    const { principal, claims } = ctx.caller!;
    const ids = new Set([principal.objectId, ...(await deps.memberships(principal.objectId))].map((id) => id.toLowerCase()));
    const appId = (claims.appid ?? claims.azp ?? '').toLowerCase();
    const matching = vault.properties.accessPolicies.filter((e) => e.tenantId.toLowerCase() === vault.tenantId.toLowerCase()
      && ids.has(e.objectId.toLowerCase())
      // A compound entry (object + application) applies only when the caller comes through that application.
      && (!e.applicationId || e.applicationId.toLowerCase() === appId));
    const granted = matching.flatMap((e) => e.permissions[need.collection] ?? []).map((p) => p.toLowerCase());
    const allowed = granted.includes(need.permission) || granted.includes('all');
    ctx.authorization = { model: 'accessPolicy', action: need.dataAction, resource: vault.resourceId, isAccessPolicyMatch: allowed };
    if (!allowed) {
      throw forbidden(
        `The user, group or application '${callerDescription(ctx)}' does not have ${need.collection} ${need.permission} permission on key vault '${vaultDescription(vault)}'. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287`,
        'ForbiddenByPolicy');
    }
  }

  return {
    name: 'authorization',
    appliesTo: (ctx) => ctx.plane === 'vault',
    async check(req: FastifyRequest, ctx) {
      const vault = ctx.vault!;
      const need = requirementFor(ctx.operation);
      const objectName = (req.params as { name?: string } | undefined)?.name;
      if (vault.properties.enableRbacAuthorization) await rbac(ctx, vault, need, objectName);
      else await accessPolicy(ctx, vault, need);
    },
  };
}
