import crypto from 'node:crypto';
import { SignJWT, jwtVerify, decodeProtectedHeader, errors as joseErrors } from 'jose';
import type { SigningKeys } from './signing-keys.js';
import type { Principal } from './directory.js';

export const TOKEN_LIFETIME_SECONDS = 3600;

export interface TokenClaims {
  aud: string;
  iss: string;
  tid: string;
  oid: string;
  sub: string;
  appid?: string;
  azp?: string;
  idtyp: string;
  upn?: string;
  xms_mirid?: string;
  /** The principal's credential generation when the token was issued (see Directory). */
  xms_cgen: number;
  exp: number;
  nbf: number;
  iat: number;
}

export const issuerFor = (authorityHost: string, tenantId: string) => `${authorityHost}/${tenantId}/v2.0`;

/**
 * An access token for a principal. `clientAppId` is the application a user signed in through (users have no app id
 * of their own); it becomes `appid`/`azp`.
 */
export async function issueAccessToken(keys: SigningKeys, opts: { authorityHost: string; audience: string; principal: Principal; clientAppId?: string }) {
  const key = await keys.current();
  const now = Math.floor(Date.now() / 1000);
  const p = opts.principal;
  const appId = opts.clientAppId ?? p.appId;
  const token = await new SignJWT({
    tid: p.tenantId,
    oid: p.objectId,
    idtyp: p.kind === 'User' ? 'user' : 'app',
    ver: '2.0',
    uti: crypto.randomBytes(16).toString('base64url'),
    xms_cgen: p.credentialGeneration,
    ...(appId ? { appid: appId, azp: appId } : {}),
    ...(p.userPrincipalName ? { upn: p.userPrincipalName, unique_name: p.userPrincipalName, name: p.displayName } : {}),
    ...(p.resourceId ? { xms_mirid: p.resourceId } : {}),
  })
    .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: key.kid })
    .setIssuer(issuerFor(opts.authorityHost, p.tenantId))
    .setSubject(p.objectId)
    .setAudience(opts.audience)
    .setIssuedAt(now)
    .setNotBefore(now - 300)
    .setExpirationTime(now + TOKEN_LIFETIME_SECONDS)
    .sign(key.privateKey);
  return { token, expiresIn: TOKEN_LIFETIME_SECONDS, expiresOn: now + TOKEN_LIFETIME_SECONDS };
}

const REFRESH_AUDIENCE = 'urn:coffer:refresh-token';
const REFRESH_LIFETIME_SECONDS = 24 * 3600;

/**
 * Refresh tokens are JWTs signed with the token signing key and an audience no resource accepts, so they are
 * stateless yet bound to the principal's credential generation: a password reset or disablement voids them.
 */
export async function issueRefreshToken(keys: SigningKeys, opts: { authorityHost: string; principal: Principal; clientId: string }) {
  const key = await keys.current();
  const p = opts.principal;
  return new SignJWT({ tid: p.tenantId, oid: p.objectId, xms_cgen: p.credentialGeneration, client_id: opts.clientId })
    .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: key.kid })
    .setIssuer(issuerFor(opts.authorityHost, p.tenantId))
    .setSubject(p.objectId)
    .setAudience(REFRESH_AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(`${REFRESH_LIFETIME_SECONDS}s`)
    .sign(key.privateKey);
}

/** The claims of a refresh token this service issued, or undefined for anything else. */
export async function verifyRefreshToken(keys: SigningKeys, token: string, opts: { issuer: string }) {
  try {
    const { kid, alg } = decodeProtectedHeader(token);
    const key = kid && alg === 'RS256' ? await keys.publicKey(kid) : undefined;
    if (!key) return undefined;
    const { payload } = await jwtVerify(token, key, { algorithms: ['RS256'], issuer: opts.issuer, audience: REFRESH_AUDIENCE });
    return payload as { oid: string; xms_cgen: number; client_id: string };
  } catch {
    return undefined;
  }
}

