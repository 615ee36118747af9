import crypto, { type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { p256, p384, p521 } from '@noble/curves/nist.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { badParameter } from '../../http/errors.js';

/**
 * Software key material and the JSON Web Key operations of the keys data plane, on node:crypto (OpenSSL).
 * Azure signs a caller-supplied DIGEST, so every signature here works on a pre-hashed input:
 * - ECDSA: node's API always hashes (a null algorithm means the default SHA-256), so ECDSA over a given digest is
 *   built from OpenSSL's scalar multiplication and @noble/curves' field arithmetic (see ecSign); verification uses
 *   @noble/curves (audited).
 * - RSA PKCS#1 v1.5: `privateEncrypt` with PKCS#1 padding over the DigestInfo, which is exactly RSASSA-PKCS1-v1_5.
 * - RSA-PSS: OpenSSL cannot take a digest through node's API, so the EMSA-PSS encoding (RFC 8017 §9.1) is built
 *   here and the raw RSA primitive is applied with RSA_NO_PADDING.
 * RSA1_5 decryption likewise applies the raw primitive and removes the padding here, because node 20 refuses
 * PKCS#1 v1.5 private decryption (CVE-2023-46809); every padding failure yields the same error.
 */

export type SoftwareKeyType = 'RSA' | 'EC';
export type KeyType = SoftwareKeyType | 'RSA-HSM' | 'EC-HSM';
export type CurveName = 'P-256' | 'P-384' | 'P-521' | 'P-256K';

/** Azure's curve names and OpenSSL's, with each curve's field size in bytes. */
const CURVES = {
  'P-256': { openssl: 'prime256v1', jwk: 'P-256', bytes: 32, ecdsa: p256 },
  'P-384': { openssl: 'secp384r1', jwk: 'P-384', bytes: 48, ecdsa: p384 },
  'P-521': { openssl: 'secp521r1', jwk: 'P-521', bytes: 66, ecdsa: p521 },
  'P-256K': { openssl: 'secp256k1', jwk: 'secp256k1', bytes: 32, ecdsa: secp256k1 },
} satisfies Record<CurveName, { openssl: string; jwk: string; bytes: number; ecdsa: unknown }>;
export const CURVE_NAMES = Object.keys(CURVES) as CurveName[];
export const RSA_SIZES = [2048, 3072, 4096];

type HashName = 'sha1' | 'sha256' | 'sha384' | 'sha512';
const HASH_BYTES: Record<HashName, number> = { sha1: 20, sha256: 32, sha384: 48, sha512: 64 };
/** DER prefixes of the PKCS#1 v1.5 DigestInfo for each hash (RFC 8017 §9.2 note 1). */
export const DIGEST_INFO: Record<string, Buffer> = {
  sha256: Buffer.from('3031300d060960864801650304020105000420', 'hex'),
  sha384: Buffer.from('3041300d060960864801650304020205000430', 'hex'),
  sha512: Buffer.from('3051300d060960864801650304020305000440', 'hex'),
};

type SignatureAlgorithm =
  | { kty: 'RSA'; scheme: 'pkcs1' | 'pss'; hash: HashName }
  | { kty: 'EC'; curve: CurveName; hash: HashName };
export const SIGNATURE_ALGORITHMS: Record<string, SignatureAlgorithm> = {
  RS256: { kty: 'RSA', scheme: 'pkcs1', hash: 'sha256' },
  RS384: { kty: 'RSA', scheme: 'pkcs1', hash: 'sha384' },
  RS512: { kty: 'RSA', scheme: 'pkcs1', hash: 'sha512' },
  PS256: { kty: 'RSA', scheme: 'pss', hash: 'sha256' },
  PS384: { kty: 'RSA', scheme: 'pss', hash: 'sha384' },
  PS512: { kty: 'RSA', scheme: 'pss', hash: 'sha512' },
  ES256: { kty: 'EC', curve: 'P-256', hash: 'sha256' },
  ES384: { kty: 'EC', curve: 'P-384', hash: 'sha384' },
  ES512: { kty: 'EC', curve: 'P-521', hash: 'sha512' },
  ES256K: { kty: 'EC', curve: 'P-256K', hash: 'sha256' },
};

export const ENCRYPTION_ALGORITHMS: Record<string, { oaepHash?: HashName }> = {
  RSA1_5: {},
  'RSA-OAEP': { oaepHash: 'sha1' },
  'RSA-OAEP-256': { oaepHash: 'sha256' },
};

/** The public half of a key as Azure's JsonWebKey fields (base64url), with Azure's curve names. */
export interface PublicJwk {
  kty: SoftwareKeyType;
  n?: string;
  e?: string;
  crv?: CurveName;
  x?: string;
  y?: string;
}

export const baseKeyType = (kty: KeyType): SoftwareKeyType => (kty.startsWith('RSA') ? 'RSA' : 'EC');

const generateKeyPair = promisify(crypto.generateKeyPair);

export async function generateSoftwareKey(spec: { kty: SoftwareKeyType; size?: number; publicExponent?: number; curve?: CurveName }): Promise<KeyObject> {
  if (spec.kty === 'RSA') {
    const { privateKey } = await generateKeyPair('rsa', { modulusLength: spec.size ?? 2048, publicExponent: spec.publicExponent ?? 65537 });
    return privateKey;
  }
  const { privateKey } = await generateKeyPair('ec', { namedCurve: CURVES[spec.curve ?? 'P-256'].openssl });
  return privateKey;
}

/** The stored form of a private key (sealed by the object store). */
export const exportPrivate = (key: KeyObject): Buffer => key.export({ format: 'der', type: 'pkcs8' });
export const loadPrivate = (der: Buffer): KeyObject => crypto.createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });

