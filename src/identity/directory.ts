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
  /** Users only: the sign-in name. */
  userPrincipalName: string | null;
  /** User-assigned managed identities only: their ARM resource id. */
  resourceId: string | null;
  /** Groups only. */
  mailNickname: string | null;
  /** Bumped whenever a credential is removed or the principal disabled: tokens of an older generation are refused. */
  credentialGeneration: number;
}

export interface ClientCertificate {
  keyId: string;
  /** base64url SHA-1 / SHA-256 of the certificate's DER, as JWT `x5t` / `x5t#S256` headers carry them. */
  thumbprintSha1: string;
  thumbprintSha256: string;
  certificateDer: Buffer;
  expiresAt: number | null;
}

export interface ClientSecretInfo {
  keyId: string;
  hint: string;
  expiresAt: number | null;
  createdAt: number;
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
  getByUserPrincipalName(upn: string): Promise<Principal | undefined>;
  getByResourceId(resourceId: string): Promise<Principal | undefined>;
  listPrincipals(kind: PrincipalKind): Promise<Principal[]>;
  createUser(input: { tenantId: string; userPrincipalName: string; displayName: string; password: string; enabled?: boolean }): Promise<Principal>;
  /** The user with this UPN and password, if both match (scrypt, constant-time compare). */
  verifyPassword(userPrincipalName: string, password: string): Promise<Principal | undefined>;
  setPassword(objectId: string, password: string): Promise<void>;
  createGroup(input: { tenantId: string; displayName: string; mailNickname: string }): Promise<Principal>;
  /** False when the membership already existed. */
  addMember(groupId: string, memberId: string): Promise<boolean>;
  /** False when there was no such membership. */
  removeMember(groupId: string, memberId: string): Promise<boolean>;
  directMembers(groupId: string): Promise<Principal[]>;
  /** Every group the object is in, directly or through nested groups (cycles are tolerated). */
  memberGroupsOf(objectId: string): Promise<string[]>;
  createManagedIdentity(input: { tenantId: string; resourceId: string; displayName: string }): Promise<Principal>;
  setEnabled(objectId: string, enabled: boolean): Promise<void>;
  deletePrincipal(objectId: string): Promise<boolean>;
  listClientSecrets(objectId: string): Promise<ClientSecretInfo[]>;
  removeClientSecret(objectId: string, keyId: string): Promise<boolean>;
  removeAllClientSecrets(objectId: string): Promise<void>;
  addClientCertificate(objectId: string, certificateDer: Buffer, expiresAt: number | null): Promise<ClientCertificate>;
  listClientCertificates(objectId: string): Promise<ClientCertificate[]>;
  removeClientCertificate(objectId: string, keyId: string): Promise<boolean>;
  /** The certificate of this app whose SHA-1 (`x5t`) or SHA-256 (`x5t#S256`) thumbprint is given, if unexpired. */
  addFederatedCredential(objectId: string, input: Omit<FederatedCredential, 'id'>): Promise<FederatedCredential>;
  listFederatedCredentials(objectId: string): Promise<FederatedCredential[]>;
  removeFederatedCredential(objectId: string, id: string): Promise<boolean>;
  /** The app trusting this issuer and subject, with the audiences it accepts. */
  findFederatedCredential(appId: string, issuer: string, subject: string): Promise<{ principal: Principal; credential: FederatedCredential } | undefined>;
  findClientCertificate(appId: string, thumbprint: { sha1?: string; sha256?: string }): Promise<{ principal: Principal; certificate: ClientCertificate } | undefined>;
  /** Until when (service clock, ms) a user's password sign-ins are locked out, if they are now. */
  signInLockedUntil(objectId: string): Promise<number | undefined>;
  /** Counts a failed password sign-in; the LOCKOUT_THRESHOLD-th in a row locks the user out for LOCKOUT_SECONDS. */
  recordSignInFailure(objectId: string): Promise<void>;
  /** A successful sign-in (or a password reset) starts the count afresh and lifts a lockout. */
  clearSignInFailures(objectId: string): Promise<void>;
}

/** Entra's smart lockout defaults: 10 failed sign-ins in a row lock the account for 60 seconds. */
export const LOCKOUT_THRESHOLD = 10;
export const LOCKOUT_SECONDS = 60;

const hash = (secret: string) => crypto.createHash('sha256').update(secret, 'utf8').digest('hex');

