import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import crypto from 'node:crypto';
import { decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { createRemoteKeySets } from './remote-jwks.js';
import type { Directory, Principal } from './directory.js';
import type { SigningKeys } from './signing-keys.js';
import { issueAccessToken, issueIdToken, issueRefreshToken, issuerFor, verifyRefreshToken } from './tokens.js';
import type { Endpoints } from '../endpoints.js';

/** An OAuth error shaped like Entra's (AADSTS codes), never echoing a submitted secret. */
class OAuthError extends Error {
  constructor(readonly status: number, readonly error: string, readonly code: number, description: string) {
    super(description);
  }
}

function sendOAuthError(reply: FastifyReply, err: OAuthError) {
  const traceId = crypto.randomUUID();
  return reply.code(err.status).send({
    error: err.error,
    error_description: `AADSTS${err.code}: ${err.message} Trace ID: ${traceId} Correlation ID: ${traceId} Timestamp: ${new Date().toISOString()}`,
    error_codes: [err.code],
    timestamp: new Date().toISOString(),
    trace_id: traceId,
    correlation_id: traceId,
  });
}

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** OIDC scopes MSAL adds to user sign-ins; they name no resource. */
const OIDC_SCOPES = new Set(['openid', 'profile', 'offline_access', 'email']);
/** Clock skew allowed on client assertions. */
const ASSERTION_SKEW_SECONDS = 300;

interface Authenticated {
  principal: Principal;
  /** The application the token is issued to (for users: the client they signed in through). */
  clientAppId: string;
  /** User sign-ins get a refresh token and an id token. */
  interactive: boolean;
}

/** The audience a resource (v1 `resource`, or a v2 scope without `/.default`) names, if this deployment serves it. */
export const servedAudience = (endpoints: Endpoints, resource: string | undefined) =>
  resource && [endpoints.managementEndpoint, `${endpoints.managementEndpoint}/`, ...endpoints.dataPlaneAudiences].includes(resource)
    ? resource.replace(/\/$/, '') : undefined;

/**
 * The Entra-compatible token service on the non-vault host: OIDC discovery, JWKS, the v2 and v1 token endpoints
 * (client credentials with a secret or a certificate assertion, password, refresh token). Tokens are issued only for audiences this deployment serves.
 */
export function tokenRoutes(app: FastifyInstance, deps: {
  directory: Directory; keys: SigningKeys; endpoints: Endpoints; tenantId: string;
}) {
  const { directory, keys, endpoints, tenantId } = deps;
  const base = `${endpoints.authorityHost}/${tenantId}`;
  const issuer = issuerFor(endpoints.authorityHost, tenantId);
  const config = { plane: 'token' as const, operation: 'Authentication' };
  const knownTenant = (t: string) => t.toLowerCase() === tenantId;
  const tenantNotFound = (t: string) => new OAuthError(400, 'invalid_tenant', 90002, `Tenant '${t}' not found.`);
  const grantTypes = ['client_credentials', 'password', 'refresh_token'];

  const openidConfiguration = {
    issuer,
    authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
    token_endpoint: `${base}/oauth2/v2.0/token`,
    jwks_uri: `${base}/discovery/v2.0/keys`,
    end_session_endpoint: `${base}/oauth2/v2.0/logout`,
    response_types_supported: ['code', 'id_token', 'token id_token', 'token'],
    subject_types_supported: ['pairwise'],
    id_token_signing_alg_values_supported: ['RS256'],
    token_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic', 'private_key_jwt'],
    grant_types_supported: grantTypes,
    tenant_region_scope: 'NA',
    cloud_instance_name: endpoints.authorityHost.replace(/^https:\/\//, ''),
  };

  const audienceOf = (resource: string | undefined) => servedAudience(endpoints, resource);

  const v2Audience = (scope: string | undefined) => {
    const resources = (scope ?? '').split(' ').filter((s) => s && !OIDC_SCOPES.has(s));
    const resource = resources.length === 1 && resources[0].endsWith('/.default') ? resources[0].slice(0, -'/.default'.length) : undefined;
    const audience = audienceOf(resource);
    if (!audience) {
      throw new OAuthError(400, 'invalid_scope', 1002012,
        `The provided value for scope ${scope ?? ''} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`);
    }
    return audience;
  };

  /** The client of a client_credentials request: a secret (body or Basic) or a certificate-signed assertion. */
  async function clientCredentials(req: FastifyRequest, body: Record<string, string>): Promise<Authenticated> {
    let clientId = body.client_id;
    let clientSecret = body.client_secret;
    const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? '');
    if (basic) [clientId, clientSecret] = Buffer.from(basic[1], 'base64').toString('utf8').split(':').map(decodeURIComponent);
    if (body.client_assertion_type === JWT_BEARER && body.client_assertion) {
      return { principal: await verifyClientAssertion(body.client_assertion, clientId), clientAppId: clientId, interactive: false };
    }
    if (!clientId) throw new OAuthError(400, 'invalid_request', 900144, "The request body must contain the following parameter: 'client_id'.");
    if (!clientSecret) throw new OAuthError(401, 'invalid_client', 7000216, "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.");
    const principal = await directory.verifyClientSecret(clientId, clientSecret);
    if (!principal) throw new OAuthError(401, 'invalid_client', 7000215, 'Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.');
    return { principal, clientAppId: clientId, interactive: false };
  }

  /**
   * A client assertion (RFC 7523) signed by one of the app's registered certificates, named by its `x5t` or
   * `x5t#S256` header; `iss` and `sub` are the app id, `aud` this tenant's token endpoint.
   */
  async function verifyClientAssertion(assertion: string, clientId: string | undefined): Promise<Principal> {
    const invalid = (why: string) => new OAuthError(401, 'invalid_client', 700027, `Client assertion failed signature validation or is invalid: ${why}.`);
    let header: ReturnType<typeof decodeProtectedHeader>;
    let claims: ReturnType<typeof decodeJwt>;
    try {
      header = decodeProtectedHeader(assertion);
      claims = decodeJwt(assertion);
    } catch {
      throw invalid('the assertion is not a JWT');
    }
    const appId = typeof claims.iss === 'string' ? claims.iss : '';
    // An assertion issued by someone else than the app itself is a federated token (workload identity federation).
    if (clientId && appId !== clientId) return verifyFederatedAssertion(assertion, clientId, appId, typeof claims.sub === 'string' ? claims.sub : '');
    if (!appId || claims.sub !== appId) throw invalid('iss and sub must be the client id');
    const found = await directory.findClientCertificate(appId, {
      sha1: typeof header.x5t === 'string' ? header.x5t : undefined,
      sha256: typeof header['x5t#S256'] === 'string' ? header['x5t#S256'] as string : undefined,
    });
    if (!found) throw new OAuthError(401, 'invalid_client', 700027, 'Client assertion contains an invalid signature. The key was not found.');
    const publicKey = new crypto.X509Certificate(found.certificate.certificateDer).publicKey;
    try {
      await jwtVerify(assertion, publicKey, {
        algorithms: ['RS256', 'PS256'],
        audience: [`${base}/oauth2/v2.0/token`, `${base}/oauth2/token`, `${endpoints.authorityHost}/${tenantId}/v2.0`],
        clockTolerance: ASSERTION_SKEW_SECONDS,
        requiredClaims: ['exp', 'aud'],
      });
    } catch {
      throw invalid('signature, audience or lifetime');
    }
    return found.principal;
  }

  /** Remote JWKS of trusted external issuers, found through their OIDC discovery (https only). */
  const remoteKeySets = createRemoteKeySets({ timeoutMs: 10_000 });
  const keySetOf = (issuerUrl: string) => remoteKeySets.fromIssuer(issuerUrl, (url) => url.protocol === 'https:');

  /**
   * A token from an external issuer that the app trusts for exactly this subject (a federated identity credential):
   * signed by a key of that issuer's JWKS, for one of the credential's audiences, unexpired.
   */
  async function verifyFederatedAssertion(assertion: string, clientId: string, externalIssuer: string, subject: string): Promise<Principal> {
    const found = await directory.findFederatedCredential(clientId, externalIssuer, subject);
    if (!found) {
      throw new OAuthError(400, 'invalid_request', 70021, `No matching federated identity record found for presented assertion. Assertion Issuer: '${externalIssuer}'. Assertion Subject: '${subject}'.`);
    }
    try {
      await jwtVerify(assertion, await keySetOf(externalIssuer), {
        algorithms: ['RS256', 'PS256', 'ES256'], issuer: externalIssuer, subject, audience: found.credential.audiences,
        clockTolerance: ASSERTION_SKEW_SECONDS, requiredClaims: ['exp'],
      });
    } catch {
      throw new OAuthError(400, 'invalid_client', 700024, 'Client assertion failed validation: signature, audience or lifetime (checked against the issuer\'s published keys).');
    }
    return found.principal;
  }

  async function passwordGrant(body: Record<string, string>): Promise<Authenticated> {
    if (!body.client_id) throw new OAuthError(400, 'invalid_request', 900144, "The request body must contain the following parameter: 'client_id'.");
    if (!body.username || !body.password) throw new OAuthError(400, 'invalid_request', 900144, "The request body must contain the following parameters: 'username' and 'password'.");
    // A locked-out user is refused before the password is even checked, so guessing goes no further (Entra's smart lockout).
    const user = await directory.getByUserPrincipalName(body.username);
    if (user?.kind === 'User' && await directory.signInLockedUntil(user.objectId)) {
      throw new OAuthError(400, 'invalid_grant', 50053, 'The account is locked, you\'ve tried to sign in too many times with an incorrect user ID or password.');
    }
    const principal = await directory.verifyPassword(body.username, body.password);
    if (!principal) {
      if (user?.kind === 'User') await directory.recordSignInFailure(user.objectId);
      throw new OAuthError(400, 'invalid_grant', 50126, 'Error validating credentials due to invalid username or password.');
    }
    await directory.clearSignInFailures(principal.objectId);
    return { principal, clientAppId: body.client_id, interactive: true };
  }

  async function refreshGrant(body: Record<string, string>): Promise<Authenticated> {
    const expired = new OAuthError(400, 'invalid_grant', 700082, 'The refresh token has expired or is invalid, or its credentials were revoked.');
    const claims = body.refresh_token ? await verifyRefreshToken(keys, body.refresh_token, { issuer }) : undefined;
    if (!claims || (body.client_id && body.client_id !== claims.client_id)) throw expired;
    const principal = await directory.getPrincipal(claims.oid);
    if (!principal || claims.xms_cgen !== principal.credentialGeneration) throw expired;
    return { principal, clientAppId: claims.client_id, interactive: true };
  }

  async function authenticate(req: FastifyRequest, body: Record<string, string>): Promise<Authenticated> {
    const grant = body.grant_type;
    const result = grant === 'client_credentials' ? await clientCredentials(req, body)
      : grant === 'password' ? await passwordGrant(body)
        : grant === 'refresh_token' ? await refreshGrant(body)
          : undefined;
    if (!result) throw new OAuthError(400, 'unsupported_grant_type', 70003, `The app requested an unsupported grant type '${grant ?? ''}'.`);
    if (!result.principal.enabled) {
      throw result.principal.kind === 'User'
        ? new OAuthError(400, 'invalid_grant', 50057, 'The user account is disabled.')
        : new OAuthError(400, 'unauthorized_client', 7000112, `Application '${result.clientAppId}' is disabled.`);
    }
    return result;
  }

  /** The interactive extras MSAL expects with a user's tokens: refresh token, id token, client info. */
  async function userExtras(auth: Authenticated) {
    if (!auth.interactive) return {};
    const p = auth.principal;
    return {
      refresh_token: await issueRefreshToken(keys, { authorityHost: endpoints.authorityHost, principal: p, clientId: auth.clientAppId }),
      id_token: await issueIdToken(keys, { authorityHost: endpoints.authorityHost, principal: p, clientId: auth.clientAppId }),
      client_info: Buffer.from(JSON.stringify({ uid: p.objectId, utid: p.tenantId })).toString('base64url'),
    };
  }

  const issue = (auth: Authenticated, audience: string) =>
    issueAccessToken(keys, { authorityHost: endpoints.authorityHost, audience, principal: auth.principal, clientAppId: auth.clientAppId });

  type TokenRequest = FastifyRequest<{ Params: { tenant: string }; Body: Record<string, string> }>;
  const handle = (respond: (req: TokenRequest, body: Record<string, string>) => Promise<object>) =>
    async (req: TokenRequest, reply: FastifyReply) => {
      try {
        if (!knownTenant(req.params.tenant)) throw tenantNotFound(req.params.tenant);
        const result = await respond(req, req.body ?? {});
        reply.header('cache-control', 'no-store, no-cache');
        return result;
      } catch (err) {
        if (err instanceof OAuthError) return sendOAuthError(reply, err);
        throw err;
      }
    };

  app.get<{ Params: { tenant: string } }>('/:tenant/v2.0/.well-known/openid-configuration', { config }, (req, reply) =>
    knownTenant(req.params.tenant) ? openidConfiguration : sendOAuthError(reply, tenantNotFound(req.params.tenant)));

  app.get<{ Params: { tenant: string } }>('/:tenant/discovery/v2.0/keys', { config }, (req, reply) =>
    knownTenant(req.params.tenant) ? keys.jwks() : sendOAuthError(reply, tenantNotFound(req.params.tenant)));

  app.post('/:tenant/oauth2/v2.0/token', { config }, handle(async (req, body) => {
    const audience = body.grant_type === 'refresh_token' && !body.scope ? undefined : v2Audience(body.scope);
    const auth = await authenticate(req, body);
    const { token, expiresIn } = await issue(auth, audience ?? endpoints.managementEndpoint);
    return {
      token_type: 'Bearer', expires_in: expiresIn, ext_expires_in: expiresIn, access_token: token,
      ...(auth.interactive ? { scope: `${audience ?? endpoints.managementEndpoint}/.default` } : {}),
      ...(await userExtras(auth)),
    };
  }));

  // The v1 endpoint older clients (and az's ADAL era) use: `resource=` instead of `scope=`, times as strings.
  app.post('/:tenant/oauth2/token', { config }, handle(async (req, body) => {
    const audience = audienceOf(body.resource);
    if (!audience) throw new OAuthError(400, 'invalid_resource', 500011, `The resource principal named ${body.resource ?? ''} was not found in the tenant.`);
    const auth = await authenticate(req, body);
    const { token, expiresIn, expiresOn } = await issue(auth, audience);
    return {
      token_type: 'Bearer', expires_in: String(expiresIn), ext_expires_in: String(expiresIn), expires_on: String(expiresOn),
      not_before: String(expiresOn - expiresIn), resource: body.resource, access_token: token, ...(await userExtras(auth)),
    };
  }));
}
