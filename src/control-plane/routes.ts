import crypto from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import type { Database } from '../storage/schema.js';
import type { VaultsService } from './vaults.js';
import { KeyVaultError } from '../http/errors.js';
import type { Clock } from '../clock.js';
import { parseDuration } from '../clock.js';
import type { SettingsRepository } from '../storage/settings.js';
import type { Directory } from '../identity/directory.js';
import { createArm, requireDeploymentAdmin } from './arm.js';
import { checkManagementApiVersion } from './api-versions.js';
import { createResourceGroupsService, resourceGroupRoutes } from './resource-groups.js';
import { vaultRoutes } from './vaults-routes.js';
import { createRoleDefinitionsService, roleDefinitionRoutes } from './role-definitions.js';
import { createRoleAssignmentsService, roleAssignmentRoutes, type RoleAssignmentsService } from './role-assignments.js';
import { createScopeResolver } from './scopes.js';
import { createAuthorizer } from '../gates/authorization/evaluate.js';
import { ROLE_IDS } from '../gates/authorization/builtin-roles.js';

export { toArmVault } from './vaults-routes.js';

/** Group memberships of a principal. Groups arrive with the identity work; until then a principal is in none. */
export type Memberships = (principalId: string) => Promise<string[]>;
export const noMemberships: Memberships = async () => [];

/** The latest time the service clock may be advanced to. */
const LATEST_SERVICE_TIME = Date.UTC(9999, 11, 31);

/** Role definitions, role assignments and the RBAC evaluator over them, shared by the control plane and the data-plane gate. */
export function createAuthorization(deps: { db: Kysely<Database>; clock: Clock; memberships?: Memberships }) {
  const memberships = deps.memberships ?? noMemberships;
  const assignments = createRoleAssignmentsService({ db: deps.db, clock: deps.clock });
  const definitions = createRoleDefinitionsService({ db: deps.db, clock: deps.clock, hasAssignments: (guid) => assignments.hasForRole(guid) });
  const authorizer = createAuthorizer({
    assignmentsFor: async (ids) => (await assignments.forPrincipals(ids)).map((a) => ({ id: a.name, scope: a.scope, roleDefinitionGuid: a.roleDefinitionGuid })),
    roleDefinition: (guid) => definitions.get(guid),
    memberships,
  });
  return { assignments, definitions, authorizer, memberships };
}
export type Authorization = ReturnType<typeof createAuthorization>;

/**
 * The bootstrap administrator is the subscription's Owner, as a subscription's creator is in Azure (and, like
 * an Owner, it reads vault data only once a data role or access policy grants it). Idempotent across nodes.
 */
export async function ensureBootstrapOwner(db: Kysely<Database>, assignments: RoleAssignmentsService, d: { subscriptionId: string; adminObjectId: string }) {
  const scope = `/subscriptions/${d.subscriptionId}`;
  const existing = (await assignments.list(scope, { atScope: true }))
    .find((a) => a.principalId === d.adminObjectId && a.roleDefinitionGuid === ROLE_IDS.owner && a.scope.toLowerCase() === scope);
  if (existing) return;
  const hex = crypto.createHash('sha256').update(`bootstrap-owner|${d.subscriptionId}|${d.adminObjectId}`).digest('hex');
  const name = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
  await db.insertInto('role_assignments').values({
    id: name, scope, scope_key: scope.toLowerCase(), role_definition_id: ROLE_IDS.owner, principal_id: d.adminObjectId,
    principal_type: 'ServicePrincipal', created_by: null, created_at: Date.now(),
  }).onConflict((oc) => oc.doNothing()).execute();
}

