import type { FastifyRequest } from 'fastify';
import { KeyVaultError } from '../http/errors.js';
import type { Authorizer, Grant } from '../gates/authorization/evaluate.js';

/** The ARM plumbing every management endpoint shares: route config, subscription check, and the caller's right to act. */
export interface Arm {
  subscriptionId: string;
  tenantId: string;
  config(operation: string): { config: { plane: 'management'; operation: string } };
  checkSubscription(id: string): void;
  /** Throws Azure's AuthorizationFailed unless the caller holds `action` at `scope`; returns the grant. */
  requireAction(req: FastifyRequest, scope: string, action: string): Promise<Grant>;
  /** Whether the caller holds `action` at `scope` (for filtering lists). */
  holds(req: FastifyRequest, scope: string, action: string): Promise<boolean>;
  callerId(req: FastifyRequest): string;
}

export const armError = (status: number, code: string, message: string) => new KeyVaultError(status, code, message);

/**
 * Coffer's own management endpoints (`/coffer/admin/*`, trusted issuers, managed-identity administration) belong to
 * the deployment administrator alone; anyone else is refused as ARM refuses an action: 403 AuthorizationFailed.
 */
export function requireDeploymentAdmin(req: FastifyRequest, adminObjectId: string) {
  const caller = req.coffer.caller;
  if (!caller) throw armError(401, 'AuthenticationFailed', 'Authentication failed. The Authorization header is missing.');
  if (caller.principal.objectId === adminObjectId) return;
  throw armError(403, 'AuthorizationFailed',
    `The client '${caller.claims.appid ?? caller.principal.objectId}' with object id '${caller.principal.objectId}' does not have authorization to perform action 'Coffer/${req.coffer.operation}': only the deployment administrator may.`);
}

export function createArm(deps: { subscriptionId: string; tenantId: string; authorizer: Authorizer }): Arm {
  const callerId = (req: FastifyRequest) => {
    const principal = req.coffer.caller?.principal;
    if (!principal) throw armError(401, 'AuthenticationFailed', 'Authentication failed. The Authorization header is missing.');
    return principal.objectId;
  };
  return {
    subscriptionId: deps.subscriptionId,
    tenantId: deps.tenantId,
    config: (operation) => ({ config: { plane: 'management', operation } }),
    checkSubscription(id) {
      if (id.toLowerCase() !== deps.subscriptionId.toLowerCase()) {
        throw armError(404, 'SubscriptionNotFound', `The subscription '${id}' could not be found.`);
      }
    },
    callerId,
    async holds(req, scope, action) {
      return (await deps.authorizer.findActionGrant(callerId(req), scope, action)) !== undefined;
    },
    async requireAction(req, scope, action) {
      const oid = callerId(req);
      const grant = await deps.authorizer.findActionGrant(oid, scope, action);
      if (!grant) {
        const client = req.coffer.caller?.claims.appid ?? oid;
        throw armError(403, 'AuthorizationFailed',
          `The client '${client}' with object id '${oid}' does not have authorization to perform action '${action}' over scope '${scope}' or the scope is invalid. If access was recently granted, please refresh your credentials.`);
      }
      return grant;
    },
  };
}
