import crypto from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import { decodeJwt, decodeProtectedHeader, jwtVerify, errors as joseErrors } from 'jose';
import { createRemoteKeySets } from './remote-jwks.js';
import type { Database } from '../storage/schema.js';
import type { GenerationCache } from '../storage/generation.js';
import type { Directory, Principal } from './directory.js';
import { TokenRejected, describeJoseError, type TokenClaims } from './tokens.js';
import { KeyVaultError } from '../http/errors.js';
import { requireDeploymentAdmin } from '../control-plane/arm.js';

export interface TrustedIssuer { id: string; issuer: string; jwksUri: string; audience: string; createdAt: string }
export interface TrustedSubject { externalId: string; principalId: string }

/** The tables of migration 0005_identity_trust that this module owns. */
interface TrustTables {
  trusted_issuers: { id: string; issuer: string; jwks_uri: string; audience: string; created_at: number };
  trusted_issuer_subjects: { issuer_id: string; external_id: string; principal_id: string; created_at: number };
}

/** Asymmetric algorithms only: an HMAC "signed" with a public key, or `none`, never verifies. */
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512'];
const CLOCK_SKEW_SECONDS = 300;
const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);
/** jose's verdicts on the token itself (as opposed to failures to obtain the issuer's keys). */
const VERDICTS = [
  joseErrors.JWTExpired, joseErrors.JWTClaimValidationFailed, joseErrors.JWSSignatureVerificationFailed, joseErrors.JWKSNoMatchingKey,
  joseErrors.JWKSMultipleMatchingKeys, joseErrors.JWSInvalid, joseErrors.JWTInvalid, joseErrors.JOSEAlgNotAllowed,
];

/** https, or plain http to a loopback host only (a development issuer on the same machine, as RFC 8252 allows). */
export function isAcceptableKeyUrl(value: string) {
  try {
    const url = new URL(value);
    return url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK.has(url.hostname));
  } catch {
    return false;
  }
}

/**
 * Trusted external issuers: an administrator names an OIDC issuer (real Entra ID, Keycloak, another Coffer…) by its
 * `iss`, its JWKS URL and the audience its tokens must carry for Coffer, and maps that issuer's subjects (`oid`, else
 * `sub`) to principals of this directory. Data-plane tokens of such an issuer are then accepted as those principals,
 * with the same authorization as the principal's own tokens. The issuers' key sets are cached (jose refreshes them on
 * an unknown `kid`); with a `cache`, so are the issuer and subject look-ups, under the database's cache generation that
 * their tables bump: removing an issuer or a mapping takes effect at the next request, on every node.
 */
