import crypto from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Directory, Principal } from './directory.js';
import { KeyVaultError } from '../http/errors.js';
import { isUserAssigned } from './managed-identity.js';

const GRAPH = 'https://graph.microsoft.com/v1.0';
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MIN_PASSWORD_LENGTH = 8;

const graphError = (status: number, code: string, message: string) => new KeyVaultError(status, code, message);
const notFound = (id: string) => graphError(404, 'Request_ResourceNotFound', `Resource '${id}' does not exist or one of its queried reference-property objects are not present.`);

const ODATA_TYPE: Record<string, string> = {
  User: '#microsoft.graph.user', Group: '#microsoft.graph.group', ServicePrincipal: '#microsoft.graph.servicePrincipal',
  ManagedIdentity: '#microsoft.graph.servicePrincipal',
};

/** A principal as Microsoft Graph shows it (the subset Coffer keeps). */
function toGraph(p: Principal) {
  const common = { '@odata.type': ODATA_TYPE[p.kind], id: p.objectId, displayName: p.displayName };
  switch (p.kind) {
    case 'User':
      return { ...common, userPrincipalName: p.userPrincipalName, accountEnabled: p.enabled, mail: null };
    case 'Group':
      return { ...common, mailNickname: p.mailNickname, securityEnabled: true, mailEnabled: false };
    default:
      return {
        ...common, appId: p.appId, accountEnabled: p.enabled, appOwnerOrganizationId: p.tenantId,
        servicePrincipalType: p.kind === 'ManagedIdentity' ? 'ManagedIdentity' : 'Application',
        servicePrincipalNames: [p.appId, ...(p.resourceId ? [p.resourceId] : [])],
        // As Graph: isExplicit=True marks a user-assigned identity, isExplicit=False a system-assigned one.
        alternativeNames: p.resourceId ? [`isExplicit=${isUserAssigned(p) ? 'True' : 'False'}`, p.resourceId] : [],
      };
  }
}

const collection = (name: string, items: Principal[]) => ({ '@odata.context': `${GRAPH}/$metadata#${name}`, value: items.map(toGraph) });

interface Body { [key: string]: unknown }

/**
 * A Microsoft Graph-shaped subset for the directory, on the management host under /v1.0 (tokens for the management
 * endpoint). Reading oneself (`/me`) is open to every principal; everything else is limited to the deployment
 * administrator — Coffer has no directory roles yet. In Coffer an application and its service principal are one
 * object, so /applications/{id} and /servicePrincipals/{id} take the same id (the object id) or the app id.
 */