export function publicJwk(key: KeyObject): PublicJwk {
  const jwk = (key.type === 'public' ? key : crypto.createPublicKey(key)).export({ format: 'jwk' });
  if (jwk.kty === 'RSA') return { kty: 'RSA', n: jwk.n, e: jwk.e };
  const curve = CURVE_NAMES.find((c) => CURVES[c].jwk === jwk.crv)!;
  return { kty: 'EC', crv: curve, x: jwk.x, y: jwk.y };
}

export const curveOf = (key: KeyObject): CurveName | undefined =>
  CURVE_NAMES.find((c) => CURVES[c].openssl === key.asymmetricKeyDetails?.namedCurve);

/** A public KeyObject from Azure JsonWebKey fields (used for verification and by tests). */
export function publicKeyFromJwk(jwk: PublicJwk): KeyObject {
  if (jwk.kty === 'RSA') return crypto.createPublicKey({ key: { kty: 'RSA', n: jwk.n!, e: jwk.e! }, format: 'jwk' });
  return crypto.createPublicKey({ key: { kty: 'EC', crv: CURVES[jwk.crv!].jwk, x: jwk.x!, y: jwk.y! }, format: 'jwk' });
}

/** Azure's JsonWebKey as sent to import: byte fields arrive base64url (or base64) encoded. */
export interface ImportJwk {
  kty?: string;
  crv?: string;
  n?: string; e?: string; d?: string; p?: string; q?: string; dp?: string; dq?: string; qi?: string;
  x?: string; y?: string;
  [field: string]: unknown;
}

/** Normalises base64 or base64url to unpadded base64url, as node's JWK import requires. */
const b64url = (v: string | undefined) => (v === undefined ? undefined : Buffer.from(v, 'base64').toString('base64url'));

/** A private KeyObject from an imported JWK; 400 BadParameter when it is not a complete, consistent private key. */
export function privateKeyFromJwk(jwk: ImportJwk): KeyObject {
  const kty = baseKeyType((jwk.kty ?? '') as KeyType);
  if (!jwk.d) throw badParameter('The key to import must include its private part (d).');
  try {
    if (kty === 'RSA') {
      const fields = ['n', 'e', 'd', 'p', 'q', 'dp', 'dq', 'qi'] as const;
      if (fields.some((f) => !jwk[f])) throw badParameter('An RSA key to import must include n, e, d, p, q, dp, dq and qi.');
      const key = Object.fromEntries(fields.map((f) => [f, b64url(jwk[f])]));
      return crypto.createPrivateKey({ key: { kty: 'RSA', ...key }, format: 'jwk' });
    }
    const curve = CURVES[jwk.crv as CurveName];
    if (!curve) throw badParameter(`Invalid curve name: ${String(jwk.crv)}. Valid curves are ${CURVE_NAMES.join(', ')}.`);
    return crypto.createPrivateKey({ key: { kty: 'EC', crv: curve.jwk, x: b64url(jwk.x)!, y: b64url(jwk.y)!, d: b64url(jwk.d)! }, format: 'jwk' });
  } catch (err) {
    if (err instanceof Error && 'status' in err) throw err;
    throw badParameter('The key to import is not a valid JSON Web Key.');
  }
}