/** The OIDC id token of a user sign-in (MSAL builds its account from it). */
export async function issueIdToken(keys: SigningKeys, opts: { authorityHost: string; principal: Principal; clientId: string }) {
  const key = await keys.current();
  const p = opts.principal;
  return new SignJWT({
    tid: p.tenantId, oid: p.objectId, name: p.displayName, preferred_username: p.userPrincipalName ?? p.displayName, ver: '2.0',
  })
    .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: key.kid })
    .setIssuer(issuerFor(opts.authorityHost, p.tenantId))
    .setSubject(p.objectId)
    .setAudience(opts.clientId)
    .setIssuedAt()
    .setNotBefore(Math.floor(Date.now() / 1000) - 300)
    .setExpirationTime(`${TOKEN_LIFETIME_SECONDS}s`)
    .sign(key.privateKey);
}

export class TokenRejected extends Error {
  constructor(readonly akvCode: string, message: string) {
    super(message);
  }
}

/**
 * Verifies a bearer token: RS256 only (no `none`, no HMAC confusion), a known signing key, issuer, audience,
 * exp/nbf (5 minutes skew) and tenant. Verified claims are cached until the token expires (at most 10,000 tokens),
 * keyed by the token's SHA-256 so that the cache holds no usable bearer token.
 */
export function createTokenVerifier(deps: { keys: SigningKeys; issuer: string; audiences: string[]; tenantId: string }) {
  const cache = new Map<string, TokenClaims>();
  const MAX_CACHE = 10_000;
  return async function verify(token: string): Promise<TokenClaims> {
    const cacheKey = crypto.createHash('sha256').update(token).digest('base64');
    const cached = cache.get(cacheKey);
    if (cached && cached.exp * 1000 > Date.now()) return cached;
    let kid: string | undefined;
    try {
      const header = decodeProtectedHeader(token);
      if (header.alg !== 'RS256') throw new TokenRejected('AKV10031', `Token signing algorithm '${String(header.alg)}' is not supported.`);
      kid = header.kid;
    } catch (err) {
      if (err instanceof TokenRejected) throw err;
      throw new TokenRejected('AKV10000', 'Request is missing a Bearer or PoP token, or the token is malformed.');
    }
    const key = kid ? await deps.keys.publicKey(kid) : undefined;
    if (!key) throw new TokenRejected('AKV10031', 'Token signature validation failed: unknown signing key.');
    let payload: TokenClaims;
    try {
      ({ payload } = await jwtVerify(token, key, {
        algorithms: ['RS256'],
        issuer: deps.issuer,
        audience: deps.audiences,
        clockTolerance: 300,
        requiredClaims: ['exp', 'tid', 'oid', 'xms_cgen'],
      }) as unknown as { payload: TokenClaims });
    } catch (err) {
      throw describeJoseError(err, deps);
    }
    if (payload.tid !== deps.tenantId) throw new TokenRejected('AKV10032', `Invalid tenant. Expected ${deps.tenantId}.`);
    if (cache.size >= MAX_CACHE) cache.clear();
    cache.set(cacheKey, payload);
    return payload;
  };
}

/** A jose verification failure as Key Vault words it (AKV codes), never echoing the token. */
export function describeJoseError(err: unknown, deps: { issuer: string; audiences: string[] }): TokenRejected {
  if (err instanceof joseErrors.JWTExpired) {
    return new TokenRejected('AKV10032', 'Token is expired.');
  }
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.claim === 'iss') return new TokenRejected('AKV10032', `Invalid issuer. Expected ${deps.issuer}.`);
    if (err.claim === 'aud') return new TokenRejected('AKV10022', `Invalid audience. Expected ${deps.audiences[0]}.`);
    if (err.claim === 'nbf') return new TokenRejected('AKV10032', 'Token is not yet valid.');
    return new TokenRejected('AKV10032', `Token claim '${err.claim}' is invalid.`);
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) {
    return new TokenRejected('AKV10031', 'Token signature validation failed.');
  }
  if (err instanceof joseErrors.JWKSNoMatchingKey || err instanceof joseErrors.JWKSMultipleMatchingKeys) {
    return new TokenRejected('AKV10031', 'Token signature validation failed: no signing key of the issuer matches.');
  }
  return new TokenRejected('AKV10000', 'Request is missing a Bearer or PoP token, or the token is malformed.');
}
