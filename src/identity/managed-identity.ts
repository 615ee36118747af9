import crypto from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import type { Database } from '../storage/schema.js';
import type { Directory, IdentityDatabase, Principal } from './directory.js';
import { KeyVaultError } from '../http/errors.js';
import { requireDeploymentAdmin } from '../control-plane/arm.js';
import type { Endpoints } from '../endpoints.js';
import { APP_SERVICE_TOKEN_PATH, podIdentityAuthorityHost } from './managed-identity-endpoints.js';

/** How long a minted IDENTITY_HEADER stays valid unless asked otherwise (a working day of `coffer run`). */
const DEFAULT_BINDING_SECONDS = 12 * 3600;
const MAX_BINDING_SECONDS = 7 * 24 * 3600;

/**
 * Bindings tie a secret to one managed identity: whoever holds it (as the App Service IDENTITY_HEADER, or in the
 * IMDS authority host path) can get tokens for that identity, and only for it. Only the secret's hash is stored.
 */
export interface ManagedIdentityBindings {
  mint(principal: Principal, createdBy: string, lifetimeSeconds?: number): Promise<{ identityHeader: string; expiresOn: number }>;
  /** The identity a header was minted for, while the binding lives and the identity exists. */
  resolve(identityHeader: string): Promise<Principal | undefined>;
}

const hash = (secret: string) => crypto.createHash('sha256').update(secret, 'utf8').digest('hex');

export function createManagedIdentityBindings(deps: { db: Kysely<Database>; directory: Directory }): ManagedIdentityBindings {
  const db = deps.db as unknown as Kysely<IdentityDatabase>;
  return {
    async mint(principal, createdBy, lifetimeSeconds = DEFAULT_BINDING_SECONDS) {
      // Hex: the same secret also travels in an IMDS authority host URL, which MSAL lower-cases.
      const identityHeader = crypto.randomBytes(32).toString('hex');
      const expiresOn = Date.now() + lifetimeSeconds * 1000;
      await db.insertInto('identity_bindings').values({
        id: crypto.randomUUID(), secret_hash: hash(identityHeader), principal_id: principal.objectId,
        created_by: createdBy, created_at: Date.now(), expires_at: expiresOn,
      }).execute();
      return { identityHeader, expiresOn: Math.floor(expiresOn / 1000) };
    },
    async resolve(identityHeader) {
      const row = await db.selectFrom('identity_bindings').select(['principal_id', 'expires_at'])
        .where('secret_hash', '=', hash(identityHeader)).executeTakeFirst();
      if (!row || Number(row.expires_at) <= Date.now()) return undefined;
      return deps.directory.getPrincipal(row.principal_id);
    },
  };
}

const IDENTITY_TYPE = 'Microsoft.ManagedIdentity/userAssignedIdentities';
const SYSTEM_ASSIGNED_TYPE = 'Microsoft.ManagedIdentity/identities';

/** User-assigned identities are resources of their own; a system-assigned one's resource id is its owner's. */
export const isUserAssigned = (p: Principal) => Boolean(p.resourceId?.includes(`/providers/${IDENTITY_TYPE.toLowerCase()}/`));
const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_-]{2,127}$/;

interface IdentityParams { subscriptionId: string; resourceGroup: string; name: string }

/**
 * User-assigned managed identities as ARM resources, and the minting of IDENTITY_HEADER bindings. Both are limited to
 * the deployment administrator (Coffer has no Managed Identity Operator role yet): assigning an identity to a process
 * is exactly what must not be open to everyone.
 */
