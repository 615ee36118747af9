import crypto, { type KeyObject } from 'node:crypto';
import { decodeJwt, jwtVerify, type JWTPayload } from 'jose';
import { createRemoteKeySets } from '../../identity/remote-jwks.js';
import { badParameter, forbidden } from '../../http/errors.js';

/**
 * Secure key release: an exportable key leaves Coffer only wrapped under a key that an attestation token vouches for,
 * and only when the token satisfies the key's release policy.
 *
 * Trust model. A policy names attestation authorities (`anyOf[].authority`); Coffer accepts only authorities that
 * the operator configured (`--attestation-authority URL`, repeatable). A policy naming any other authority is
 * refused when it is set, and a token is accepted only from a configured authority that the policy names. The
 * token's signature is checked against the authority's JWKS, found through its OpenID discovery document
 * (`{authority}/.well-known/openid-configuration` → `jwks_uri`), and its exp/nbf are enforced. Whoever may set a
 * key's release policy (keys/create, keys/update) therefore chooses among authorities the operator trusts, never
 * an arbitrary URL that Coffer would fetch.
 *
 * The policy grammar is Azure's (version 1.0.0): `{ "version": "1.0.0", "anyOf": [ { "authority": URL,
 * "allOf" | "anyOf": [ condition… ] } ] }`, a condition being `{ "claim": "a.b.c", "equals": value }`,
 * `{ "claim", "contains": value }` (an array claim holding the value, or a string claim holding the substring),
 * or a nested `{ "allOf" | "anyOf": [ … ] }`.
 */

export const RELEASE_POLICY_CONTENT_TYPE = 'application/json; charset=utf-8';
export const RELEASE_ENCRYPTIONS = ['CKM_RSA_AES_KEY_WRAP', 'RSA_AES_KEY_WRAP_256', 'RSA_AES_KEY_WRAP_384'] as const;
export type ReleaseEncryption = (typeof RELEASE_ENCRYPTIONS)[number];

export interface ReleasePolicyInput {
  contentType?: string;
  data?: string;
  immutable?: boolean;
}

/** A key version's release policy as stored and returned: `data` is the base64url of the policy JSON. */
export interface StoredReleasePolicy {
  contentType: string;
  data: string;
  immutable: boolean;
}

type Condition = { claim: string; equals?: unknown; contains?: unknown } | { allOf: Condition[] } | { anyOf: Condition[] };
interface PolicyDocument {
  version: string;
  anyOf: { authority: string; allOf?: Condition[]; anyOf?: Condition[] }[];
}

/** Attestation tokens are signed with an authority's asymmetric key; nothing else is accepted. */
const TOKEN_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512'];

const normalise = (url: string) => url.replace(/\/+$/, '').toLowerCase();

function invalid(message: string): never {
  throw badParameter(`Invalid key release policy: ${message}`);
}

function checkCondition(c: unknown, where: string): void {
  if (!c || typeof c !== 'object' || Array.isArray(c)) invalid(`${where} is not an object.`);
  const o = c as Record<string, unknown>;
  for (const group of ['allOf', 'anyOf'] as const) {
    if (group in o) {
      if (!Array.isArray(o[group]) || !(o[group] as unknown[]).length) invalid(`${where}.${group} must be a non-empty array.`);
      (o[group] as unknown[]).forEach((inner, i) => checkCondition(inner, `${where}.${group}[${i}]`));
      return;
    }
  }
  if (typeof o.claim !== 'string' || !o.claim) invalid(`${where} names no claim.`);
  if (('equals' in o) === ('contains' in o)) invalid(`${where} must have exactly one of equals or contains.`);
}

/** Decodes and checks a policy; every authority it names must be one the operator trusts. */
function parsePolicyDocument(data: string, trusted: Set<string>): PolicyDocument {
  let doc: PolicyDocument;
  try {
    doc = JSON.parse(Buffer.from(data, 'base64url').toString('utf8'));
  } catch {
    invalid('data is not the base64url encoding of a JSON document.');
  }
  if (!doc || typeof doc !== 'object') invalid('data is not a JSON object.');
  if (doc.version !== '1.0.0') invalid(`unsupported version ${JSON.stringify(doc.version)} (supported: 1.0.0).`);
  if (!Array.isArray(doc.anyOf) || !doc.anyOf.length) invalid('anyOf must list at least one authority.');
  doc.anyOf.forEach((rule, i) => {
    if (!rule || typeof rule.authority !== 'string') invalid(`anyOf[${i}] names no authority.`);
    if (!trusted.has(normalise(rule.authority))) {
      throw badParameter(`The attestation authority '${rule.authority}' is not trusted by this Coffer deployment (configure it with --attestation-authority).`);
    }
    const groups = ['allOf', 'anyOf'].filter((g) => g in rule);
    if (groups.length !== 1) invalid(`anyOf[${i}] must have exactly one of allOf or anyOf.`);
    checkCondition({ [groups[0]]: (rule as Record<string, unknown>)[groups[0]] }, `anyOf[${i}]`);
  });
  return doc;
}

const claimAt = (claims: JWTPayload, path: string): unknown =>
  path.split('.').reduce<unknown>((value, part) => (value && typeof value === 'object' ? (value as Record<string, unknown>)[part] : undefined), claims);

function satisfies(claims: JWTPayload, c: Condition): boolean {
  if ('allOf' in c) return c.allOf.every((inner) => satisfies(claims, inner));
  if ('anyOf' in c) return c.anyOf.some((inner) => satisfies(claims, inner));
  const value = claimAt(claims, c.claim);
  if ('equals' in c) return value !== undefined && JSON.stringify(value) === JSON.stringify(c.equals);
  if (Array.isArray(value)) return value.some((v) => JSON.stringify(v) === JSON.stringify(c.contains));
  return typeof value === 'string' && typeof c.contains === 'string' && value.includes(c.contains);
}

