import crypto, { type KeyObject } from 'node:crypto';
import { createRequire } from 'node:module';
import type * as Pkcs11Types from 'pkcs11js';
import { badParameter } from '../../http/errors.js';
import { CryptoFailure, DIGEST_INFO, encryptionAlgorithm, signatureAlgorithm, type CurveName } from './key-crypto.js';

/**
 * HSM-protected keys in a PKCS#11 token (SoftHSM2 in tests, any PKCS#11 module in production). Private keys are
 * generated inside the token as sensitive, non-extractable token objects; Coffer keeps only their CKA_ID. Every
 * private-key operation runs in the token through pkcs11js's asynchronous calls (off the event loop), each in a
 * session of its own so concurrent requests never share an operation state.
 */
export interface Pkcs11Options {
  module: string;
  /** The token, by label (preferred) or by slot index among the slots with a token. */
  tokenLabel?: string;
  slot?: number;
  pin: string;
}

export interface HsmKey {
  /** The CKA_ID shared by the private and public token objects (hex). */
  id: string;
  publicKey: KeyObject;
}

const EC_PARAMS: Record<CurveName, string> = {
  'P-256': '06082a8648ce3d030107',
  'P-384': '06052b81040022',
  'P-521': '06052b81040023',
  'P-256K': '06052b8104000a',
};
const NODE_CURVE: Record<CurveName, string> = { 'P-256': 'P-256', 'P-384': 'P-384', 'P-521': 'P-521', 'P-256K': 'secp256k1' };

