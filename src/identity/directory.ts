import crypto from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database } from '../storage/schema.js';
import type { Clock } from '../clock.js';

export type PrincipalKind = 'ServicePrincipal' | 'User' | 'ManagedIdentity' | 'Group';

export interface Principal {
  objectId: string;
  tenantId: string;
  kind: PrincipalKind;
  appId: string | null;
  displayName: string;
  enabled: boolean;
}

export interface IssuedClientSecret {
  keyId: string;
  /** Shown once, at creation; only its hash is stored. */
  secretText: string;
  expiresAt: number | null;
}

/**
 * The directory: principals of the tenant and their credentials. Client secrets are 256-bit random strings,
 * so a fast hash (SHA-256) is a sound verifier for them — no password-stretching needed, and token requests stay cheap.
 */
export interface Directory {
  createServicePrincipal(input: { displayName: string; tenantId: string }): Promise<Principal>;
  addClientSecret(objectId: string, opts?: { expiresAt?: number | null }): Promise<IssuedClientSecret>;
  /** The principal whose app id and client secret these are, if the secret is valid and unexpired. */
  verifyClientSecret(appId: string, secretText: string): Promise<Principal | undefined>;
  getPrincipal(objectId: string): Promise<Principal | undefined>;
  getByAppId(appId: string): Promise<Principal | undefined>;
}

const hash = (secret: string) => crypto.createHash('sha256').update(secret, 'utf8').digest('hex');

function toPrincipal(row: Database['principals']): Principal {
  return {
    objectId: row.object_id,
    tenantId: row.tenant_id,
    kind: row.kind as PrincipalKind,
    appId: row.app_id,
    displayName: row.display_name,
    enabled: row.enabled === 1,
  };
}

export function createDirectory(deps: { db: Kysely<Database>; clock: Clock }): Directory {
  const { db } = deps;
  const getPrincipal = async (objectId: string) => {
    const row = await db.selectFrom('principals').selectAll().where('object_id', '=', objectId).executeTakeFirst();
    return row && toPrincipal(row);
  };
  const getByAppId = async (appId: string) => {
    const row = await db.selectFrom('principals').selectAll().where('app_id', '=', appId).executeTakeFirst();
    return row && toPrincipal(row);
  };
  return {
    getPrincipal,
    getByAppId,
    async createServicePrincipal({ displayName, tenantId }) {
      const row = {
        object_id: crypto.randomUUID(),
        tenant_id: tenantId,
        kind: 'ServicePrincipal',
        app_id: crypto.randomUUID(),
        display_name: displayName,
        enabled: 1,
        created_at: Date.now(),
      };
      await db.insertInto('principals').values(row).execute();
      return toPrincipal(row);
    },
    async addClientSecret(objectId, opts = {}) {
      // Shaped like Entra's client secrets: a 3-character hint, a `~`, then 256 bits of randomness.
      const random = crypto.randomBytes(32).toString('base64url');
      const secretText = `${random.slice(0, 3)}8Q~${random.slice(3)}`;
      const keyId = crypto.randomUUID();
      const expiresAt = opts.expiresAt ?? null;
      await db.insertInto('client_secrets').values({
        key_id: keyId,
        principal_id: objectId,
        secret_hash: hash(secretText),
        hint: secretText.slice(0, 3),
        expires_at: expiresAt,
        created_at: Date.now(),
      }).execute();
      return { keyId, secretText, expiresAt };
    },
    async verifyClientSecret(appId, secretText) {
      const principal = await getByAppId(appId);
      if (!principal) return undefined;
      const candidate = Buffer.from(hash(secretText), 'hex');
      const secrets = await db.selectFrom('client_secrets').select(['secret_hash', 'expires_at'])
        .where('principal_id', '=', principal.objectId).execute();
      const now = Date.now();
      const match = secrets.some((s) => crypto.timingSafeEqual(Buffer.from(s.secret_hash, 'hex'), candidate)
        && (s.expires_at === null || s.expires_at > now));
      return match ? principal : undefined;
    },
  };
}