export function managedIdentityRoutes(app: FastifyInstance, deps: {
  directory: Directory; bindings: ManagedIdentityBindings; db: Kysely<Database>; endpoints: Endpoints;
  tenantId: string; subscriptionId: string; adminObjectId: string;
}) {
  const { directory } = deps;
  const config = (operation: string) => ({ config: { plane: 'management' as const, operation } });
  const requireAdmin = (req: FastifyRequest) => requireDeploymentAdmin(req, deps.adminObjectId);
  const armError = (status: number, code: string, message: string) => new KeyVaultError(status, code, message);
  const resourceIdOf = (p: IdentityParams) =>
    `/subscriptions/${p.subscriptionId}/resourcegroups/${p.resourceGroup}/providers/${IDENTITY_TYPE}/${p.name}`;

  const toArm = (p: Principal) => {
    // Resource ids are stored lower-cased (they compare case-insensitively); the display name keeps the given case.
    const [, , , , group] = p.resourceId!.split('/');
    const id = `/subscriptions/${deps.subscriptionId}/resourcegroups/${group}/providers/${IDENTITY_TYPE}/${p.displayName}`;
    return {
      id, name: p.displayName, type: IDENTITY_TYPE, location: 'local', tags: {},
      properties: { tenantId: p.tenantId, principalId: p.objectId, clientId: p.appId },
    };
  };

  const checkSubscription = (subscriptionId: string) => {
    if (subscriptionId.toLowerCase() !== deps.subscriptionId) {
      throw armError(404, 'SubscriptionNotFound', `The subscription '${subscriptionId}' could not be found.`);
    }
  };
  const find = async (p: IdentityParams) => {
    checkSubscription(p.subscriptionId);
    const principal = await directory.getByResourceId(resourceIdOf(p));
    if (!principal) throw armError(404, 'ResourceNotFound', `The Resource '${IDENTITY_TYPE}/${p.name}' under resource group '${p.resourceGroup}' was not found.`);
    return principal;
  };

  const base = `/subscriptions/:subscriptionId/resourceGroups/:resourceGroup/providers/${IDENTITY_TYPE}`;
  app.put<{ Params: IdentityParams }>(`${base}/:name`, config('UserAssignedIdentityPut'), async (req, reply) => {
    requireAdmin(req);
    checkSubscription(req.params.subscriptionId);
    if (!NAME.test(req.params.name)) {
      throw armError(400, 'InvalidResourceName', `The resource name '${req.params.name}' is invalid. It must be 3-128 characters: letters, digits, '-' and '_', starting with a letter or digit.`);
    }
    const group = await (deps.db as Kysely<Database>).selectFrom('resource_groups').select('name')
      .where('subscription_id', '=', deps.subscriptionId).where('name_key', '=', req.params.resourceGroup.toLowerCase()).executeTakeFirst();
    if (!group) throw armError(404, 'ResourceGroupNotFound', `Resource group '${req.params.resourceGroup}' could not be found.`);
    const existing = await directory.getByResourceId(resourceIdOf(req.params));
    if (existing) return toArm(existing);
    const created = await directory.createManagedIdentity({ tenantId: deps.tenantId, resourceId: resourceIdOf(req.params), displayName: req.params.name });
    reply.code(201);
    return toArm(created);
  });
  app.get<{ Params: IdentityParams }>(`${base}/:name`, config('UserAssignedIdentityGet'), async (req) => {
    requireAdmin(req);
    return toArm(await find(req.params));
  });
  app.delete<{ Params: IdentityParams }>(`${base}/:name`, config('UserAssignedIdentityDelete'), async (req, reply) => {
    requireAdmin(req);
    checkSubscription(req.params.subscriptionId);
    const existing = await directory.getByResourceId(resourceIdOf(req.params));
    if (!existing) return reply.code(204).send();
    await directory.deletePrincipal(existing.objectId);
    return {};
  });
  const list = async (subscriptionId: string, resourceGroup?: string) => {
    checkSubscription(subscriptionId);
    const all = await directory.listPrincipals('ManagedIdentity');
    const inGroup = resourceGroup ? `/subscriptions/${deps.subscriptionId}/resourcegroups/${resourceGroup.toLowerCase()}/` : '';
    return { value: all.filter((p) => isUserAssigned(p) && p.resourceId!.startsWith(inGroup.toLowerCase())).map(toArm) };
  };
  app.get<{ Params: { subscriptionId: string; resourceGroup: string } }>(base, config('UserAssignedIdentityList'), async (req) => {
    requireAdmin(req);
    return list(req.params.subscriptionId, req.params.resourceGroup);
  });
  app.get<{ Params: { subscriptionId: string } }>(`/subscriptions/:subscriptionId/providers/${IDENTITY_TYPE}`, config('UserAssignedIdentityList'), async (req) => {
    requireAdmin(req);
    return list(req.params.subscriptionId);
  });

  /*
   * System-assigned identities, as ARM's `{owner}/providers/Microsoft.ManagedIdentity/identities/default` extension
   * resource. Coffer hosts no compute, so the owner (an app such as Microsoft.Web/sites/NAME) is a resource id in a
   * resource group of this subscription that Coffer does not otherwise know: PUT stands for setting
   * `identity.type = SystemAssigned` on it, DELETE for removing that identity (or the owner). The principal's
   * display name is the owner's name and its `xms_mirid` the owner's id, as in Azure.
   */
  const ownerPath = '/subscriptions/:subscriptionId/resourceGroups/:resourceGroup/providers/:namespace/:type/:name';
  interface OwnerParams extends IdentityParams { namespace: string; type: string }
  const ownerIdOf = (p: OwnerParams) => `/subscriptions/${p.subscriptionId}/resourceGroups/${p.resourceGroup}/providers/${p.namespace}/${p.type}/${p.name}`;
  const toSystemAssigned = (ownerId: string, p: Principal) => ({
    id: `${ownerId}/providers/${SYSTEM_ASSIGNED_TYPE}/default`, name: 'default', type: SYSTEM_ASSIGNED_TYPE, location: 'local', tags: {},
    properties: { tenantId: p.tenantId, principalId: p.objectId, clientId: p.appId },
  });
  const checkOwner = (p: OwnerParams) => {
    checkSubscription(p.subscriptionId);
    if (p.namespace.toLowerCase() === 'microsoft.managedidentity' || !/^[A-Za-z0-9.]+$/.test(p.namespace) || !/^[A-Za-z0-9]+$/.test(p.type) || !NAME.test(p.name)) {
      throw armError(400, 'InvalidResourceId', `'${ownerIdOf(p)}' cannot own a system-assigned identity: it must name a resource as {namespace}/{type}/{name}, not a managed identity.`);
    }
  };
  const findSystemAssigned = async (p: OwnerParams) => {
    const principal = await directory.getByResourceId(ownerIdOf(p));
    return principal && !isUserAssigned(principal) ? principal : undefined;
  };
  const systemAssigned = `${ownerPath}/providers/${SYSTEM_ASSIGNED_TYPE}/default`;
  app.put<{ Params: OwnerParams }>(systemAssigned, config('SystemAssignedIdentityPut'), async (req, reply) => {
    requireAdmin(req);
    checkOwner(req.params);
    const group = await (deps.db as Kysely<Database>).selectFrom('resource_groups').select('name')
      .where('subscription_id', '=', deps.subscriptionId).where('name_key', '=', req.params.resourceGroup.toLowerCase()).executeTakeFirst();
    if (!group) throw armError(404, 'ResourceGroupNotFound', `Resource group '${req.params.resourceGroup}' could not be found.`);
    const ownerId = ownerIdOf(req.params);
    const existing = await findSystemAssigned(req.params);
    if (existing) return toSystemAssigned(ownerId, existing);
    const created = await directory.createManagedIdentity({ tenantId: deps.tenantId, resourceId: ownerId, displayName: req.params.name });
    reply.code(201);
    return toSystemAssigned(ownerId, created);
  });
  app.get<{ Params: OwnerParams }>(systemAssigned, config('SystemAssignedIdentityGet'), async (req) => {
    requireAdmin(req);
    checkOwner(req.params);
    const principal = await findSystemAssigned(req.params);
    if (!principal) throw armError(404, 'ResourceNotFound', `The resource '${ownerIdOf(req.params)}' has no system-assigned identity.`);
    return toSystemAssigned(ownerIdOf(req.params), principal);
  });
  app.delete<{ Params: OwnerParams }>(systemAssigned, config('SystemAssignedIdentityDelete'), async (req, reply) => {
    requireAdmin(req);
    checkOwner(req.params);
    const principal = await findSystemAssigned(req.params);
    if (!principal) return reply.code(204).send();
    await directory.deletePrincipal(principal.objectId);
    return {};
  });

  // Mints an IDENTITY_HEADER for one identity (by resource id, client id or principal id): what `coffer run` hands its child.
  app.post<{ Body: { identity: string; lifetimeSeconds?: number } }>('/coffer/managed-identity/bindings', {
    ...config('ManagedIdentityBind'),
    schema: {
      body: {
        type: 'object', required: ['identity'], additionalProperties: false,
        properties: { identity: { type: 'string', minLength: 1, maxLength: 512 }, lifetimeSeconds: { type: 'integer', minimum: 60, maximum: MAX_BINDING_SECONDS } },
      },
    },
  }, async (req, reply) => {
    requireAdmin(req);
    const ref = req.body.identity.toLowerCase();
    const principal = ref.startsWith('/subscriptions/') ? await directory.getByResourceId(ref)
      : (await directory.listPrincipals('ManagedIdentity')).find((p) => p.appId === ref || p.objectId === ref);
    if (!principal || principal.kind !== 'ManagedIdentity') throw armError(404, 'ResourceNotFound', `The managed identity '${req.body.identity}' was not found.`);
    const { identityHeader, expiresOn } = await deps.bindings.mint(principal, req.coffer.caller!.principal.objectId, req.body.lifetimeSeconds);
    reply.code(201);
    reply.header('cache-control', 'no-store');
    return {
      identityEndpoint: `${deps.endpoints.authorityHost}${APP_SERVICE_TOKEN_PATH}`, identityHeader, expiresOn,
      podIdentityAuthorityHost: podIdentityAuthorityHost(deps.endpoints, identityHeader),
      clientId: principal.appId, principalId: principal.objectId, resourceId: isUserAssigned(principal) ? toArm(principal).id : principal.resourceId,
    };
  });
}