export class CryptoFailure extends Error {}

/** Checks the algorithm fits the key and the digest has the algorithm's length; returns the algorithm. */
export function signatureAlgorithm(alg: string, key: KeyObject, digest: Buffer): SignatureAlgorithm {
  const spec = SIGNATURE_ALGORITHMS[alg];
  const kty = key.asymmetricKeyType === 'rsa' ? 'RSA' : 'EC';
  if (!spec || spec.kty !== kty || (spec.kty === 'EC' && curveOf(key) !== spec.curve)) {
    throw badParameter(`Invalid algorithm ${alg} for a key of type ${kty}${kty === 'EC' ? ` on curve ${curveOf(key)}` : ''}.`);
  }
  if (digest.length !== HASH_BYTES[spec.hash]) {
    throw badParameter(`Invalid digest length: algorithm ${alg} requires a ${HASH_BYTES[spec.hash]}-byte digest, got ${digest.length} bytes.`);
  }
  return spec;
}

export function encryptionAlgorithm(alg: string, key: KeyObject) {
  const spec = ENCRYPTION_ALGORITHMS[alg];
  if (!spec || key.asymmetricKeyType !== 'rsa') {
    throw badParameter(`Invalid algorithm ${alg} for a key of type ${key.asymmetricKeyType === 'rsa' ? 'RSA' : 'EC'}.`);
  }
  return spec;
}

const modulusBytes = (key: KeyObject) => Math.ceil(key.asymmetricKeyDetails!.modulusLength! / 8);

/** MGF1 (RFC 8017 B.2.1). */
function mgf1(seed: Buffer, length: number, hash: HashName): Buffer {
  const blocks: Buffer[] = [];
  for (let counter = 0; blocks.length * HASH_BYTES[hash] < length; counter++) {
    const c = Buffer.alloc(4);
    c.writeUInt32BE(counter);
    blocks.push(crypto.createHash(hash).update(seed).update(c).digest());
  }
  return Buffer.concat(blocks).subarray(0, length);
}

/** EMSA-PSS-ENCODE with salt length = hash length, as Azure's PS256/384/512. */
function pssEncode(mHash: Buffer, modBits: number, hash: HashName): Buffer {
  const hLen = HASH_BYTES[hash];
  const emBits = modBits - 1;
  const emLen = Math.ceil(emBits / 8);
  const salt = crypto.randomBytes(hLen);
  const h = crypto.createHash(hash).update(Buffer.alloc(8)).update(mHash).update(salt).digest();
  const db = Buffer.concat([Buffer.alloc(emLen - 2 * hLen - 2), Buffer.from([1]), salt]);
  const masked = mgf1(h, db.length, hash);
  for (let i = 0; i < db.length; i++) db[i] ^= masked[i];
  db[0] &= 0xff >> (8 * emLen - emBits);
  const em = Buffer.concat([db, h, Buffer.from([0xbc])]);
  // The raw primitive takes a modulus-sized input: pad on the left when emLen is one byte short.
  return Buffer.concat([Buffer.alloc(Math.ceil(modBits / 8) - emLen), em]);
}