export function createTrustedIssuers(deps: { db: Kysely<Database>; directory: Pick<Directory, 'getPrincipal'>; cache?: GenerationCache }) {
  const db = deps.db as unknown as Kysely<TrustTables>;
  const memo = <V>(load: (key: string) => Promise<V>, maxEntries: number) => (deps.cache ? deps.cache.memo(load, maxEntries) : load);
  const issuerNamed = memo((iss) => db.selectFrom('trusted_issuers').selectAll().where('issuer', '=', iss).executeTakeFirst(), 1_000);
  /** The principal id a subject of an issuer maps to; keyed by JSON `[issuerId, ...candidate ids]`. */
  const mappedSubject = memo(async (key) => {
    const [issuerId, ...candidates] = JSON.parse(key) as string[];
    return (await db.selectFrom('trusted_issuer_subjects').select('principal_id')
      .where('issuer_id', '=', issuerId).where('external_id', 'in', candidates).executeTakeFirst())?.principal_id;
  }, 10_000);
  const keySets = createRemoteKeySets({ timeoutMs: 5000, cooldownMs: 30_000 });
  const toIssuer = (row: TrustTables['trusted_issuers']): TrustedIssuer => ({
    id: row.id, issuer: row.issuer, jwksUri: row.jwks_uri, audience: row.audience, createdAt: new Date(Number(row.created_at)).toISOString(),
  });

  return {
    async add(input: { issuer: string; jwksUri: string; audience: string }) {
      const row = { id: crypto.randomUUID(), issuer: input.issuer, jwks_uri: input.jwksUri, audience: input.audience, created_at: Date.now() };
      const inserted = await db.insertInto('trusted_issuers').values(row).onConflict((oc) => oc.column('issuer').doNothing()).executeTakeFirst();
      return Number(inserted.numInsertedOrUpdatedRows ?? 0) > 0 ? toIssuer(row) : undefined;
    },
    async list() {
      return (await db.selectFrom('trusted_issuers').selectAll().orderBy('created_at').execute()).map(toIssuer);
    },
    async get(id: string) {
      const row = await db.selectFrom('trusted_issuers').selectAll().where('id', '=', id).executeTakeFirst();
      return row && toIssuer(row);
    },
    async remove(id: string) {
      return Number((await db.deleteFrom('trusted_issuers').where('id', '=', id).executeTakeFirst()).numDeletedRows) > 0;
    },
    async mapSubject(issuerId: string, externalId: string, principalId: string) {
      await db.deleteFrom('trusted_issuer_subjects').where('issuer_id', '=', issuerId).where('external_id', '=', externalId).execute();
      await db.insertInto('trusted_issuer_subjects').values({ issuer_id: issuerId, external_id: externalId, principal_id: principalId, created_at: Date.now() }).execute();
    },
    async unmapSubject(issuerId: string, externalId: string) {
      const result = await db.deleteFrom('trusted_issuer_subjects').where('issuer_id', '=', issuerId).where('external_id', '=', externalId).executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    },
    async subjects(issuerId: string): Promise<TrustedSubject[]> {
      const rows = await db.selectFrom('trusted_issuer_subjects').select(['external_id', 'principal_id']).where('issuer_id', '=', issuerId).orderBy('created_at').execute();
      return rows.map((r) => ({ externalId: r.external_id, principalId: r.principal_id }));
    },

    /**
     * The principal a token of a trusted external issuer stands for, with claims shaped like our own; undefined when
     * the token names no trusted issuer (the caller then reports its own verdict). A trusted issuer's token that
     * fails any check (signature by a key of its JWKS, iss, aud, exp/nbf, a mapped subject) is a TokenRejected.
     */
    async verify(token: string): Promise<{ claims: TokenClaims; principal: Principal } | undefined> {
      let iss: unknown;
      let alg: unknown;
      try {
        iss = decodeJwt(token).iss;
        alg = decodeProtectedHeader(token).alg;
      } catch {
        return undefined;
      }
      if (typeof iss !== 'string') return undefined;
      const row = await issuerNamed(iss);
      if (!row) return undefined;
      if (typeof alg !== 'string' || !ALGORITHMS.includes(alg)) throw new TokenRejected('AKV10031', `Token signing algorithm '${String(alg)}' is not supported.`);
      let payload: Record<string, unknown>;
      try {
        ({ payload } = await jwtVerify(token, keySets.fromJwksUri(row.jwks_uri), {
          algorithms: ALGORITHMS, issuer: row.issuer, audience: row.audience, clockTolerance: CLOCK_SKEW_SECONDS, requiredClaims: ['exp'],
        }));
      } catch (err) {
        if (VERDICTS.some((kind) => err instanceof kind)) throw describeJoseError(err, { issuer: row.issuer, audiences: [row.audience] });
        // Anything else means the issuer's keys could not be fetched or read: the token cannot be verified, which is
        // the caller's 401, not our 500.
        throw new TokenRejected('AKV10031', 'Token signature validation failed: the signing keys of the issuer could not be retrieved.');
      }
      const candidates = [payload.oid, payload.sub].filter((v): v is string => typeof v === 'string' && v.length > 0);
      const mapped = candidates.length ? await mappedSubject(JSON.stringify([row.id, ...candidates])) : undefined;
      const principal = mapped && await deps.directory.getPrincipal(mapped);
      if (!principal) throw new TokenRejected('AKV10032', 'The subject of this token is not mapped to a principal of this directory.');
      const now = Math.floor(Date.now() / 1000);
      const claims: TokenClaims = {
        aud: row.audience, iss: row.issuer, tid: principal.tenantId, oid: principal.objectId, sub: principal.objectId,
        ...(principal.appId ? { appid: principal.appId, azp: principal.appId } : {}),
        idtyp: principal.kind === 'User' ? 'user' : 'app',
        ...(principal.userPrincipalName ? { upn: principal.userPrincipalName } : {}),
        ...(principal.resourceId ? { xms_mirid: principal.resourceId } : {}),
        // The mapping is what is trusted; the principal's own credentials play no part.
        xms_cgen: principal.credentialGeneration,
        exp: Number(payload.exp), nbf: Number(payload.nbf ?? now), iat: Number(payload.iat ?? now),
      };
      return { claims, principal };
    },
  };
}

