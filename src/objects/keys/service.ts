import crypto, { type KeyObject } from 'node:crypto';
import { CompactSign } from 'jose';
import { createCryptoPool, type CryptoPool } from './crypto-pool.js';
import type { Hsm, HsmKey } from './hsm.js';
import type { Vault } from '../../control-plane/vaults.js';
import type { Endpoints } from '../../endpoints.js';
import type { Keyring } from '../../crypto/envelope.js';
import type { Clock } from '../../clock.js';
import { badParameter, forbidden } from '../../http/errors.js';
import type { ObjectStore, StoredVersion, VersionMeta, VaultRef } from '../store.js';
import { applyAttributes, checkTags, seconds, versionAttributes, type AttributesInput } from '../collection-helpers.js';
import { createLifecycleOperations, objectErrors } from '../lifecycle.js';
import {
  CURVE_NAMES, CryptoFailure, RSA_SIZES, baseKeyType, curveOf, encrypt, exportPrivate, generateSoftwareKey,
  loadPrivate, privateKeyFromJwk, publicJwk, publicKeyFromJwk, verifyDigest,
  type CurveName, type ImportJwk, type KeyType, type PublicJwk, type SoftwareKeyType,
} from './key-crypto.js';
import { addIsoDuration, isRotationDue, parsePolicy, policyResponse, type RotationPolicyInput, type StoredRotationPolicy } from './rotation-policy.js';
import { checkObjectName } from '../names.js';
import type { VaultEventHooks } from '../../events/event-grid.js';
import { managedByKeyVault, refusedAsManaged } from '../certificates/managed-guard.js';
import { createLru } from './lru.js';
import {
  RELEASE_ENCRYPTIONS, createReleaseAuthority, wrapForRelease,
  type ReleaseEncryption, type ReleasePolicyInput, type StoredReleasePolicy,
} from './release.js';

/** Azure's limits and defaults for keys. */
export const KEY_OPERATIONS = ['encrypt', 'decrypt', 'sign', 'verify', 'wrapKey', 'unwrapKey', 'import', 'export'] as const;
const DEFAULT_OPS: Record<SoftwareKeyType, string[]> = {
  RSA: ['encrypt', 'decrypt', 'sign', 'verify', 'wrapKey', 'unwrapKey'],
  EC: ['sign', 'verify'],
};
const KEY_TYPES: KeyType[] = ['RSA', 'EC', 'RSA-HSM', 'EC-HSM'];
const PUBLIC_EXPONENTS = [3, 65537];
/** After exp (or before nbf) a key may still open what it protected earlier, never protect anything new. */
const ALLOWED_OUTSIDE_VALIDITY = new Set(['decrypt', 'unwrapKey', 'verify']);

export interface CreateKeyInput {
  kty: string;
  key_size?: number;
  public_exponent?: number;
  crv?: string;
  key_ops?: string[];
  attributes?: AttributesInput & { exportable?: boolean };
  tags?: Record<string, string>;
  release_policy?: ReleasePolicyInput;
}

export interface ImportKeyInput {
  Hsm?: boolean;
  key: ImportJwk & { key_ops?: string[] };
  attributes?: AttributesInput & { exportable?: boolean };
  tags?: Record<string, string>;
  release_policy?: ReleasePolicyInput;
}

export interface UpdateKeyInput {
  key_ops?: string[];
  attributes?: AttributesInput;
  tags?: Record<string, string>;
  release_policy?: ReleasePolicyInput;
}

export interface ReleaseKeyInput {
  target: string;
  nonce?: string;
  enc?: ReleaseEncryption;
}

/** What a key version records beside its sealed private key. */
interface KeyMeta extends VersionMeta {
  kty: KeyType;
  keyOps: string[];
  publicKey: PublicJwk;
  exportable?: boolean;
  /** The token object's CKA_ID of an HSM version (not secret), so token objects nobody references can be collected. */
  hsmId?: string;
  /** Under which attestation an exportable key may leave (secure key release). */
  releasePolicy?: StoredReleasePolicy;
  /** The key's rotation policy, carried from version to version (a policy belongs to the name). */
  rotationPolicy?: StoredRotationPolicy;
}

/** A key version's material as stored: the public key for the metadata, the payload to seal (and the token id of HSM keys). */
interface KeyMaterial { publicKey: KeyObject; payload: Buffer; hsmId?: string }

