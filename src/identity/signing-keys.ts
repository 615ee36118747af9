import crypto from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database } from '../storage/schema.js';
import type { Keyring } from '../crypto/envelope.js';

export interface SigningKey {
  kid: string;
  privateKey: crypto.KeyObject;
}

export interface SigningKeys {
  /** The key new tokens are signed with (created on first use). */
  current(): Promise<SigningKey>;
  /** The public key for a kid, also one another node created after this one loaded its keys. */
  publicKey(kid: string): Promise<crypto.KeyObject | undefined>;
  jwks(): Promise<{ keys: object[] }>;
}

/**
 * Token signing keys live in the database, the private half sealed by the root key, so a token issued by one node
 * verifies on every node. Retired keys keep verifying (they stay in the JWKS) until their tokens have expired.
 */
export function createSigningKeys(deps: { db: Kysely<Database>; keyring: Keyring }): SigningKeys {
  const { db, keyring } = deps;
  const publicKeys = new Map<string, crypto.KeyObject>();
  let currentKey: SigningKey | undefined;

  async function load() {
    const rows = await db.selectFrom('signing_keys').selectAll().orderBy('created_at', 'desc').execute();
    for (const row of rows) publicKeys.set(row.kid, crypto.createPublicKey({ key: JSON.parse(row.public_jwk), format: 'jwk' }));
    return rows;
  }

  async function generate(): Promise<void> {
    const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwk = publicKey.export({ format: 'jwk' });
    const kid = crypto.createHash('sha256').update(JSON.stringify([jwk.n, jwk.e])).digest('base64url').slice(0, 27);
    const der = privateKey.export({ format: 'der', type: 'pkcs8' });
    await db.insertInto('signing_keys').values({
      kid,
      sealed_private_key: keyring.sealSystem('signing-keys', kid, der),
      public_jwk: JSON.stringify(jwk),
      created_at: Date.now(),
      retired_at: null,
    }).onConflict((oc) => oc.column('kid').doNothing()).execute();
  }

  return {
    async current() {
      if (currentKey) return currentKey;
      let rows = (await load()).filter((r) => r.retired_at === null);
      if (!rows.length) {
        await generate();
        rows = (await load()).filter((r) => r.retired_at === null);
      }
      const row = rows[0];
      const der = keyring.openSystem('signing-keys', row.kid, row.sealed_private_key);
      currentKey = { kid: row.kid, privateKey: crypto.createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }) };
      return currentKey;
    },
    async publicKey(kid) {
      if (!publicKeys.has(kid)) await load();
      return publicKeys.get(kid);
    },
    async jwks() {
      await load();
      return {
        keys: [...publicKeys.entries()].map(([kid, key]) => ({ ...key.export({ format: 'jwk' }), kid, use: 'sig', kty: 'RSA', alg: 'RS256' })),
      };
    },
  };
}
