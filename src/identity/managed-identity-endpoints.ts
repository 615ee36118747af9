import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Principal } from './directory.js';
import type { SigningKeys } from './signing-keys.js';
import type { ManagedIdentityBindings } from './managed-identity.js';
import { issueAccessToken } from './tokens.js';
import { servedAudience } from './token-routes.js';
import type { Endpoints } from '../endpoints.js';

/** The App Service shaped endpoint (IDENTITY_ENDPOINT, secret in the X-IDENTITY-HEADER header). */
export const APP_SERVICE_TOKEN_PATH = '/coffer/managed-identity/token';
/**
 * The IMDS shaped endpoint is reached through AZURE_POD_IDENTITY_AUTHORITY_HOST, to which the SDKs append
 * IMDS_TOKEN_PATH. IMDS requests carry no secret of their own, so the binding secret travels in that authority
 * host's path: `{authorityHost}/coffer/imds/{binding}` (MSAL lower-cases the URL, hence hex bindings).
 */
export const IMDS_BINDING_PREFIX = '/coffer/imds';
const IMDS_TOKEN_PATH = '/metadata/identity/oauth2/token';
const IMDS_MIN_API_VERSION = '2018-02-01';
const REDACTED = 'REDACTED';

type Query = Record<string, string | undefined>;

/** A parameter given more than once reaches the handler as an array, which no check below expects: it is refused. */
const repeatedParameter = (q: Query) => Object.keys(q).find((name) => Array.isArray(q[name]));
type Outcome = { status: number; error: string; message: string } | { principal: Principal; audience: string };

/**
 * What both shapes decide the same way: the bound identity must exist, be enabled and be the one the query names
 * (a client_id / object_id / resource id naming any other identity is refused), and the resource must be ours.
 */
async function decide(deps: { bindings: ManagedIdentityBindings; endpoints: Endpoints }, binding: string | undefined, q: Query): Promise<Outcome> {
  const principal = binding ? await deps.bindings.resolve(binding) : undefined;
  if (!principal) return { status: 401, error: 'invalid_client', message: 'The identity binding is missing, unknown or expired: this process was given no managed identity.' };
  const objectId = q.object_id ?? q.principal_id;
  const resourceId = q.mi_res_id ?? q.msi_res_id;
  const matches = q.client_id ? q.client_id.toLowerCase() === principal.appId
    : objectId ? objectId.toLowerCase() === principal.objectId
      : resourceId ? resourceId.toLowerCase() === principal.resourceId : true;
  // IMDS's own words for an identity the VM does not have.
  if (!matches) return { status: 400, error: 'invalid_request', message: 'Identity not found: the requested identity is not assigned to this process.' };
  if (!principal.enabled) return { status: 400, error: 'invalid_request', message: 'The managed identity is disabled.' };
  const audience = servedAudience(deps.endpoints, q.resource?.replace(/\/\.default$/, ''));
  if (!audience) return { status: 400, error: 'invalid_resource', message: `The resource '${q.resource ?? ''}' is not served by this Coffer.` };
  return { principal, audience };
}

/**
 * The managed identity token endpoints in the two shapes the SDKs use. A binding secret (minted by the administrator
 * for exactly one identity, see ManagedIdentityBindings) is the only way in, so a process can act as the identity it
 * was given and as nothing else.
 */
export function managedIdentityEndpoints(app: FastifyInstance, deps: { bindings: ManagedIdentityBindings; keys: SigningKeys; endpoints: Endpoints }) {
  const config = { plane: 'token' as const, operation: 'ManagedIdentityToken' };
  const issue = async (principal: Principal, audience: string, reply: FastifyReply) => {
    const issued = await issueAccessToken(deps.keys, { authorityHost: deps.endpoints.authorityHost, audience, principal });
    reply.header('cache-control', 'no-store, no-cache');
    return { ...issued, clientId: principal.appId };
  };

  app.get<{ Querystring: Query }>(APP_SERVICE_TOKEN_PATH, { config }, async (req, reply) => {
    const fail = (status: number, message: string) => reply.code(status).send({ statusCode: status, message, correlationId: req.coffer.requestId });
    const q = req.query ?? {};
    const repeated = repeatedParameter(q);
    if (repeated) return fail(400, `The query parameter '${repeated}' is given more than once.`);
    if (q['api-version'] !== '2019-08-01') return fail(400, `The api-version '${q['api-version'] ?? ''}' is not supported; use 2019-08-01.`);
    const header = req.headers['x-identity-header'];
    const outcome = await decide(deps, typeof header === 'string' ? header : undefined, q);
    if ('error' in outcome) return fail(outcome.status, outcome.message);
    const { token, expiresIn, expiresOn, clientId } = await issue(outcome.principal, outcome.audience, reply);
    return { access_token: token, expires_on: String(expiresOn), expires_in: String(expiresIn), resource: q.resource, token_type: 'Bearer', client_id: clientId };
  });

  const imds = async (req: FastifyRequest<{ Querystring: Query }>, reply: FastifyReply, binding: string | undefined) => {
    const fail = (status: number, error: string, description: string) => reply.code(status).send({ error, error_description: description });
    // As IMDS: a request without `Metadata: true` is refused before anything else (the SDKs' probe relies on it).
    if (req.headers.metadata !== 'true') return fail(400, 'invalid_request', 'Required metadata header not specified');
    const q = req.query ?? {};
    const repeated = repeatedParameter(q);
    if (repeated) return fail(400, 'invalid_request', `Bad request. The query parameter '${repeated}' is given more than once.`);
    const version = q['api-version'];
    if (!version || !/^\d{4}-\d{2}-\d{2}$/.test(version) || version < IMDS_MIN_API_VERSION) {
      return fail(400, 'invalid_request', `Bad request. api-version '${version ?? ''}' is missing or not supported; use ${IMDS_MIN_API_VERSION} or later.`);
    }
    if (!q.resource) return fail(400, 'invalid_request', 'Required audience parameter not specified');
    const outcome = await decide(deps, binding, q);
    if ('error' in outcome) return fail(outcome.status, outcome.error, outcome.message);
    const { token, expiresIn, expiresOn, clientId } = await issue(outcome.principal, outcome.audience, reply);
    return {
      access_token: token, client_id: clientId, expires_in: String(expiresIn), expires_on: String(expiresOn), ext_expires_in: String(expiresIn),
      not_before: String(expiresOn - expiresIn), resource: q.resource, token_type: 'Bearer',
    };
  };
  app.get<{ Params: { binding: string }; Querystring: Query }>(`${IMDS_BINDING_PREFIX}/:binding${IMDS_TOKEN_PATH}`, { config }, async (req, reply) => {
    // The binding is a secret: the audit record (written from req.url when the reply is sent) keeps only a placeholder.
    req.raw.url = req.raw.url!.replace(/^\/coffer\/imds\/[^/?]*/i, `${IMDS_BINDING_PREFIX}/${REDACTED}`);
    return imds(req, reply, req.params.binding);
  });
  // The bare IMDS path answers like IMDS too, but with no binding it never issues a token.
  app.get<{ Querystring: Query }>(IMDS_TOKEN_PATH, { config }, async (req, reply) => imds(req, reply, undefined));
}

/** The AZURE_POD_IDENTITY_AUTHORITY_HOST that routes IMDS requests to a binding. */
export const podIdentityAuthorityHost = (endpoints: Endpoints, binding: string) => `${endpoints.authorityHost}${IMDS_BINDING_PREFIX}/${binding}`;