/** The RSA key an attestation token vouches for: Azure's `x-ms-runtime.keys` (also under `x-ms-isolation-tee`). */
function targetKeyOf(claims: JWTPayload): { kid?: string; key: KeyObject } {
  const runtime = (claims['x-ms-runtime'] ?? (claims['x-ms-isolation-tee'] as Record<string, unknown> | undefined)?.['x-ms-runtime']) as
    { keys?: Record<string, unknown>[] } | undefined;
  for (const jwk of runtime?.keys ?? []) {
    if (jwk?.kty !== 'RSA' || (Array.isArray(jwk.key_ops) && !jwk.key_ops.includes('encrypt'))) continue;
    try {
      return { kid: typeof jwk.kid === 'string' ? jwk.kid : undefined, key: crypto.createPublicKey({ key: { kty: 'RSA', n: jwk.n as string, e: jwk.e as string }, format: 'jwk' }) };
    } catch { /* not a usable RSA key: try the next one */ }
  }
  throw badParameter('The target attestation token holds no RSA public key (x-ms-runtime.keys) to wrap the released key under.');
}

const OAEP_HASH: Record<ReleaseEncryption, string> = { CKM_RSA_AES_KEY_WRAP: 'sha1', RSA_AES_KEY_WRAP_256: 'sha256', RSA_AES_KEY_WRAP_384: 'sha384' };

/**
 * PKCS#11's CKM_RSA_AES_KEY_WRAP: a fresh AES-256 key wrapped by RSA-OAEP under the target key, followed by the
 * PKCS#8 private key wrapped by that AES key with AES Key Wrap with Padding (RFC 5649). The RSA_AES_KEY_WRAP_256/384
 * variants use OAEP with SHA-256/384. Returned as Azure's `key_hsm` blob (base64url JSON).
 */
export function wrapForRelease(pkcs8: Buffer, target: { kid?: string; key: KeyObject }, enc: ReleaseEncryption): string {
  const aesKey = crypto.randomBytes(32);
  try {
    const wrappedAesKey = crypto.publicEncrypt({ key: target.key, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: OAEP_HASH[enc] }, aesKey);
    const cipher = crypto.createCipheriv('id-aes256-wrap-pad', aesKey, Buffer.from('a65959a6', 'hex'));
    const wrappedKey = Buffer.concat([cipher.update(pkcs8), cipher.final()]);
    const blob = { schema_version: '1.0', header: { kid: target.kid, alg: 'dir', enc }, ciphertext: Buffer.concat([wrappedAesKey, wrappedKey]).toString('base64url') };
    return Buffer.from(JSON.stringify(blob)).toString('base64url');
  } finally {
    aesKey.fill(0);
  }
}

export function createReleaseAuthority(options: { authorities: string[]; fetchTimeoutMs?: number }) {
  const trusted = new Set(options.authorities.map(normalise));
  /** Each authority's JWKS, found once through its discovery document (jose refreshes the keys themselves). */
  const keySets = createRemoteKeySets({ timeoutMs: options.fetchTimeoutMs ?? 10_000 });

  return {
    /** Checks a release policy as sent on create/import/update; returns its stored form. */
    parsePolicy(input: ReleasePolicyInput): StoredReleasePolicy {
      const contentType = input.contentType ?? RELEASE_POLICY_CONTENT_TYPE;
      if (contentType.replace(/\s+/g, '').toLowerCase() !== RELEASE_POLICY_CONTENT_TYPE.replace(/\s+/g, '')) {
        invalid(`unsupported contentType '${contentType}' (supported: ${RELEASE_POLICY_CONTENT_TYPE}).`);
      }
      if (!input.data) invalid('data is required.');
      const data = Buffer.from(input.data, 'base64').toString('base64url');
      parsePolicyDocument(data, trusted);
      return { contentType: RELEASE_POLICY_CONTENT_TYPE, data, immutable: input.immutable ?? false };
    },

    /**
     * Verifies the target attestation token against the policy: signed by a trusted authority the policy names,
     * unexpired, its claims satisfying that authority's conditions. Returns the key to wrap the release under.
     */
    async authorize(policy: StoredReleasePolicy, token: string) {
      let issuer: string;
      try {
        issuer = normalise(String(decodeJwt(token).iss ?? ''));
      } catch {
        throw badParameter('The target attestation token is not a JSON Web Token.');
      }
      const doc = parsePolicyDocument(policy.data, trusted);
      const rules = doc.anyOf.filter((rule) => normalise(rule.authority) === issuer);
      if (!rules.length) throw forbidden('The target attestation token was not issued by an authority that the key release policy trusts.', 'AccessDenied');
      let claims: JWTPayload;
      try {
        const authority = rules[0].authority.replace(/\/+$/, '');
        ({ payload: claims } = await jwtVerify(token, await keySets.fromIssuer(authority), { algorithms: TOKEN_ALGORITHMS, requiredClaims: ['exp'], clockTolerance: 60 }));
      } catch {
        throw forbidden('The target attestation token could not be verified (signature, issuer keys or validity period).', 'AccessDenied');
      }
      const allowed = rules.some((rule) => satisfies(claims, (rule.allOf ? { allOf: rule.allOf } : { anyOf: rule.anyOf! })));
      if (!allowed) throw forbidden('The target attestation token does not satisfy the key release policy.', 'AccessDenied');
      return targetKeyOf(claims);
    },
  };
}