export type TrustedIssuers = ReturnType<typeof createTrustedIssuers>;

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The administrator's API for trusted issuers, on the management host (management-audience tokens). */
export function trustedIssuerRoutes(app: FastifyInstance, deps: { trustedIssuers: TrustedIssuers; directory: Directory; adminObjectId: string }) {
  const { trustedIssuers } = deps;
  const config = (operation: string) => ({ config: { plane: 'management' as const, operation } });
  const requireAdmin = (req: FastifyRequest) => requireDeploymentAdmin(req, deps.adminObjectId);
  const issuerNotFound = (id: string) => new KeyVaultError(404, 'NotFound', `The trusted issuer '${id}' was not found.`);
  const find = async (id: string) => {
    const issuer = GUID.test(id) ? await trustedIssuers.get(id.toLowerCase()) : undefined;
    if (!issuer) throw issuerNotFound(id);
    return issuer;
  };
  const urlField = { type: 'string', minLength: 8, maxLength: 1024 };
  const base = '/coffer/trusted-issuers';

  app.post<{ Body: { issuer: string; jwksUri: string; audience: string } }>(base, {
    ...config('TrustedIssuerAdd'),
    schema: {
      body: {
        type: 'object', required: ['issuer', 'jwksUri', 'audience'], additionalProperties: false,
        properties: { issuer: urlField, jwksUri: urlField, audience: { type: 'string', minLength: 1, maxLength: 1024 } },
      },
    },
  }, async (req, reply) => {
    requireAdmin(req);
    const { issuer, jwksUri, audience } = req.body;
    if (!/^https?:\/\/\S+$/.test(issuer)) throw new KeyVaultError(400, 'BadParameter', "'issuer' must be the issuer's URL, exactly as its tokens' iss claim spells it.");
    if (!isAcceptableKeyUrl(jwksUri)) throw new KeyVaultError(400, 'BadParameter', "'jwksUri' must be an https URL (plain http only to a loopback host).");
    const added = await trustedIssuers.add({ issuer, jwksUri, audience });
    if (!added) throw new KeyVaultError(409, 'Conflict', `The issuer '${issuer}' is already trusted.`);
    reply.code(201);
    return added;
  });
  app.get(base, config('TrustedIssuerList'), async (req) => {
    requireAdmin(req);
    return { value: await trustedIssuers.list() };
  });
  app.get<{ Params: { id: string } }>(`${base}/:id`, config('TrustedIssuerGet'), async (req) => {
    requireAdmin(req);
    return { ...(await find(req.params.id)), subjects: await trustedIssuers.subjects(req.params.id.toLowerCase()) };
  });
  app.delete<{ Params: { id: string } }>(`${base}/:id`, config('TrustedIssuerRemove'), async (req, reply) => {
    requireAdmin(req);
    await trustedIssuers.remove((await find(req.params.id)).id);
    return reply.code(204).send();
  });
  app.put<{ Params: { id: string; externalId: string }; Body: { principalId: string } }>(`${base}/:id/subjects/:externalId`, {
    ...config('TrustedIssuerSubjectMap'),
    schema: { body: { type: 'object', required: ['principalId'], additionalProperties: false, properties: { principalId: { type: 'string', pattern: GUID.source } } } },
  }, async (req) => {
    requireAdmin(req);
    const issuer = await find(req.params.id);
    const externalId = req.params.externalId;
    if (externalId.length > 256) throw new KeyVaultError(400, 'BadParameter', 'The external subject id is at most 256 characters.');
    const principal = await deps.directory.getPrincipal(req.body.principalId.toLowerCase());
    if (!principal || principal.kind === 'Group') {
      throw new KeyVaultError(400, 'BadParameter', `'${req.body.principalId}' is no user, service principal or managed identity of this directory.`);
    }
    await trustedIssuers.mapSubject(issuer.id, externalId, principal.objectId);
    return { externalId, principalId: principal.objectId };
  });
  app.delete<{ Params: { id: string; externalId: string } }>(`${base}/:id/subjects/:externalId`, config('TrustedIssuerSubjectUnmap'), async (req, reply) => {
    requireAdmin(req);
    const issuer = await find(req.params.id);
    if (!(await trustedIssuers.unmapSubject(issuer.id, req.params.externalId))) {
      throw new KeyVaultError(404, 'NotFound', `The subject '${req.params.externalId}' is not mapped for this issuer.`);
    }
    return reply.code(204).send();
  });
}
