import type { FastifyInstance, FastifyReply } from 'fastify';
import crypto from 'node:crypto';
import type { Directory } from './directory.js';
import type { SigningKeys } from './signing-keys.js';
import { issueAccessToken, issuerFor } from './tokens.js';
import type { Endpoints } from '../endpoints.js';

/** An OAuth error shaped like Entra's (AADSTS codes), never echoing a submitted secret. */
function oauthError(reply: FastifyReply, status: number, error: string, code: number, description: string) {
  const traceId = crypto.randomUUID();
  return reply.code(status).send({
    error,
    error_description: `AADSTS${code}: ${description} Trace ID: ${traceId} Correlation ID: ${traceId} Timestamp: ${new Date().toISOString()}`,
    error_codes: [code],
    timestamp: new Date().toISOString(),
    trace_id: traceId,
    correlation_id: traceId,
  });
}

/**
 * The Entra-compatible token service on the non-vault host: OIDC discovery, JWKS and the v2 token endpoint
 * (client credentials with a client secret). Tokens are issued only for audiences this deployment serves.
 */
export function tokenRoutes(app: FastifyInstance, deps: { directory: Directory; keys: SigningKeys; endpoints: Endpoints; tenantId: string }) {
  const { directory, keys, endpoints, tenantId } = deps;
  const base = `${endpoints.authorityHost}/${tenantId}`;
  const config = { plane: 'token' as const, operation: 'Authentication' };
  const knownTenant = (t: string) => t.toLowerCase() === tenantId;

  const openidConfiguration = {
    issuer: issuerFor(endpoints.authorityHost, tenantId),
    authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
    token_endpoint: `${base}/oauth2/v2.0/token`,
    jwks_uri: `${base}/discovery/v2.0/keys`,
    end_session_endpoint: `${base}/oauth2/v2.0/logout`,
    response_types_supported: ['code', 'id_token', 'token id_token', 'token'],
    subject_types_supported: ['pairwise'],
    id_token_signing_alg_values_supported: ['RS256'],
    token_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic'],
    grant_types_supported: ['client_credentials'],
    tenant_region_scope: 'NA',
    cloud_instance_name: endpoints.authorityHost.replace(/^https:\/\//, ''),
  };

  app.get<{ Params: { tenant: string } }>('/:tenant/v2.0/.well-known/openid-configuration', { config }, (req, reply) =>
    knownTenant(req.params.tenant) ? openidConfiguration : oauthError(reply, 400, 'invalid_tenant', 90002, `Tenant '${req.params.tenant}' not found.`));

  app.get<{ Params: { tenant: string } }>('/:tenant/discovery/v2.0/keys', { config }, (req, reply) =>
    knownTenant(req.params.tenant) ? keys.jwks() : oauthError(reply, 400, 'invalid_tenant', 90002, `Tenant '${req.params.tenant}' not found.`));

  app.post<{ Params: { tenant: string }; Body: Record<string, string> }>('/:tenant/oauth2/v2.0/token', { config }, async (req, reply) => {
    if (!knownTenant(req.params.tenant)) return oauthError(reply, 400, 'invalid_tenant', 90002, `Tenant '${req.params.tenant}' not found.`);
    const body = req.body ?? {};
    if (body.grant_type !== 'client_credentials') {
      return oauthError(reply, 400, 'unsupported_grant_type', 70003, `The app requested an unsupported grant type '${body.grant_type ?? ''}'.`);
    }
    let clientId = body.client_id;
    let clientSecret = body.client_secret;
    const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? '');
    if (basic) [clientId, clientSecret] = Buffer.from(basic[1], 'base64').toString('utf8').split(':').map(decodeURIComponent);
    if (!clientId) return oauthError(reply, 400, 'invalid_request', 900144, "The request body must contain the following parameter: 'client_id'.");
    if (!clientSecret) return oauthError(reply, 401, 'invalid_client', 7000216, "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.");
    const scopes = (body.scope ?? '').split(' ').filter(Boolean);
    const resource = scopes.length === 1 && scopes[0].endsWith('/.default') ? scopes[0].slice(0, -'/.default'.length) : undefined;
    const audience = resource && [endpoints.managementEndpoint, `${endpoints.managementEndpoint}/`, ...endpoints.dataPlaneAudiences].includes(resource) ? resource.replace(/\/$/, '') : undefined;
    if (!audience) {
      return oauthError(reply, 400, 'invalid_scope', 1002012,
        `The provided value for scope ${body.scope ?? ''} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`);
    }
    const principal = await directory.verifyClientSecret(clientId, clientSecret);
    if (!principal) return oauthError(reply, 401, 'invalid_client', 7000215, 'Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.');
    if (!principal.enabled) return oauthError(reply, 400, 'unauthorized_client', 7000112, `Application '${clientId}' is disabled.`);
    const { token, expiresIn } = await issueAccessToken(keys, { authorityHost: endpoints.authorityHost, audience, principal });
    reply.header('cache-control', 'no-store, no-cache');
    return { token_type: 'Bearer', expires_in: expiresIn, ext_expires_in: expiresIn, access_token: token };
  });
}