export function createPkcs11Hsm(options: Pkcs11Options) {
  // pkcs11js is a native addon (CommonJS); loaded only when a module is configured.
  const pkcs11js = createRequire(import.meta.url)('pkcs11js') as typeof Pkcs11Types;
  const p11 = new pkcs11js.PKCS11();
  p11.load(options.module);
  try {
    p11.C_Initialize();
  } catch (err) {
    if (!String((err as Error).message).includes('CKR_CRYPTOKI_ALREADY_INITIALIZED')) throw err;
  }
  const slots = p11.C_GetSlotList(true);
  const slot = options.tokenLabel !== undefined
    ? slots.find((s) => p11.C_GetTokenInfo(s).label.trim() === options.tokenLabel)
    : slots[options.slot ?? 0];
  if (!slot) throw new Error(`PKCS#11: no token ${options.tokenLabel !== undefined ? `labelled '${options.tokenLabel}'` : `in slot ${options.slot ?? 0}`}`);
  // The login is per application and token: one logged-in session keeps every later session authenticated.
  const loginSession = p11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
  try {
    p11.C_Login(loginSession, pkcs11js.CKU_USER, options.pin);
  } catch (err) {
    if (!String((err as Error).message).includes('CKR_USER_ALREADY_LOGGED_IN')) throw err;
  }

  async function withSession<T>(work: (session: Buffer) => Promise<T>): Promise<T> {
    const session = p11.C_OpenSession(slot!, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
    try {
      return await work(session);
    } finally {
      p11.C_CloseSession(session);
    }
  }

  function findObjects(session: Buffer, id: string, objectClass?: number): Buffer[] {
    p11.C_FindObjectsInit(session, [
      ...(objectClass === undefined ? [] : [{ type: pkcs11js.CKA_CLASS, value: objectClass }]),
      { type: pkcs11js.CKA_ID, value: Buffer.from(id, 'hex') },
    ]);
    try {
      return p11.C_FindObjects(session, 16);
    } finally {
      p11.C_FindObjectsFinal(session);
    }
  }

  function findPrivateKey(session: Buffer, id: string): Buffer {
    const [handle] = findObjects(session, id, pkcs11js.CKO_PRIVATE_KEY);
    if (!handle) throw badParameter('The HSM key material of this key is not present in this deployment\'s token.');
    return handle;
  }

  /**
   * Private keys live in the token as sensitive, non-extractable objects usable only after login, labelled as
   * Coffer's so that garbage collection never touches another application's objects in a shared token.
   */
  const privateKeyAttributes = (id: Buffer, isRsa: boolean) => [
    { type: pkcs11js.CKA_TOKEN, value: true }, { type: pkcs11js.CKA_ID, value: id }, { type: pkcs11js.CKA_PRIVATE, value: true },
    { type: pkcs11js.CKA_LABEL, value: KEY_LABEL },
    { type: pkcs11js.CKA_SENSITIVE, value: true }, { type: pkcs11js.CKA_EXTRACTABLE, value: false },
    { type: pkcs11js.CKA_SIGN, value: true },
    ...(isRsa ? [{ type: pkcs11js.CKA_DECRYPT, value: true }, { type: pkcs11js.CKA_UNWRAP, value: true }] : []),
  ];

  const gcm = (iv: Buffer, aad: Buffer): Pkcs11Types.Mechanism =>
    ({ mechanism: pkcs11js.CKM_AES_GCM, parameter: { type: pkcs11js.CK_PARAMS_GCM, iv, ivBits: iv.length * 8, aad, tagBits: 128 } as Pkcs11Types.GcmParams });
  const SEAL_IV = 12;
  const KEY_LABEL = 'coffer-hsm-key';

  const attr = (session: Buffer, handle: Buffer, type: number) =>
    p11.C_GetAttributeValue(session, handle, [{ type }])[0].value as Buffer;

  /** CKA_EC_POINT is a DER OCTET STRING around the uncompressed point 04||X||Y. */
  function ecPublicKey(point: Buffer, curve: CurveName): KeyObject {
    let raw = point;
    if (point[0] === 0x04 && point[1] === point.length - 2) raw = point.subarray(2);
    else if (point[0] === 0x04 && point[1] === 0x81 && point[2] === point.length - 3) raw = point.subarray(3);
    const size = (raw.length - 1) / 2;
    return crypto.createPublicKey({
      key: { kty: 'EC', crv: NODE_CURVE[curve], x: raw.subarray(1, 1 + size).toString('base64url'), y: raw.subarray(1 + size).toString('base64url') },
      format: 'jwk',
    });
  }

  const promised = <T>(call: (cb: (err: Error, result: T) => void) => void) =>
    new Promise<T>((resolve, reject) => call((err, result) => (err ? reject(err) : resolve(result))));

  return {
    async generate(spec: { kty: 'RSA' | 'EC'; size?: number; publicExponent?: number; curve?: CurveName }): Promise<HsmKey> {
      const id = crypto.randomBytes(16);
      const common = [{ type: pkcs11js.CKA_TOKEN, value: true }, { type: pkcs11js.CKA_ID, value: id }];
      const isRsa = spec.kty === 'RSA';
      const exponent = Buffer.from((spec.publicExponent ?? 65537).toString(16).padStart(6, '0'), 'hex');
      const publicTemplate = [...common, { type: pkcs11js.CKA_VERIFY, value: true },
        ...(isRsa
          ? [{ type: pkcs11js.CKA_ENCRYPT, value: true }, { type: pkcs11js.CKA_WRAP, value: true },
            { type: pkcs11js.CKA_MODULUS_BITS, value: spec.size ?? 2048 }, { type: pkcs11js.CKA_PUBLIC_EXPONENT, value: exponent }]
          : [{ type: pkcs11js.CKA_EC_PARAMS, value: Buffer.from(EC_PARAMS[spec.curve ?? 'P-256'], 'hex') }])];
      const privateTemplate = privateKeyAttributes(id, isRsa);
      return withSession(async (session) => {
        const mechanism = { mechanism: isRsa ? pkcs11js.CKM_RSA_PKCS_KEY_PAIR_GEN : pkcs11js.CKM_EC_KEY_PAIR_GEN };
        const keys = await promised<Pkcs11Types.KeyPair>((cb) => p11.C_GenerateKeyPair(session, mechanism, publicTemplate, privateTemplate, cb));
        const publicKey = isRsa
          ? crypto.createPublicKey({ key: {
            kty: 'RSA',
            n: attr(session, keys.publicKey, pkcs11js.CKA_MODULUS).toString('base64url'),
            e: attr(session, keys.publicKey, pkcs11js.CKA_PUBLIC_EXPONENT).toString('base64url'),
          }, format: 'jwk' })
          : ecPublicKey(attr(session, keys.publicKey, pkcs11js.CKA_EC_POINT), spec.curve ?? 'P-256');
        return { id: id.toString('hex'), publicKey };
      });
    },

    /** Signs a digest in the token (algorithm and digest length checked against the public key first). */
    async sign(id: string, publicKey: KeyObject, alg: string, digest: Buffer): Promise<Buffer> {
      const spec = signatureAlgorithm(alg, publicKey, digest);
      const hash = { sha1: pkcs11js.CKM_SHA_1, sha256: pkcs11js.CKM_SHA256, sha384: pkcs11js.CKM_SHA384, sha512: pkcs11js.CKM_SHA512 }[spec.hash];
      const mgf = { sha1: pkcs11js.CKG_MGF1_SHA1, sha256: pkcs11js.CKG_MGF1_SHA256, sha384: pkcs11js.CKG_MGF1_SHA384, sha512: pkcs11js.CKG_MGF1_SHA512 }[spec.hash];
      const [mechanism, input]: [Pkcs11Types.Mechanism, Buffer] = spec.kty === 'EC'
        ? [{ mechanism: pkcs11js.CKM_ECDSA }, digest]
        : spec.scheme === 'pkcs1'
          ? [{ mechanism: pkcs11js.CKM_RSA_PKCS }, Buffer.concat([DIGEST_INFO[spec.hash], digest])]
          : [{ mechanism: pkcs11js.CKM_RSA_PKCS_PSS, parameter: { type: pkcs11js.CK_PARAMS_RSA_PSS, hashAlg: hash, mgf, saltLen: digest.length } as Pkcs11Types.RsaPSS }, digest];
      return withSession(async (session) => {
        p11.C_SignInit(session, mechanism, findPrivateKey(session, id));
        return promised<Buffer>((cb) => p11.C_Sign(session, input, Buffer.alloc(1024), cb));
      });
    },

    async decrypt(id: string, publicKey: KeyObject, alg: string, ciphertext: Buffer): Promise<Buffer> {
      const spec = encryptionAlgorithm(alg, publicKey);
      const mechanism: Pkcs11Types.Mechanism = spec.oaepHash
        ? { mechanism: pkcs11js.CKM_RSA_PKCS_OAEP, parameter: {
          type: pkcs11js.CK_PARAMS_RSA_OAEP,
          hashAlg: spec.oaepHash === 'sha1' ? pkcs11js.CKM_SHA_1 : pkcs11js.CKM_SHA256,
          mgf: spec.oaepHash === 'sha1' ? pkcs11js.CKG_MGF1_SHA1 : pkcs11js.CKG_MGF1_SHA256,
          source: 1, // CKZ_DATA_SPECIFIED, with no label
        } as Pkcs11Types.RsaOAEP }
        : { mechanism: pkcs11js.CKM_RSA_PKCS };
      return withSession(async (session) => {
        const key = findPrivateKey(session, id);
        try {
          p11.C_DecryptInit(session, mechanism, key);
        } catch {
          // e.g. SoftHSM2 implements OAEP with SHA-1 only.
          throw badParameter(`Algorithm ${alg} is not supported by this deployment's HSM.`);
        }
        try {
          return await promised<Buffer>((cb) => p11.C_Decrypt(session, ciphertext, Buffer.alloc(1024), cb));
        } catch {
          throw new CryptoFailure('decryption failed');
        }
      });
    },

    /**
     * Imports a software private key into the token (C_CreateObject) as a sensitive, non-extractable object; the
     * caller keeps only the returned CKA_ID. (Being imported, the token reports it as not CKA_NEVER_EXTRACTABLE.)
     */
    async importKey(key: KeyObject, curve?: CurveName): Promise<HsmKey> {
      const id = crypto.randomBytes(16);
      const jwk = key.export({ format: 'jwk' });
      const field = (v?: string) => Buffer.from(v!, 'base64url');
      const isRsa = jwk.kty === 'RSA';
      const material = isRsa
        ? [{ type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_RSA },
          { type: pkcs11js.CKA_MODULUS, value: field(jwk.n) }, { type: pkcs11js.CKA_PUBLIC_EXPONENT, value: field(jwk.e) },
          { type: pkcs11js.CKA_PRIVATE_EXPONENT, value: field(jwk.d) }, { type: pkcs11js.CKA_PRIME_1, value: field(jwk.p) },
          { type: pkcs11js.CKA_PRIME_2, value: field(jwk.q) }, { type: pkcs11js.CKA_EXPONENT_1, value: field(jwk.dp) },
          { type: pkcs11js.CKA_EXPONENT_2, value: field(jwk.dq) }, { type: pkcs11js.CKA_COEFFICIENT, value: field(jwk.qi) }]
        : [{ type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_EC },
          { type: pkcs11js.CKA_EC_PARAMS, value: Buffer.from(EC_PARAMS[curve!], 'hex') }, { type: pkcs11js.CKA_VALUE, value: field(jwk.d) }];
      try {
        await withSession(async (session) => {
          p11.C_CreateObject(session, [{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY }, ...material, ...privateKeyAttributes(id, isRsa)]);
        });
      } finally {
        for (const template of material) if (Buffer.isBuffer(template.value)) template.value.fill(0);
      }
      return { id: id.toString('hex'), publicKey: crypto.createPublicKey(key) };
    },

    /** The CKA_IDs of every key Coffer created or imported in the token (by its label). */
    async keyIds(): Promise<string[]> {
      return withSession(async (session) => {
        p11.C_FindObjectsInit(session, [{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY }, { type: pkcs11js.CKA_LABEL, value: KEY_LABEL }]);
        const ids: string[] = [];
        try {
          for (let batch = p11.C_FindObjects(session, 100); batch.length; batch = p11.C_FindObjects(session, 100)) {
            for (const handle of batch) ids.push(attr(session, handle, pkcs11js.CKA_ID).toString('hex'));
          }
        } finally {
          p11.C_FindObjectsFinal(session);
        }
        return ids;
      });
    },

    /** Destroys every token object of a key (its private and public halves); absent objects are no error. */
    async destroy(id: string): Promise<void> {
      await withSession(async (session) => {
        for (const handle of findObjects(session, id)) p11.C_DestroyObject(session, handle);
      });
    },

    /** A new AES-256 secret key in the token (sensitive, non-extractable) for sealing Coffer's root key. */
    async createSealKey(): Promise<string> {
      const id = crypto.randomBytes(16);
      await withSession(async (session) => {
        p11.C_GenerateKey(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
          { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY }, { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
          { type: pkcs11js.CKA_VALUE_LEN, value: 32 }, { type: pkcs11js.CKA_TOKEN, value: true }, { type: pkcs11js.CKA_PRIVATE, value: true },
          { type: pkcs11js.CKA_SENSITIVE, value: true }, { type: pkcs11js.CKA_EXTRACTABLE, value: false },
          { type: pkcs11js.CKA_ENCRYPT, value: true }, { type: pkcs11js.CKA_DECRYPT, value: true },
          { type: pkcs11js.CKA_ID, value: id }, { type: pkcs11js.CKA_LABEL, value: 'coffer-root-seal' },
        ]);
      });
      return id.toString('hex');
    },

    /** AES-256-GCM in the token under a seal key: iv (12) || ciphertext || tag. */
    async sealEncrypt(id: string, plaintext: Buffer, aad: Buffer): Promise<Buffer> {
      return withSession(async (session) => {
        const [key] = findObjects(session, id, pkcs11js.CKO_SECRET_KEY);
        if (!key) throw new Error('PKCS#11: the seal key is not in this token');
        const iv = crypto.randomBytes(SEAL_IV);
        p11.C_EncryptInit(session, gcm(iv, aad), key);
        return Buffer.concat([iv, p11.C_Encrypt(session, plaintext, Buffer.alloc(plaintext.length + 32))]);
      });
    },

    async sealDecrypt(id: string, sealed: Buffer, aad: Buffer): Promise<Buffer> {
      return withSession(async (session) => {
        const [key] = findObjects(session, id, pkcs11js.CKO_SECRET_KEY);
        if (!key) throw new Error('PKCS#11: the seal key is not in this token');
        p11.C_DecryptInit(session, gcm(sealed.subarray(0, SEAL_IV), aad), key);
        return p11.C_Decrypt(session, sealed.subarray(SEAL_IV), Buffer.alloc(sealed.length));
      });
    },

    /** Whether this deployment's token holds the key (a restored backup only works where its key lives). */
    async has(id: string): Promise<boolean> {
      return withSession(async (session) => {
        try {
          findPrivateKey(session, id);
          return true;
        } catch {
          return false;
        }
      });
    },

    close() {
      try {
        p11.C_Logout(loginSession);
        p11.C_CloseSession(loginSession);
        p11.C_Finalize();
      } catch { /* already closed */ }
    },
  };
}

export type Hsm = ReturnType<typeof createPkcs11Hsm>;