/** The columns migration 0003_identity adds to `principals`, and its tables (typed here, next to their only user). */
export interface IdentityTables {
  principals: Database['principals'] & {
    user_principal_name: string | null;
    password_hash: string | null;
    resource_id: string | null;
    mail_nickname: string | null;
    credential_generation: number;
  };
  group_members: { group_id: string; member_id: string };
  client_certificates: {
    key_id: string; principal_id: string; thumbprint_sha1: string; thumbprint_sha256: string;
    certificate_der: Buffer; expires_at: number | null; created_at: number;
  };
  identity_bindings: { id: string; secret_hash: string; principal_id: string; created_by: string; created_at: number; expires_at: number };
  federated_credentials: { id: string; principal_id: string; name: string; issuer: string; subject: string; audiences: string; created_at: number };
  sign_in_failures: { principal_id: string; failures: number; locked_until: number | null };
}

export interface FederatedCredential { id: string; name: string; issuer: string; subject: string; audiences: string[] }
export type IdentityDatabase = Omit<Database, 'principals'> & IdentityTables;

/**
 * Passwords are chosen by people, so they are stretched with scrypt (Node's built-in; N=2^15, r=8, p=1) and a
 * per-user salt, stored as `scrypt$N$r$p$salt$hash`.
 */
const SCRYPT = { N: 32768, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };
function scrypt(password: string, salt: Buffer, params = SCRYPT): Promise<Buffer> {
  return new Promise((resolve, reject) => crypto.scrypt(password, salt, 32, params, (err, key) => (err ? reject(err) : resolve(key))));
}
async function hashPassword(password: string): Promise<string> {
  const salt = crypto.randomBytes(16);
  const key = await scrypt(password, salt);
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}
async function passwordMatches(password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, expected] = stored.split('$');
  if (scheme !== 'scrypt') return false;
  const key = await scrypt(password, Buffer.from(salt, 'base64'), { N: Number(n), r: Number(r), p: Number(p), maxmem: SCRYPT.maxmem });
  return crypto.timingSafeEqual(key, Buffer.from(expected, 'base64'));
}
/** A fixed hash to compare against when the user does not exist, so timing does not reveal which UPNs exist. */
const DUMMY_PASSWORD_HASH = hashPassword(crypto.randomBytes(16).toString('hex'));

const thumbprint = (der: Buffer, algorithm: 'sha1' | 'sha256') => crypto.createHash(algorithm).update(der).digest('base64url');

function toCertificate(row: IdentityTables['client_certificates']): ClientCertificate {
  return {
    keyId: row.key_id, thumbprintSha1: row.thumbprint_sha1, thumbprintSha256: row.thumbprint_sha256,
    certificateDer: Buffer.from(row.certificate_der), expiresAt: row.expires_at,
  };
}

function toPrincipal(row: IdentityTables['principals']): Principal {
  return {
    objectId: row.object_id,
    tenantId: row.tenant_id,
    kind: row.kind as PrincipalKind,
    appId: row.app_id,
    displayName: row.display_name,
    enabled: Number(row.enabled) === 1,
    userPrincipalName: row.user_principal_name ?? null,
    resourceId: row.resource_id ?? null,
    mailNickname: row.mail_nickname ?? null,
    credentialGeneration: Number(row.credential_generation ?? 0),
  };
}