export type CryptoOperation = 'encrypt' | 'decrypt' | 'wrapKey' | 'unwrapKey';

const b64url = (data: Buffer) => data.toString('base64url');
/** Byte fields arrive base64url; standard base64 is tolerated (node decodes both). */
const bytes = (value: string) => Buffer.from(value, 'base64');

/** The payload of an HSM key version: a reference to the token object, never key material. */
interface HsmReference { pkcs11Id: string }

export function createKeysService(deps: {
  store: ObjectStore; endpoints: Endpoints; keyring: Keyring; clock: Clock; cryptoPool?: CryptoPool;
  /** Publishes KeyNewVersionCreated for every new version (create, import, rotation). */
  events?: VaultEventHooks;
  /** The PKCS#11 token for premium vaults' -HSM keys; without one they are refused. */
  hsm?: Hsm;
  /**
   * Secure key release: the attestation authorities the operator trusts, and the deployment key that signs the
   * released-key JWS (the token service's signing key, published in its JWKS). Without it no key can be exportable.
   */
  release?: { authorities: string[]; signingKey: () => Promise<{ kid: string; privateKey: KeyObject }> };
}) {
  const { store, endpoints, keyring, clock } = deps;
  const pool = deps.cryptoPool ?? createCryptoPool();
  const releaseAuthority = createReleaseAuthority({ authorities: deps.release?.authorities ?? [] });
  /**
   * Parsed private keys by vault/name/version. A version's key material never changes, so an entry stays right for
   * the version's whole life; every request still reads the version's current attributes (enabled, nbf/exp,
   * key_ops) and a deleted or purged key is refused by that read before the cache is consulted. Unwrapping the
   * envelope and parsing the PKCS#8 (about 0.5–0.8 ms here) happen once per version instead of once per request.
   */
  const privateKeys = createLru<string, KeyObject>(1000);
  const privateKeyOf = (vault: VaultRef, v: StoredVersion) => {
    const cacheKey = `${vault.id}/${v.name.toLowerCase()}/${v.version}`;
    let key = privateKeys.get(cacheKey);
    if (!key) privateKeys.set(cacheKey, (key = loadPrivate(v.open())));
    return { key, cacheKey };
  };
  const base = (vault: Vault) => endpoints.vaultUrl(vault.name);

  const checkName = checkObjectName;
  const errors = objectErrors('Key');
  const keyNotFound = errors.notFound;
  const rethrow = errors.rethrow;

  const checkOps = (ops: string[] | undefined) => {
    for (const op of ops ?? []) {
      if (!(KEY_OPERATIONS as readonly string[]).includes(op)) {
        throw badParameter(`Invalid key operation: ${op}. Valid operations are ${KEY_OPERATIONS.join(', ')}.`);
      }
    }
  };

  /** Software keys only: HSM key types need a premium vault and a PKCS#11 token. */
  const checkProtection = (vault: Vault, hsm: boolean): Hsm | undefined => {
    if (!hsm) return;
    if (vault.properties.sku.name !== 'premium') throw badParameter('Hardware key operation not allowed on standard vault');
    if (!deps.hsm) throw badParameter('Hardware key operation not available: this Coffer deployment has no PKCS#11 module configured.');
    return deps.hsm;
  };

  const kid = (vault: Vault, v: StoredVersion) => `${base(vault)}/keys/${v.name}/${v.version}`;
  const keyMeta = (v: StoredVersion) => v.meta as KeyMeta;

  const attributes = (vault: Vault, v: StoredVersion) => ({
    ...versionAttributes(vault, v),
    exportable: keyMeta(v).exportable,
  });

  const bundle = (vault: Vault, v: StoredVersion) => {
    const meta = keyMeta(v);
    return {
      key: { kid: kid(vault, v), kty: meta.kty, key_ops: meta.keyOps, ...publicFields(meta.publicKey) },
      attributes: attributes(vault, v),
      tags: meta.tags,
      managed: meta.managed,
      ...(meta.releasePolicy ? { release_policy: meta.releasePolicy } : {}),
    };
  };
  const publicFields = (jwk: PublicJwk) => {
    const { kty: _kty, ...fields } = jwk;
    return fields;
  };

  const item = (vault: Vault, v: StoredVersion, withVersion: boolean) => ({
    kid: withVersion ? kid(vault, v) : `${base(vault)}/keys/${v.name}`,
    attributes: attributes(vault, v),
    tags: v.meta.tags,
    managed: v.meta.managed,
  });


  /**
   * Stores a new version of `name`, carrying the name's rotation policy over from the current version; `verb` names
   * the operation in the refusal of a certificate's managed key.
   */
  async function storeVersion(vault: VaultRef, name: string, key: KeyMaterial, meta: VersionMeta & { kty: KeyType; keyOps: string[] }, verb: 'create' | 'import' | 'rotate',
    current: StoredVersion | undefined) {
    const rotationPolicy = current && keyMeta(current).rotationPolicy;
    const full: KeyMeta = {
      ...meta, publicKey: publicJwk(key.publicKey), ...(key.hsmId ? { hsmId: key.hsmId } : {}), ...(rotationPolicy ? { rotationPolicy } : {}),
    };
    // Its event is written in the version's own transaction.
    const hook = await deps.events?.objectVersionCreated(vault, 'Key');
    return store.create(vault, 'keys', name, key.payload, full, { hook }).catch((e) => rethrow(refusedAsManaged(e, 'keys', verb), name));
  }

  /**
   * The name's current version, read before any key is generated or imported into the token: a certificate's managed
   * key is refused up front (the store refuses it again inside the write, exact under concurrency).
   */
  async function currentUnlessManaged(vault: VaultRef, name: string, verb: 'create' | 'import') {
    const current = await store.get(vault, 'keys', name);
    if (current?.meta.managed) throw managedByKeyVault('keys', verb);
    return current;
  }

  /** New key material: generated in the token for -HSM types, in software otherwise. */
  async function generate(kty: KeyType, spec: { size?: number; publicExponent?: number; curve?: CurveName }, hsm?: Hsm): Promise<KeyMaterial> {
    if (kty.endsWith('-HSM')) return tokenKey(await hsm!.generate({ kty: baseKeyType(kty), ...spec }));
    return software(await generateSoftwareKey({ kty: baseKeyType(kty), ...spec }));
  }
  const tokenKey = (key: HsmKey): KeyMaterial =>
    ({ publicKey: key.publicKey, payload: Buffer.from(JSON.stringify({ pkcs11Id: key.id } satisfies HsmReference)), hsmId: key.id });
  const software = (key: KeyObject): KeyMaterial => ({ publicKey: crypto.createPublicKey(key), payload: exportPrivate(key) });
  const hsmReference = (v: StoredVersion) => (JSON.parse(v.open().toString('utf8')) as HsmReference).pkcs11Id;
  const isHsm = (v: StoredVersion) => keyMeta(v).kty.endsWith('-HSM');

  /**
   * Azure's rules for exportable keys: an exportable key needs a release policy, and a policy belongs only to an
   * exportable key. HSM keys here are non-extractable token objects, so they cannot be exportable.
   */
  const exportability = (kty: KeyType, exportable: boolean | undefined, policy: ReleasePolicyInput | undefined) => {
    if (!exportable) {
      if (policy) throw badParameter('A release policy can only be set on an exportable key (attributes.exportable: true).');
      return exportable === undefined ? {} : { exportable };
    }
    if (kty.endsWith('-HSM')) throw badParameter('Exportable HSM keys are not supported by this Coffer deployment: its token keys are non-extractable.');
    if (!policy) throw badParameter('An exportable key must have a release policy (release_policy).');
    if (!deps.release) throw badParameter('Key release is not available: this Coffer deployment has no release signing key.');
    return { exportable, releasePolicy: releaseAuthority.parsePolicy(policy) };
  };

  const metaFrom = (input: UpdateKeyInput, prior: VersionMeta): VersionMeta => {
    const meta = { ...prior };
    if (input.tags !== undefined) meta.tags = input.tags;
    if (input.key_ops !== undefined) meta.keyOps = input.key_ops;
    return applyAttributes(meta, input.attributes);
  };

  async function getVersion(vault: Vault, name: string, version?: string) {
    checkName(name);
    const v = await store.get(vault, 'keys', name, version);
    if (!v) throw keyNotFound(name, version);
    return v;
  }

  /** Enabled and within nbf/exp, as Azure checks before any use of a key's private part. */
  function checkUsable(v: StoredVersion, operation: string) {
    const meta = keyMeta(v);
    if (!meta.enabled) throw forbidden(`Operation ${operation} is not allowed on a disabled key.`, 'KeyDisabled');
    const now = seconds(clock.now());
    if (!ALLOWED_OUTSIDE_VALIDITY.has(operation)) {
      if (meta.exp !== undefined && now >= meta.exp) throw forbidden(`Operation ${operation} is not allowed on an expired key.`, 'KeyExpired');
      if (meta.nbf !== undefined && now < meta.nbf) throw forbidden(`Operation ${operation} is not allowed on a key that is not yet valid.`, 'KeyNotYetValid');
    }
  }

  /** The private key of a version, after the checks Azure makes before any cryptographic operation. */
  async function usableKey(vault: Vault, name: string, version: string | undefined, operation: string) {
    const v = await getVersion(vault, name, version);
    const meta = keyMeta(v);
    checkUsable(v, operation);
    if (!meta.keyOps.includes(operation)) {
      throw forbidden(`Operation ${operation} is not permitted on this key.`, 'KeyOperationForbidden');
    }
    if (isHsm(v)) {
      if (!deps.hsm) throw badParameter('Hardware key operation not available: this Coffer deployment has no PKCS#11 module configured.');
      return { v, hsm: { hsm: deps.hsm, id: hsmReference(v), publicKey: publicKeyFromJwk(meta.publicKey) } };
    }
    return { v, software: privateKeyOf(vault, v) };
  }

  async function rotateVersion(vault: VaultRef, current: StoredVersion) {
    const meta = keyMeta(current);
    const old = publicKeyFromJwk(meta.publicKey);
    const key = await generate(meta.kty, {
      size: old.asymmetricKeyDetails?.modulusLength,
      publicExponent: old.asymmetricKeyDetails?.publicExponent === undefined ? undefined : Number(old.asymmetricKeyDetails.publicExponent),
      curve: curveOf(old),
    }, deps.hsm);
    const expiry = meta.rotationPolicy?.expiryTime;
    const now = clock.now();
    return storeVersion(vault, current.name, key, {
      enabled: true, kty: meta.kty, keyOps: meta.keyOps, tags: meta.tags, exportable: meta.exportable, releasePolicy: meta.releasePolicy,
      ...(expiry ? { exp: seconds(addIsoDuration(now, expiry)) } : {}),
    }, 'rotate', current);
  }

  const lifecycle = createLifecycleOperations({ store, endpoints, keyring }, {
    collection: 'keys', errors, checkName, bundle, item,
    /** An HSM key's backup holds only token references: it restores only where the token holds the keys. */
    beforeRestore: async (vault, doc) => {
      const hsmVersions = doc.versions.filter((v) => String(v.meta.kty).endsWith('-HSM'));
      if (!hsmVersions.length) return;
      const hsm = checkProtection(vault, true)!;
      for (const v of hsmVersions) {
        const { pkcs11Id } = JSON.parse(Buffer.from(v.payload, 'base64').toString('utf8')) as HsmReference;
        if (!(await hsm.has(pkcs11Id))) throw badParameter('Backup blob contains HSM keys that belong to another HSM deployment.');
      }
    },
  });

  return {
    ...lifecycle,

    async create(vault: Vault, name: string, input: CreateKeyInput) {
      checkName(name);
      if (!KEY_TYPES.includes(input.kty as KeyType)) {
        throw badParameter(`Invalid key type: ${input.kty}. Valid key types for a vault are ${KEY_TYPES.join(', ')}.`);
      }
      const kty = input.kty as KeyType;
      const hsm = checkProtection(vault, kty.endsWith('-HSM'));
      checkOps(input.key_ops);
      checkTags(input.tags);
      const family = baseKeyType(kty);
      if (family === 'RSA') {
        if (input.key_size !== undefined && !RSA_SIZES.includes(input.key_size)) {
          throw badParameter(`The specified RSA key size ${input.key_size} is not supported. Supported sizes are ${RSA_SIZES.join(', ')}.`);
        }
        if (input.public_exponent !== undefined && !PUBLIC_EXPONENTS.includes(input.public_exponent)) {
          throw badParameter(`The specified public exponent ${input.public_exponent} is not supported. Supported exponents are ${PUBLIC_EXPONENTS.join(', ')}.`);
        }
      } else if (input.crv !== undefined && !CURVE_NAMES.includes(input.crv as CurveName)) {
        throw badParameter(`Invalid curve name: ${input.crv}. Valid curves are ${CURVE_NAMES.join(', ')}.`);
      }
      const release = exportability(kty, input.attributes?.exportable, input.release_policy);
      const current = await currentUnlessManaged(vault, name, 'create');
      const key = await generate(kty, { size: input.key_size, publicExponent: input.public_exponent, curve: input.crv as CurveName | undefined }, hsm);
      const meta = applyAttributes({ enabled: true }, input.attributes);
      const created = await storeVersion(vault, name, key, {
        ...meta, kty, keyOps: input.key_ops ?? DEFAULT_OPS[family], tags: input.tags, ...release,
      }, 'create', current);
      return bundle(vault, created);
    },

    async import(vault: Vault, name: string, input: ImportKeyInput) {
      checkName(name);
      const requested = input.key.kty as KeyType;
      if (!KEY_TYPES.includes(requested)) throw badParameter(`Invalid key type: ${String(input.key.kty)}. Valid key types for a vault are ${KEY_TYPES.join(', ')}.`);
      // `Hsm: true` (or an -HSM kty) puts the key into the token, where it becomes sensitive and non-extractable.
      const hsm = checkProtection(vault, Boolean(input.Hsm) || requested.endsWith('-HSM'));
      const kty: KeyType = hsm ? `${baseKeyType(requested)}-HSM` : requested;
      checkOps(input.key.key_ops);
      checkTags(input.tags);
      const release = exportability(kty, input.attributes?.exportable, input.release_policy);
      const privateKey = privateKeyFromJwk(input.key);
      const current = await currentUnlessManaged(vault, name, 'import');
      const key = hsm ? tokenKey(await hsm.importKey(privateKey, curveOf(privateKey))) : software(privateKey);
      const meta = applyAttributes({ enabled: true }, input.attributes);
      const created = await storeVersion(vault, name, key, {
        ...meta, kty, keyOps: input.key.key_ops ?? DEFAULT_OPS[baseKeyType(kty)], tags: input.tags, ...release,
      }, 'import', current);
      return bundle(vault, created);
    },

    async get(vault: Vault, name: string, version?: string) {
      return bundle(vault, await getVersion(vault, name, version));
    },

    async update(vault: Vault, name: string, version: string | undefined, input: UpdateKeyInput) {
      checkName(name);
      checkOps(input.key_ops);
      checkTags(input.tags);
      let releasePolicy: StoredReleasePolicy | undefined;
      if (input.release_policy !== undefined) {
        const current = keyMeta(await getVersion(vault, name, version));
        if (!current.exportable) throw badParameter('A release policy can only be set on an exportable key.');
        if (current.releasePolicy?.immutable) throw badParameter('The key release policy is immutable and cannot be changed.');
        releasePolicy = releaseAuthority.parsePolicy(input.release_policy);
      }
      const v = await store.updateMeta(vault, 'keys', name, version, (prior) => {
        const next = metaFrom(input, prior);
        // Re-checked inside the write: an immutable policy set meanwhile is never replaced.
        return releasePolicy && !(prior as KeyMeta).releasePolicy?.immutable ? { ...next, releasePolicy } : next;
      });
      if (!v) throw keyNotFound(name, version);
      return bundle(vault, v);
    },

    async rotate(vault: Vault, name: string) {
      const current = await getVersion(vault, name);
      return bundle(vault, await rotateVersion(vault, current));
    },

    async getRotationPolicy(vault: Vault, name: string) {
      const v = await getVersion(vault, name);
      return policyResponse(`${base(vault)}/keys/${v.name}/rotationpolicy`, keyMeta(v).rotationPolicy);
    },

    async setRotationPolicy(vault: Vault, name: string, input: RotationPolicyInput) {
      checkName(name);
      const now = seconds(clock.now());
      const parsed = parsePolicy(input);
      const v = await store.updateMeta(vault, 'keys', name, undefined, (prior) => {
        const created = (prior as KeyMeta).rotationPolicy?.created ?? now;
        return { ...prior, rotationPolicy: { ...parsed, created, updated: now } };
      });
      if (!v) throw keyNotFound(name);
      return policyResponse(`${base(vault)}/keys/${v.name}/rotationpolicy`, keyMeta(v).rotationPolicy);
    },

    /** The scheduler's pass: rotates the key if its policy says it is due (idempotent: a new version resets the clock). */
    async rotateIfDue(vault: VaultRef, name: string, now: number) {
      const current = await store.get(vault, 'keys', name);
      if (!current || !isRotationDue(keyMeta(current).rotationPolicy, current.created, current.meta.exp, now)) return false;
      await rotateVersion(vault, current);
      return true;
    },

    async crypt(vault: Vault, name: string, version: string | undefined, operation: CryptoOperation, alg: string, value: string) {
      const { v, software, hsm } = await usableKey(vault, name, version, operation);
      const protect = operation === 'encrypt' || operation === 'wrapKey';
      let output: Buffer;
      try {
        if (hsm) {
          // Public-key operations need no token; private ones run inside it.
          output = protect ? encrypt(alg, hsm.publicKey, bytes(value)) : await hsm.hsm.decrypt(hsm.id, hsm.publicKey, alg, bytes(value));
        } else {
          output = await pool.run({ op: protect ? 'encrypt' : 'decrypt', alg, ...software!, input: bytes(value) });
        }
      } catch (err) {
        if (err instanceof CryptoFailure) throw badParameter('The ciphertext could not be decrypted with this key and algorithm.');
        throw err;
      }
      return { kid: kid(vault, v), value: b64url(output) };
    },

    async sign(vault: Vault, name: string, version: string | undefined, alg: string, digest: string) {
      const { v, software, hsm } = await usableKey(vault, name, version, 'sign');
      const signature = hsm ? await hsm.hsm.sign(hsm.id, hsm.publicKey, alg, bytes(digest)) : await pool.run({ op: 'sign', alg, ...software!, input: bytes(digest) });
      return { kid: kid(vault, v), value: b64url(signature) };
    },

    async verify(vault: Vault, name: string, version: string | undefined, alg: string, digest: string, signature: string) {
      const { software, hsm } = await usableKey(vault, name, version, 'verify');
      if (hsm) return { value: await verifyDigest(alg, hsm.publicKey, bytes(digest), bytes(signature)) };
      return { value: await pool.run({ op: 'verify', alg, ...software!, input: bytes(digest), signature: bytes(signature) }) };
    },

    /**
     * Secure key release: the key version's private key, wrapped under the key that the target attestation token
     * vouches for, inside a JWS signed by this deployment. The policy is evaluated on every call.
     */
    async release(vault: Vault, name: string, version: string | undefined, input: ReleaseKeyInput) {
      const v = await getVersion(vault, name, version);
      checkUsable(v, 'release');
      const meta = keyMeta(v);
      if (!meta.exportable || !meta.releasePolicy || !deps.release) throw badParameter('The key is not exportable: only an exportable key with a release policy can be released.');
      const enc = input.enc ?? 'CKM_RSA_AES_KEY_WRAP';
      if (!RELEASE_ENCRYPTIONS.includes(enc)) throw badParameter(`Invalid key encryption algorithm: ${enc}. Valid algorithms are ${RELEASE_ENCRYPTIONS.join(', ')}.`);
      const target = await releaseAuthority.authorize(meta.releasePolicy, input.target);
      const pkcs8 = v.open();
      let keyHsm: string;
      try {
        keyHsm = wrapForRelease(pkcs8, target, enc);
      } finally {
        pkcs8.fill(0);
      }
      const released = bundle(vault, v);
      const payload = {
        request: { enc, kid: released.key.kid, ...(input.nonce !== undefined ? { nonce: input.nonce } : {}) },
        response: { key: { ...released, key: { ...released.key, key_hsm: keyHsm } } },
      };
      const signer = await deps.release.signingKey();
      const value = await new CompactSign(Buffer.from(JSON.stringify(payload)))
        .setProtectedHeader({ alg: 'RS256', kid: signer.kid })
        .sign(signer.privateKey);
      return { value };
    },

    randomBytes(count: number) {
      return { value: b64url(crypto.randomBytes(count)) };
    },
  };
}

export type KeysService = ReturnType<typeof createKeysService>;