/** The ARM-compatible management API and the deployment administrator's /coffer/admin endpoints. */
export function controlPlaneRoutes(app: FastifyInstance, deps: {
  vaults: VaultsService; db: Kysely<Database>; authorization: Authorization; directory: Directory;
  tenantId: string; subscriptionId: string; adminObjectId: string; clock: Clock; settings: SettingsRepository;
  runScheduler: () => Promise<void>;
}) {
  const { vaults, authorization, directory } = deps;
  const arm = createArm({ subscriptionId: deps.subscriptionId, tenantId: deps.tenantId, authorizer: authorization.authorizer });
  const resourceGroups = createResourceGroupsService({ db: deps.db, clock: deps.clock, subscriptionId: deps.subscriptionId, vaults });
  const resolveScope = createScopeResolver({ arm, resourceGroups, vaults });

  // ARM refuses any /subscriptions request without an api-version the addressed provider publishes, before looking at
  // anything else (the body included: preValidation runs before the route's schema does). Every management route
  // family (vaults, roles, groups, network, monitor, event grid, managed identities) is registered in this scope.
  app.addHook('preValidation', async (req) => {
    if (req.coffer.plane !== 'management' || !req.url.startsWith('/subscriptions')) return;
    checkManagementApiVersion(req.url, (req.query as Record<string, unknown> | undefined)?.['api-version'], req.body);
  });

  resourceGroupRoutes(app, { arm, resourceGroups });
  vaultRoutes(app, { arm, vaults, resourceGroups });
  roleDefinitionRoutes(app, { arm, definitions: authorization.definitions, resolveScope });
  roleAssignmentRoutes(app, {
    arm, assignments: authorization.assignments, definitions: authorization.definitions, directory,
    authorizer: authorization.authorizer, resolveScope, memberships: authorization.memberships,
  });

  app.get<{ Params: { subscriptionId: string } }>('/subscriptions/:subscriptionId', arm.config('SubscriptionGet'), async (req) => {
    arm.checkSubscription(req.params.subscriptionId);
    return subscription(deps);
  });
  app.get('/subscriptions', arm.config('SubscriptionList'), async () => ({ value: [subscription(deps)] }));

  const requireAdmin = (req: FastifyRequest) => requireDeploymentAdmin(req, deps.adminObjectId);
  const config = (operation: string) => ({ config: { plane: 'management' as const, operation } });

  app.post<{ Body: { advance: string } }>('/coffer/admin/clock/advance', {
    ...config('ClockAdvance'),
    schema: { body: { type: 'object', required: ['advance'], properties: { advance: { type: 'string' } } } },
  }, async (req) => {
    requireAdmin(req);
    let ms: number;
    try {
      ms = parseDuration(req.body.advance);
    } catch (err) {
      throw new KeyVaultError(400, 'BadParameter', (err as Error).message);
    }
    // The service clock must stay a date everything can write (ISO 8601 and X.509 stop at the year 9999): past it,
    // every request that formats a time would fail, so such an advance is refused and the clock left as it was.
    if (!Number.isSafeInteger(ms) || deps.clock.now() + ms > LATEST_SERVICE_TIME) {
      throw new KeyVaultError(400, 'BadParameter', `Advancing the clock by '${req.body.advance}' would take it past the year 9999.`);
    }
    deps.clock.setOffset(deps.clock.offsetMs() + ms);
    await deps.settings.put('clock.offset_ms', String(deps.clock.offsetMs()));
    await deps.runScheduler();
    return { now: new Date(deps.clock.now()).toISOString(), offsetMs: deps.clock.offsetMs() };
  });

  // A service principal with a client secret, for tests and automation until the identity API lands.
  // The secret is shown once, in this response, as Entra shows a new client secret once.
  app.post<{ Body: { displayName: string } }>('/coffer/admin/service-principals', {
    ...config('ServicePrincipalCreate'),
    schema: { body: { type: 'object', required: ['displayName'], properties: { displayName: { type: 'string', minLength: 1, maxLength: 256 } } } },
  }, async (req, reply) => {
    requireAdmin(req);
    const principal = await directory.createServicePrincipal({ displayName: req.body.displayName, tenantId: deps.tenantId });
    const secret = await directory.addClientSecret(principal.objectId);
    reply.code(201);
    return { objectId: principal.objectId, appId: principal.appId, tenantId: deps.tenantId, displayName: principal.displayName, clientSecret: secret.secretText };
  });
}

const subscription = (d: { subscriptionId: string; tenantId: string }) => ({
  id: `/subscriptions/${d.subscriptionId}`,
  subscriptionId: d.subscriptionId,
  tenantId: d.tenantId,
  displayName: 'Coffer',
  state: 'Enabled',
  subscriptionPolicies: { locationPlacementId: 'Public_2014-09-01', quotaId: 'PayAsYouGo_2014-09-01', spendingLimit: 'Off' },
  authorizationSource: 'RoleBased',
});
