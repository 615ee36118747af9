import crypto from 'node:crypto';

/**
 * AES-256-GCM envelope. Every ciphertext is bound to an identity string used as additional authenticated data:
 * a ciphertext copied to another row (another vault, name or version) fails to decrypt.
 * Layout: 0x01 | iv (12) | tag (16) | ciphertext.
 */
const FORMAT = 1;
const IV = 12;
const TAG = 16;

export function seal(key: Buffer, identity: string, plaintext: Buffer): Buffer {
  const iv = crypto.randomBytes(IV);
  const cipher = crypto.createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(identity, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([Buffer.from([FORMAT]), iv, cipher.getAuthTag(), body]);
}

export class EnvelopeError extends Error {}

export function open(key: Buffer, identity: string, sealed: Buffer): Buffer {
  if (sealed.length < 1 + IV + TAG || sealed[0] !== FORMAT) throw new EnvelopeError('unrecognised ciphertext format');
  const decipher = crypto.createDecipheriv('aes-256-gcm', key, sealed.subarray(1, 1 + IV));
  decipher.setAAD(Buffer.from(identity, 'utf8'));
  decipher.setAuthTag(sealed.subarray(1 + IV, 1 + IV + TAG));
  try {
    return Buffer.concat([decipher.update(sealed.subarray(1 + IV + TAG)), decipher.final()]);
  } catch {
    throw new EnvelopeError('ciphertext failed authentication');
  }
}

/** Derives a purpose-specific key from the root key, so one root key never encrypts two kinds of thing. */
export function deriveKey(rootKey: Buffer, purpose: string): Buffer {
  return Buffer.from(crypto.hkdfSync('sha256', rootKey, Buffer.alloc(0), `coffer:${purpose}`, 32));
}

/**
 * The keyring: per-vault data keys, wrapped by the root key, unwrapped once and kept in memory.
 * Values are sealed with the vault's data key and their identity `vault/collection/name/version`.
 */
export interface Keyring {
  newWrappedDataKey(vaultId: string): Buffer;
  sealValue(vaultId: string, wrappedDataKey: Buffer, identity: string, plaintext: Buffer): Buffer;
  openValue(vaultId: string, wrappedDataKey: Buffer, identity: string, sealed: Buffer): Buffer;
  /** Seal something that belongs to the deployment rather than a vault (signing keys, backups). */
  sealSystem(purpose: string, identity: string, plaintext: Buffer): Buffer;
  openSystem(purpose: string, identity: string, sealed: Buffer): Buffer;
}

export function createKeyring(callerRootKey: Buffer): Keyring {
  // A private copy: callers wipe their root key buffer once the keyring exists, and system keys derive lazily from it.
  const rootKey = Buffer.from(callerRootKey);
  const kek = deriveKey(rootKey, 'vault-key-wrapping');
  const dataKeys = new Map<string, Buffer>();
  const systemKeys = new Map<string, Buffer>();
  const dataKey = (vaultId: string, wrapped: Buffer) => {
    let key = dataKeys.get(vaultId);
    if (!key) {
      key = open(kek, `vault-data-key:${vaultId}`, wrapped);
      dataKeys.set(vaultId, key);
    }
    return key;
  };
  const systemKey = (purpose: string) => {
    let key = systemKeys.get(purpose);
    if (!key) systemKeys.set(purpose, (key = deriveKey(rootKey, purpose)));
    return key;
  };
  return {
    newWrappedDataKey: (vaultId) => seal(kek, `vault-data-key:${vaultId}`, crypto.randomBytes(32)),
    sealValue: (vaultId, wrapped, identity, plaintext) => seal(dataKey(vaultId, wrapped), identity, plaintext),
    openValue: (vaultId, wrapped, identity, sealed) => open(dataKey(vaultId, wrapped), identity, sealed),
    sealSystem: (purpose, identity, plaintext) => seal(systemKey(purpose), identity, plaintext),
    openSystem: (purpose, identity, sealed) => open(systemKey(purpose), identity, sealed),
  };
}