function pssVerify(mHash: Buffer, decoded: Buffer, modBits: number, hash: HashName): boolean {
  const hLen = HASH_BYTES[hash];
  const emBits = modBits - 1;
  const emLen = Math.ceil(emBits / 8);
  const em = decoded.subarray(decoded.length - emLen);
  if (decoded.length - emLen > 0 && decoded.subarray(0, decoded.length - emLen).some((b) => b !== 0)) return false;
  if (em[emLen - 1] !== 0xbc) return false;
  const db = Buffer.from(em.subarray(0, emLen - hLen - 1));
  const h = em.subarray(emLen - hLen - 1, emLen - 1);
  if (db[0] & ~(0xff >> (8 * emLen - emBits))) return false;
  const mask = mgf1(h, db.length, hash);
  for (let i = 0; i < db.length; i++) db[i] ^= mask[i];
  db[0] &= 0xff >> (8 * emLen - emBits);
  const psLen = emLen - 2 * hLen - 2;
  if (db.subarray(0, psLen).some((b) => b !== 0) || db[psLen] !== 1) return false;
  const salt = db.subarray(psLen + 1);
  const expected = crypto.createHash(hash).update(Buffer.alloc(8)).update(mHash).update(salt).digest();
  return crypto.timingSafeEqual(expected, h);
}

/** The private scalar of an EC key, read once per KeyObject (callers cache the KeyObject per key version). */
const ecScalars = new WeakMap<KeyObject, bigint>();
function ecScalar(key: KeyObject): bigint {
  let d = ecScalars.get(key);
  if (d === undefined) ecScalars.set(key, (d = toBigInt(Buffer.from(key.export({ format: 'jwk' }).d!, 'base64url'))));
  return d;
}
const toBigInt = (bytes: Uint8Array) => BigInt(`0x${Buffer.from(bytes).toString('hex') || '0'}`);
const toBytes = (value: bigint, length: number) => Buffer.from(value.toString(16).padStart(length * 2, '0'), 'hex');

/** One ECDH context per curve and thread: OpenSSL's scalar multiplication by the base point. */
const baseMultipliers = new Map<CurveName, crypto.ECDH>();

/**
 * ECDSA over a digest (SEC 1 §4.1.3); the signature is R||S (JWS form). The costly step, k·G, runs in OpenSSL
 * (ECDH's public key of the scalar k is exactly k·G): about ten times faster than @noble/curves' JavaScript point
 * multiplication on this hardware. The scalar arithmetic mod n uses noble's field. k comes from OpenSSL's CSPRNG
 * by rejection sampling, as OpenSSL's own ECDSA does. Digest lengths equal the curve's hash here (checked by
 * `signatureAlgorithm`) and never exceed the order's bit length, so the digest is e itself.
 */
function ecSign(curve: CurveName, digest: Buffer, key: KeyObject): Buffer {
  const { bytes, ecdsa, openssl } = CURVES[curve];
  const Fn = ecdsa.Point.Fn;
  let multiplier = baseMultipliers.get(curve);
  if (!multiplier) baseMultipliers.set(curve, (multiplier = crypto.createECDH(openssl)));
  const d = ecScalar(key);
  const e = Fn.create(toBigInt(digest));
  const excessBits = bytes * 8 - Fn.BITS;
  for (;;) {
    const random = crypto.randomBytes(bytes);
    random[0] &= 0xff >> excessBits;
    const k = toBigInt(random);
    if (k === 0n || k >= Fn.ORDER) continue;
    multiplier.setPrivateKey(random);
    const point = multiplier.getPublicKey();
    const r = Fn.create(toBigInt(point.subarray(1, 1 + bytes)));
    let s = Fn.mul(Fn.inv(k), Fn.add(e, Fn.mul(r, d)));
    if (r === 0n || s === 0n) continue;
    // secp256k1 ecosystems insist on low S (as @noble/curves signed before); both forms verify everywhere else.
    if (curve === 'P-256K' && s > Fn.ORDER >> 1n) s = Fn.neg(s);
    return Buffer.concat([toBytes(r, bytes), toBytes(s, bytes)]);
  }
}

function ecVerify(curve: CurveName, digest: Buffer, key: KeyObject, signature: Buffer): boolean {
  const jwk = key.export({ format: 'jwk' });
  const point = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
  try {
    // High-S signatures are valid ECDSA (OpenSSL produces them); only secp256k1 ecosystems insist on low S.
    return CURVES[curve].ecdsa.verify(signature, digest, point, { prehash: false, lowS: false });
  } catch {
    return false;
  }
}

