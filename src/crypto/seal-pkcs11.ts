import crypto from 'node:crypto';
import type { SettingsRepository } from '../storage/settings.js';

/**
 * The `pkcs11` seal: the root key exists on disk (in the database) only wrapped by an AES-256 key that never leaves
 * the PKCS#11 token (sensitive, non-extractable, AES-GCM inside the token). Every node of a cluster needs the same
 * token (or a token holding the same seal key) and PIN. The first start creates the seal key and a random root key;
 * when two nodes race, the first wrapped root key stored wins and the loser destroys its own seal key.
 */
export interface TokenSealer {
  createSealKey(): Promise<string>;
  sealEncrypt(id: string, plaintext: Buffer, aad: Buffer): Promise<Buffer>;
  sealDecrypt(id: string, sealed: Buffer, aad: Buffer): Promise<Buffer>;
  destroy(id: string): Promise<void>;
}

const AAD = Buffer.from('coffer root key v1');

export async function tokenSealedRootKey(token: TokenSealer, settings: SettingsRepository): Promise<Buffer> {
  const stored = await settings.get('seal.pkcs11');
  if (stored) return open(token, stored);
  const rootKey = crypto.randomBytes(32);
  const keyId = await token.createSealKey();
  const ours = JSON.stringify({ keyId, wrapped: (await token.sealEncrypt(keyId, rootKey, AAD)).toString('base64') });
  rootKey.fill(0);
  const inForce = await settings.putIfAbsent('seal.pkcs11', ours);
  if (inForce !== ours) await token.destroy(keyId);
  return open(token, inForce);
}

async function open(token: TokenSealer, stored: string): Promise<Buffer> {
  const { keyId, wrapped } = JSON.parse(stored) as { keyId: string; wrapped: string };
  return token.sealDecrypt(keyId, Buffer.from(wrapped, 'base64'), AAD);
}