export function graphRoutes(app: FastifyInstance, deps: { directory: Directory; tenantId: string; adminObjectId: string }) {
  const { directory, tenantId } = deps;
  const config = (operation: string) => ({ config: { plane: 'management' as const, operation } });
  const requireAdmin = (req: FastifyRequest) => {
    if (req.coffer.caller?.principal.objectId !== deps.adminObjectId) {
      throw graphError(403, 'Authorization_RequestDenied', 'Insufficient privileges to complete the operation.');
    }
  };
  const admin = <P>(operation: string, handler: (req: FastifyRequest<{ Params: P; Body: Body; Querystring: Record<string, string> }>) => Promise<unknown>) =>
    [config(operation), async (req: FastifyRequest<{ Params: P; Body: Body; Querystring: Record<string, string> }>, reply: FastifyReply) => {
      requireAdmin(req);
      const result = await handler(req);
      // Graph answers creations with 201 Created, and updates, deletes and $ref changes with 204 No Content.
      if (result === undefined) return reply.code(204).send();
      if (operation.endsWith('Create')) reply.code(201);
      return result;
    }] as const;

  /** A principal of the kinds given, by object id (or app id / UPN, which Graph also accepts in these paths). */
  const lookup = async (idOrName: string, kinds: Principal['kind'][]) => {
    const lower = idOrName.toLowerCase();
    const p = (GUID.test(lower) ? (await directory.getPrincipal(lower)) ?? (await directory.getByAppId(lower)) : await directory.getByUserPrincipalName(lower));
    if (!p || !kinds.includes(p.kind)) throw notFound(idOrName);
    return p;
  };
  const APPS: Principal['kind'][] = ['ServicePrincipal', 'ManagedIdentity'];
  const str = (body: Body, field: string, max = 256) => {
    const v = body?.[field];
    if (typeof v !== 'string' || v.trim() === '' || v.length > max) throw graphError(400, 'Request_BadRequest', `Property '${field}' is required and must be a non-empty string.`);
    return v;
  };
  /** The body's accountEnabled, if given (a boolean, as Graph requires). */
  const accountEnabledIn = (body: Body) => {
    if (body?.accountEnabled !== undefined && typeof body.accountEnabled !== 'boolean') throw graphError(400, 'Request_BadRequest', "Property 'accountEnabled' must be a boolean.");
    return body?.accountEnabled as boolean | undefined;
  };
  const enabledPatch = async (p: Principal, body: Body) => {
    const enabled = accountEnabledIn(body);
    if (enabled !== undefined) await directory.setEnabled(p.objectId, enabled);
  };
  /** The body's passwordProfile.password, if given, checked the same way on creation and on reset. */
  const passwordIn = (body: Body) => {
    const password = (body?.passwordProfile as { password?: unknown } | undefined)?.password;
    if (password !== undefined && (typeof password !== 'string' || password.length < MIN_PASSWORD_LENGTH || password.length > 256)) {
      throw graphError(400, 'Request_BadRequest', `The specified password does not comply with password complexity requirements (${MIN_PASSWORD_LENGTH} to 256 characters).`);
    }
    return password as string | undefined;
  };

  app.get('/v1.0/me', config('GraphMe'), async (req) => toGraph(req.coffer.caller!.principal));

  // Users
  app.post('/v1.0/users', ...admin<unknown>('GraphUserCreate', async (req) => {
    const upn = str(req.body, 'userPrincipalName');
    const displayName = str(req.body, 'displayName');
    if (!/^[^@\s]+@[^@\s]+$/.test(upn)) throw graphError(400, 'Request_BadRequest', "Invalid value specified for property 'userPrincipalName' of resource 'User'.");
    const password = passwordIn(req.body);
    if (password === undefined) throw graphError(400, 'Request_BadRequest', "Property 'passwordProfile.password' is required.");
    const enabled = accountEnabledIn(req.body);
    if (await directory.getByUserPrincipalName(upn)) {
      throw graphError(400, 'Request_BadRequest', 'Another object with the same value for property userPrincipalName already exists.');
    }
    return toGraph(await directory.createUser({ tenantId, userPrincipalName: upn, displayName, password, enabled: enabled !== false }));
  }));
  app.get('/v1.0/users', ...admin<unknown>('GraphUserList', async () => collection('users', await directory.listPrincipals('User'))));
  app.get('/v1.0/users/:id', ...admin<{ id: string }>('GraphUserGet', async (req) => toGraph(await lookup(req.params.id, ['User']))));
  app.patch('/v1.0/users/:id', ...admin<{ id: string }>('GraphUserUpdate', async (req) => {
    const user = await lookup(req.params.id, ['User']);
    const password = passwordIn(req.body);
    accountEnabledIn(req.body); // both are checked before either is applied: a refused update changes nothing
    if (password !== undefined) await directory.setPassword(user.objectId, password);
    await enabledPatch(user, req.body);
    return undefined;
  }));
  app.delete('/v1.0/users/:id', ...admin<{ id: string }>('GraphUserDelete', async (req) => {
    await directory.deletePrincipal((await lookup(req.params.id, ['User'])).objectId);
    return undefined;
  }));

  // Groups and (nested) membership
  app.post('/v1.0/groups', ...admin<unknown>('GraphGroupCreate', async (req) =>
    toGraph(await directory.createGroup({ tenantId, displayName: str(req.body, 'displayName'), mailNickname: str(req.body, 'mailNickname', 64) }))));
  app.get('/v1.0/groups', ...admin<unknown>('GraphGroupList', async () => collection('groups', await directory.listPrincipals('Group'))));
  app.get('/v1.0/groups/:id', ...admin<{ id: string }>('GraphGroupGet', async (req) => toGraph(await lookup(req.params.id, ['Group']))));
  app.delete('/v1.0/groups/:id', ...admin<{ id: string }>('GraphGroupDelete', async (req) => {
    await directory.deletePrincipal((await lookup(req.params.id, ['Group'])).objectId);
    return undefined;
  }));
  app.get('/v1.0/groups/:id/members', ...admin<{ id: string }>('GraphGroupMembers', async (req) =>
    collection('directoryObjects', await directory.directMembers((await lookup(req.params.id, ['Group'])).objectId))));
  app.post('/v1.0/groups/:id/members/$ref', ...admin<{ id: string }>('GraphGroupMemberAdd', async (req) => {
    const group = await lookup(req.params.id, ['Group']);
    const ref = str(req.body, '@odata.id', 512);
    const memberId = /\/([0-9a-f-]{36})$/i.exec(ref)?.[1];
    if (!memberId) throw graphError(400, 'Request_BadRequest', "Invalid '@odata.id': it must end with the member's object id.");
    const member = await lookup(memberId, ['User', 'Group', 'ServicePrincipal', 'ManagedIdentity']);
    if (member.objectId === group.objectId) throw graphError(400, 'Request_BadRequest', 'A group cannot be a member of itself.');
    if (!(await directory.addMember(group.objectId, member.objectId))) {
      throw graphError(400, 'Request_BadRequest', "One or more added object references already exist for the following modified properties: 'members'.");
    }
    return undefined;
  }));
  app.delete('/v1.0/groups/:id/members/:memberId/$ref', ...admin<{ id: string; memberId: string }>('GraphGroupMemberRemove', async (req) => {
    const group = await lookup(req.params.id, ['Group']);
    if (!(await directory.removeMember(group.objectId, req.params.memberId.toLowerCase()))) throw notFound(req.params.memberId);
    return undefined;
  }));
  app.post('/v1.0/directoryObjects/:id/checkMemberGroups', ...admin<{ id: string }>('GraphCheckMemberGroups', async (req) => {
    const ids = req.body?.groupIds;
    if (!Array.isArray(ids) || ids.length > 20 || !ids.every((g) => typeof g === 'string')) {
      throw graphError(400, 'Request_BadRequest', "Property 'groupIds' must be an array of at most 20 group ids.");
    }
    const groups = new Set(await directory.memberGroupsOf((await lookup(req.params.id, ['User', 'Group', 'ServicePrincipal', 'ManagedIdentity'])).objectId));
    return { value: (ids as string[]).filter((g) => groups.has(g.toLowerCase())) };
  }));
  app.post('/v1.0/directoryObjects/:id/getMemberGroups', ...admin<{ id: string }>('GraphGetMemberGroups', async (req) =>
    ({ value: await directory.memberGroupsOf((await lookup(req.params.id, ['User', 'Group', 'ServicePrincipal', 'ManagedIdentity'])).objectId) })));

  // Applications / service principals (one object in Coffer)
  app.post('/v1.0/applications', ...admin<unknown>('GraphApplicationCreate', async (req) =>
    toApplication(await directory.createServicePrincipal({ displayName: str(req.body, 'displayName'), tenantId }))));
  app.get('/v1.0/applications/:id', ...admin<{ id: string }>('GraphApplicationGet', async (req) => toApplication(await lookup(req.params.id, ['ServicePrincipal']))));
  app.get('/v1.0/servicePrincipals', ...admin<unknown>('GraphServicePrincipalList', async () =>
    collection('servicePrincipals', [...await directory.listPrincipals('ServicePrincipal'), ...await directory.listPrincipals('ManagedIdentity')])));
  app.get('/v1.0/servicePrincipals/:id', ...admin<{ id: string }>('GraphServicePrincipalGet', async (req) => toGraph(await lookup(req.params.id, APPS))));
  app.patch('/v1.0/servicePrincipals/:id', ...admin<{ id: string }>('GraphServicePrincipalUpdate', async (req) => {
    const sp = await lookup(req.params.id, ['ServicePrincipal']);
    if (sp.objectId === deps.adminObjectId) throw graphError(400, 'Request_BadRequest', 'The deployment administrator cannot be disabled.');
    await enabledPatch(sp, req.body);
    return undefined;
  }));
  for (const path of ['/v1.0/servicePrincipals/:id', '/v1.0/applications/:id']) {
    app.delete(path, ...admin<{ id: string }>('GraphServicePrincipalDelete', async (req) => {
      const sp = await lookup(req.params.id, ['ServicePrincipal']);
      if (sp.objectId === deps.adminObjectId) throw graphError(400, 'Request_BadRequest', 'The deployment administrator cannot be deleted.');
      await directory.deletePrincipal(sp.objectId);
      return undefined;
    }));
  }
  app.post('/v1.0/applications/:id/addPassword', ...admin<{ id: string }>('GraphApplicationAddPassword', async (req) => {
    const sp = await lookup(req.params.id, ['ServicePrincipal']);
    const credential = (req.body?.passwordCredential ?? {}) as { displayName?: unknown; endDateTime?: unknown };
    const end = typeof credential.endDateTime === 'string' ? Date.parse(credential.endDateTime) : Date.now() + 365 * 86_400_000;
    if (Number.isNaN(end) || end <= Date.now()) throw graphError(400, 'Request_BadRequest', "Invalid value specified for property 'endDateTime'.");
    const secret = await directory.addClientSecret(sp.objectId, { expiresAt: end });
    return {
      keyId: secret.keyId, secretText: secret.secretText, hint: secret.secretText.slice(0, 3),
      displayName: typeof credential.displayName === 'string' ? credential.displayName : null,
      endDateTime: new Date(end).toISOString(), startDateTime: new Date().toISOString(),
    };
  }));
  app.post('/v1.0/applications/:id/removePassword', ...admin<{ id: string }>('GraphApplicationRemovePassword', async (req) => {
    const sp = await lookup(req.params.id, ['ServicePrincipal']);
    if (!(await directory.removeClientSecret(sp.objectId, str(req.body, 'keyId', 64).toLowerCase()))) throw notFound(String(req.body.keyId));
    return undefined;
  }));
  app.post('/v1.0/applications/:id/federatedIdentityCredentials', ...admin<{ id: string }>('GraphFederatedCredentialCreate', async (req) => {
    const sp = await lookup(req.params.id, ['ServicePrincipal']);
    const issuer = str(req.body, 'issuer', 600);
    if (!/^https:\/\/[^\s]+$/.test(issuer)) throw graphError(400, 'Request_BadRequest', "Property 'issuer' must be an https URL.");
    const audiences = req.body.audiences ?? ['api://AzureADTokenExchange'];
    if (!Array.isArray(audiences) || audiences.length !== 1 || typeof audiences[0] !== 'string') {
      throw graphError(400, 'Request_BadRequest', "Property 'audiences' must hold exactly one audience.");
    }
    const credential = await directory.addFederatedCredential(sp.objectId, {
      name: str(req.body, 'name', 120), issuer, subject: str(req.body, 'subject', 600), audiences: audiences as string[],
    });
    return { ...credential, description: null };
  }));
  app.get('/v1.0/applications/:id/federatedIdentityCredentials', ...admin<{ id: string }>('GraphFederatedCredentialList', async (req) =>
    ({ value: await directory.listFederatedCredentials((await lookup(req.params.id, ['ServicePrincipal'])).objectId) })));
  app.delete('/v1.0/applications/:id/federatedIdentityCredentials/:credentialId', ...admin<{ id: string; credentialId: string }>('GraphFederatedCredentialDelete', async (req) => {
    const sp = await lookup(req.params.id, ['ServicePrincipal']);
    if (!(await directory.removeFederatedCredential(sp.objectId, req.params.credentialId.toLowerCase()))) throw notFound(req.params.credentialId);
    return undefined;
  }));
  // Graph sets certificates by PATCHing `keyCredentials` (the full list); Coffer adds the ones given.
  app.patch('/v1.0/applications/:id', ...admin<{ id: string }>('GraphApplicationUpdate', async (req) => {
    const sp = await lookup(req.params.id, ['ServicePrincipal']);
    const keyCredentials = req.body?.keyCredentials;
    if (!Array.isArray(keyCredentials)) throw graphError(400, 'Request_BadRequest', "Property 'keyCredentials' must be an array.");
    for (const kc of keyCredentials as { key?: unknown; type?: unknown }[]) {
      let cert: crypto.X509Certificate;
      try {
        if (typeof kc.key !== 'string' || kc.type !== 'AsymmetricX509Cert') throw new Error();
        cert = new crypto.X509Certificate(Buffer.from(kc.key, 'base64'));
      } catch {
        throw graphError(400, 'Request_BadRequest', "Each keyCredential needs type 'AsymmetricX509Cert' and a base64 DER certificate as 'key'.");
      }
      if (cert.publicKey.asymmetricKeyType !== 'rsa') throw graphError(400, 'Request_BadRequest', 'Only RSA certificates are supported.');
      await directory.addClientCertificate(sp.objectId, Buffer.from(cert.raw), Date.parse(cert.validTo));
    }
    return undefined;
  }));

  async function toApplication(p: Principal) {
    const secrets = await directory.listClientSecrets(p.objectId);
    const certificates = await directory.listClientCertificates(p.objectId);
    return {
      '@odata.type': '#microsoft.graph.application', id: p.objectId, appId: p.appId, displayName: p.displayName,
      passwordCredentials: secrets.map((s) => ({ keyId: s.keyId, hint: s.hint, endDateTime: s.expiresAt ? new Date(s.expiresAt).toISOString() : null, secretText: null })),
      keyCredentials: certificates.map((c) => ({ keyId: c.keyId, customKeyIdentifier: Buffer.from(c.thumbprintSha1, 'base64url').toString('hex').toUpperCase(), type: 'AsymmetricX509Cert', usage: 'Verify' })),
    };
  }
}