export function createDirectory(deps: { db: Kysely<Database>; clock: Clock }): Directory {
  const db = deps.db as unknown as Kysely<IdentityDatabase>;
  const getPrincipal = async (objectId: string) => {
    const row = await db.selectFrom('principals').selectAll().where('object_id', '=', objectId).executeTakeFirst();
    return row && toPrincipal(row);
  };
  const findOne = async (column: 'user_principal_name' | 'resource_id', value: string) => {
    const row = await db.selectFrom('principals').selectAll().where(column, '=', value).executeTakeFirst();
    return row && toPrincipal(row);
  };
  const insertPrincipal = async (values: Partial<IdentityTables['principals']> & Pick<IdentityTables['principals'], 'tenant_id' | 'kind' | 'display_name'>) => {
    const row: IdentityTables['principals'] = {
      object_id: crypto.randomUUID(), app_id: null, enabled: 1, created_at: Date.now(), user_principal_name: null,
      password_hash: null, resource_id: null, mail_nickname: null, credential_generation: 0, ...values,
    };
    await db.insertInto('principals').values(row).execute();
    return toPrincipal(row);
  };
  const bumpGeneration = async (objectId: string) => {
    await db.updateTable('principals').set((eb) => ({ credential_generation: eb('credential_generation', '+', 1) })).where('object_id', '=', objectId).execute();
  };
  const clearSignInFailures = async (objectId: string) => {
    await db.deleteFrom('sign_in_failures').where('principal_id', '=', objectId).execute();
  };
  const getByAppId = async (appId: string) => {
    const row = await db.selectFrom('principals').selectAll().where('app_id', '=', appId).executeTakeFirst();
    return row && toPrincipal(row);
  };
  return {
    getPrincipal,
    getByAppId,
    async createServicePrincipal({ displayName, tenantId }) {
      return insertPrincipal({ tenant_id: tenantId, kind: 'ServicePrincipal', app_id: crypto.randomUUID(), display_name: displayName });
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
    getByUserPrincipalName: (upn) => findOne('user_principal_name', upn.toLowerCase()),
    getByResourceId: (resourceId) => findOne('resource_id', resourceId.toLowerCase()),
    async listPrincipals(kind) {
      const rows = await db.selectFrom('principals').selectAll().where('kind', '=', kind).orderBy('created_at').execute();
      return rows.map(toPrincipal);
    },
    async createUser({ tenantId, userPrincipalName, displayName, password, enabled = true }) {
      return insertPrincipal({
        tenant_id: tenantId, kind: 'User', display_name: displayName, enabled: enabled ? 1 : 0,
        // UPNs compare case-insensitively, as Entra's do.
        user_principal_name: userPrincipalName.toLowerCase(), password_hash: await hashPassword(password),
      });
    },
    async verifyPassword(userPrincipalName, password) {
      const row = await db.selectFrom('principals').selectAll()
        .where('user_principal_name', '=', userPrincipalName.toLowerCase()).where('kind', '=', 'User').executeTakeFirst();
      const ok = await passwordMatches(password, row?.password_hash ?? await DUMMY_PASSWORD_HASH);
      return row && ok ? toPrincipal(row) : undefined;
    },
    async setPassword(objectId, password) {
      await db.updateTable('principals').set({ password_hash: await hashPassword(password) }).where('object_id', '=', objectId).execute();
      await bumpGeneration(objectId);
      await clearSignInFailures(objectId);
    },
    async signInLockedUntil(objectId) {
      const row = await db.selectFrom('sign_in_failures').select('locked_until').where('principal_id', '=', objectId).executeTakeFirst();
      const until = row?.locked_until === null || row?.locked_until === undefined ? undefined : Number(row.locked_until);
      return until !== undefined && until > deps.clock.now() ? until : undefined;
    },
    async recordSignInFailure(objectId) {
      await db.insertInto('sign_in_failures').values({ principal_id: objectId, failures: 1, locked_until: null })
        .onConflict((oc) => oc.column('principal_id').doUpdateSet((eb) => ({ failures: eb('sign_in_failures.failures', '+', 1) }))).execute();
      // The threshold-th failure locks the account and starts a new count (so each lockout takes another full series).
      await db.updateTable('sign_in_failures').set({ failures: 0, locked_until: deps.clock.now() + LOCKOUT_SECONDS * 1000 })
        .where('principal_id', '=', objectId).where('failures', '>=', LOCKOUT_THRESHOLD).execute();
    },
    clearSignInFailures,
    createGroup: ({ tenantId, displayName, mailNickname }) =>
      insertPrincipal({ tenant_id: tenantId, kind: 'Group', display_name: displayName, mail_nickname: mailNickname }),
    async addMember(groupId, memberId) {
      const result = await db.insertInto('group_members').values({ group_id: groupId, member_id: memberId })
        .onConflict((oc) => oc.columns(['group_id', 'member_id']).doNothing()).executeTakeFirst();
      return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
    },
    async removeMember(groupId, memberId) {
      const result = await db.deleteFrom('group_members').where('group_id', '=', groupId).where('member_id', '=', memberId).executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    },
    async directMembers(groupId) {
      const rows = await db.selectFrom('group_members').innerJoin('principals', 'principals.object_id', 'group_members.member_id')
        .selectAll('principals').where('group_members.group_id', '=', groupId).orderBy('principals.created_at').execute();
      return rows.map(toPrincipal);
    },
    async memberGroupsOf(objectId) {
      const found = new Set<string>();
      let frontier = [objectId];
      while (frontier.length) {
        const rows = await db.selectFrom('group_members').select('group_id').where('member_id', 'in', frontier).execute();
        frontier = rows.map((r) => r.group_id).filter((g) => g !== objectId && !found.has(g));
        frontier = [...new Set(frontier)];
        frontier.forEach((g) => found.add(g));
      }
      return [...found];
    },
    createManagedIdentity: ({ tenantId, resourceId, displayName }) => insertPrincipal({
      // A managed identity's client id is its app id; its principal id is the object id.
      tenant_id: tenantId, kind: 'ManagedIdentity', app_id: crypto.randomUUID(), display_name: displayName, resource_id: resourceId.toLowerCase(),
    }),
    async setEnabled(objectId, enabled) {
      await db.updateTable('principals').set({ enabled: enabled ? 1 : 0 }).where('object_id', '=', objectId).execute();
      if (!enabled) await bumpGeneration(objectId);
    },
    async deletePrincipal(objectId) {
      const result = await db.deleteFrom('principals').where('object_id', '=', objectId).executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    },
    async listClientSecrets(objectId) {
      const rows = await db.selectFrom('client_secrets').select(['key_id', 'hint', 'expires_at', 'created_at'])
        .where('principal_id', '=', objectId).orderBy('created_at').execute();
      return rows.map((r) => ({ keyId: r.key_id, hint: r.hint, expiresAt: r.expires_at === null ? null : Number(r.expires_at), createdAt: Number(r.created_at) }));
    },
    async removeClientSecret(objectId, keyId) {
      const result = await db.deleteFrom('client_secrets').where('principal_id', '=', objectId).where('key_id', '=', keyId).executeTakeFirst();
      const removed = Number(result.numDeletedRows) > 0;
      if (removed) await bumpGeneration(objectId);
      return removed;
    },
    async removeAllClientSecrets(objectId) {
      await db.deleteFrom('client_secrets').where('principal_id', '=', objectId).execute();
      await bumpGeneration(objectId);
    },
    async addClientCertificate(objectId, certificateDer, expiresAt) {
      const row = {
        key_id: crypto.randomUUID(), principal_id: objectId,
        thumbprint_sha1: thumbprint(certificateDer, 'sha1'), thumbprint_sha256: thumbprint(certificateDer, 'sha256'),
        certificate_der: certificateDer, expires_at: expiresAt, created_at: Date.now(),
      };
      await db.insertInto('client_certificates').values(row).execute();
      return toCertificate(row);
    },
    async listClientCertificates(objectId) {
      const rows = await db.selectFrom('client_certificates').selectAll().where('principal_id', '=', objectId).orderBy('created_at').execute();
      return rows.map(toCertificate);
    },
    async removeClientCertificate(objectId, keyId) {
      const result = await db.deleteFrom('client_certificates').where('principal_id', '=', objectId).where('key_id', '=', keyId).executeTakeFirst();
      const removed = Number(result.numDeletedRows) > 0;
      if (removed) await bumpGeneration(objectId);
      return removed;
    },
    async findClientCertificate(appId, { sha1, sha256 }) {
      const principal = await getByAppId(appId);
      if (!principal || (!sha1 && !sha256)) return undefined;
      const row = await db.selectFrom('client_certificates').selectAll().where('principal_id', '=', principal.objectId)
        .where((eb) => (sha256 ? eb('thumbprint_sha256', '=', sha256) : eb('thumbprint_sha1', '=', sha1!))).executeTakeFirst();
      if (!row || (row.expires_at !== null && Number(row.expires_at) <= Date.now())) return undefined;
      return { principal, certificate: toCertificate(row) };
    },
    async addFederatedCredential(objectId, input) {
      const row = {
        id: crypto.randomUUID(), principal_id: objectId, name: input.name, issuer: input.issuer, subject: input.subject,
        audiences: JSON.stringify(input.audiences), created_at: Date.now(),
      };
      await db.insertInto('federated_credentials').values(row).execute();
      return toFederated(row);
    },
    async listFederatedCredentials(objectId) {
      const rows = await db.selectFrom('federated_credentials').selectAll().where('principal_id', '=', objectId).orderBy('created_at').execute();
      return rows.map(toFederated);
    },
    async removeFederatedCredential(objectId, id) {
      const result = await db.deleteFrom('federated_credentials').where('principal_id', '=', objectId).where('id', '=', id).executeTakeFirst();
      const removed = Number(result.numDeletedRows) > 0;
      if (removed) await bumpGeneration(objectId);
      return removed;
    },
    async findFederatedCredential(appId, issuer, subject) {
      const principal = await getByAppId(appId);
      if (!principal) return undefined;
      const row = await db.selectFrom('federated_credentials').selectAll().where('principal_id', '=', principal.objectId)
        .where('issuer', '=', issuer).where('subject', '=', subject).executeTakeFirst();
      return row && { principal, credential: toFederated(row) };
    },
  };
}

function toFederated(row: IdentityTables['federated_credentials']): FederatedCredential {
  return { id: row.id, name: row.name, issuer: row.issuer, subject: row.subject, audiences: JSON.parse(row.audiences) as string[] };
}