/** Signs a digest; the signature is in JWS form (R||S for ECDSA). */
export async function signDigest(alg: string, key: KeyObject, digest: Buffer): Promise<Buffer> {
  const spec = signatureAlgorithm(alg, key, digest);
  if (spec.kty === 'EC') return ecSign(spec.curve, digest, key);
  const bits = key.asymmetricKeyDetails!.modulusLength!;
  if (spec.scheme === 'pkcs1') {
    return crypto.privateEncrypt({ key, padding: crypto.constants.RSA_PKCS1_PADDING }, Buffer.concat([DIGEST_INFO[spec.hash], digest]));
  }
  return crypto.privateDecrypt({ key, padding: crypto.constants.RSA_NO_PADDING }, pssEncode(digest, bits, spec.hash));
}

/** Verifies a signature over a digest with the public half of `key`. */
export async function verifyDigest(alg: string, key: KeyObject, digest: Buffer, signature: Buffer): Promise<boolean> {
  const spec = signatureAlgorithm(alg, key, digest);
  const pub = key.type === 'public' ? key : crypto.createPublicKey(key);
  if (spec.kty === 'EC') {
    return signature.length === 2 * CURVES[spec.curve].bytes && ecVerify(spec.curve, digest, pub, signature);
  }
  if (signature.length !== modulusBytes(pub)) return false;
  try {
    if (spec.scheme === 'pkcs1') {
      const recovered = crypto.publicDecrypt({ key: pub, padding: crypto.constants.RSA_PKCS1_PADDING }, signature);
      const expected = Buffer.concat([DIGEST_INFO[spec.hash], digest]);
      return recovered.length === expected.length && crypto.timingSafeEqual(recovered, expected);
    }
    const decoded = crypto.publicEncrypt({ key: pub, padding: crypto.constants.RSA_NO_PADDING }, signature);
    return pssVerify(digest, decoded, pub.asymmetricKeyDetails!.modulusLength!, spec.hash);
  } catch {
    return false;
  }
}

export function encrypt(alg: string, key: KeyObject, plaintext: Buffer): Buffer {
  const spec = encryptionAlgorithm(alg, key);
  const pub = key.type === 'public' ? key : crypto.createPublicKey(key);
  const maxBytes = modulusBytes(pub) - (spec.oaepHash ? 2 * HASH_BYTES[spec.oaepHash] + 2 : 11);
  if (plaintext.length > maxBytes) throw badParameter(`The value is too long for algorithm ${alg} with this key: at most ${maxBytes} bytes.`);
  return crypto.publicEncrypt({
    key: pub,
    padding: spec.oaepHash ? crypto.constants.RSA_PKCS1_OAEP_PADDING : crypto.constants.RSA_PKCS1_PADDING,
    oaepHash: spec.oaepHash,
  }, plaintext);
}

/** Decrypts; any malformed ciphertext is one CryptoFailure, whatever went wrong. */
export function decrypt(alg: string, key: KeyObject, ciphertext: Buffer): Buffer {
  const spec = encryptionAlgorithm(alg, key);
  if (ciphertext.length !== modulusBytes(key)) throw new CryptoFailure('decryption failed');
  try {
    if (spec.oaepHash) {
      return crypto.privateDecrypt({ key, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: spec.oaepHash }, ciphertext);
    }
    return unpadPkcs1Type2(crypto.privateDecrypt({ key, padding: crypto.constants.RSA_NO_PADDING }, ciphertext));
  } catch {
    throw new CryptoFailure('decryption failed');
  }
}

/** EME-PKCS1-v1_5 decoding (RFC 8017 §7.2.2 step 3), scanning the whole block whatever it finds. */
function unpadPkcs1Type2(em: Buffer): Buffer {
  let separator = 0;
  let bad = (em[0] !== 0 ? 1 : 0) | (em[1] !== 2 ? 1 : 0);
  for (let i = 2; i < em.length; i++) {
    const isZero = em[i] === 0 ? 1 : 0;
    separator = separator === 0 && isZero ? i : separator;
  }
  bad |= separator < 10 ? 1 : 0;
  if (bad) throw new CryptoFailure('decryption failed');
  return em.subarray(separator + 1);
}
