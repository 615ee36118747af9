import type { Vault } from '../../control-plane/vaults.js';
import type { Endpoints } from '../../endpoints.js';
import type { Keyring } from '../../crypto/envelope.js';
import { EnvelopeError } from '../../crypto/envelope.js';
import { KeyVaultError, badParameter, conflict, forbidden, notFound } from '../../http/errors.js';
import { StoreError, type ObjectStore, type StoredVersion, type DeletedObject, type VersionMeta, type Page } from '../store.js';
import { recoveryLevel } from '../recovery.js';

/** Azure's limits for secrets. */
export const SECRET_NAME = /^[0-9a-zA-Z-]{1,127}$/;
export const MAX_VALUE_CHARS = 25_600;
export const MAX_TAGS = 15;
const HELP = 'For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182';

export interface SecretAttributesInput {
  enabled?: boolean;
  nbf?: number | null;
  exp?: number | null;
}

export interface SetSecretInput {
  value: string;
  contentType?: string;
  tags?: Record<string, string>;
  attributes?: SecretAttributesInput;
}

export type UpdateSecretInput = Omit<SetSecretInput, 'value'>;

const seconds = (ms: number) => Math.floor(ms / 1000);

export function createSecretsService(deps: { store: ObjectStore; endpoints: Endpoints; keyring: Keyring }) {
  const { store, endpoints, keyring } = deps;
  const base = (vault: Vault) => endpoints.vaultUrl(vault.name);

  const checkName = (name: string) => {
    if (!SECRET_NAME.test(name)) {
      throw badParameter(`The request URI contains an invalid name: ${name}. Secret names may contain only 0-9, a-z, A-Z and -, and be 1-127 characters long.`);
    }
  };
  const checkTags = (tags?: Record<string, string>) => {
    if (!tags) return;
    const entries = Object.entries(tags);
    if (entries.length > MAX_TAGS) throw badParameter(`Too many tags. The maximum number of tags is ${MAX_TAGS}.`);
    for (const [k, v] of entries) {
      if (k.length > 512 || v.length > 256) throw badParameter('Tag names may be at most 512 and tag values at most 256 characters long.');
    }
  };
  const secretNotFound = (name: string, version?: string) => notFound('SecretNotFound',
    `A secret with (name/id) ${version ? `${name}/${version}` : name} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. ${HELP}`);
  const deletedNotFound = (name: string) => notFound('SecretNotFound', `Deleted Secret not found: ${name}`);
  const rethrow = (err: unknown, name: string): never => {
    if (err instanceof StoreError) {
      if (err.reason === 'DeletedButRecoverable') {
        throw new KeyVaultError(409, 'Conflict', `Secret ${name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can be recovered or purged.`, 'ObjectIsDeletedButRecoverable');
      }
      if (err.reason === 'AlreadyExists') throw conflict('Conflict', `Secret ${name} already exists.`);
      if (err.reason === 'BadContinuation') throw badParameter(err.message);
    }
    throw err;
  };

  const attributes = (vault: Vault, v: StoredVersion) => ({
    enabled: v.meta.enabled,
    nbf: v.meta.nbf,
    exp: v.meta.exp,
    created: seconds(v.created),
    updated: seconds(v.updated),
    recoveryLevel: recoveryLevel(vault.properties),
    recoverableDays: vault.properties.softDeleteRetentionInDays,
  });

  const item = (vault: Vault, v: StoredVersion, withVersion: boolean) => ({
    id: `${base(vault)}/secrets/${v.name}${withVersion ? `/${v.version}` : ''}`,
    attributes: attributes(vault, v),
    tags: v.meta.tags,
    contentType: v.meta.contentType,
    managed: v.meta.managed,
  });

  const bundle = (vault: Vault, v: StoredVersion, includeValue: boolean) => ({
    ...(includeValue ? { value: v.open().toString('utf8') } : {}),
    ...item(vault, v, true),
    kid: v.meta.kid as string | undefined,
    previousVersion: v.meta.previousVersion,
  });

  const deletedFields = (vault: Vault, d: DeletedObject) => ({
    recoveryId: `${base(vault)}/deletedsecrets/${d.name}`,
    deletedDate: seconds(d.deletedAt),
    scheduledPurgeDate: seconds(d.scheduledPurgeAt),
  });

  const page = <T, R>(p: Page<T>, map: (t: T) => R, nextLink: (token: string) => string) => ({
    value: p.items.map(map),
    nextLink: p.next ? nextLink(p.next) : null,
  });

  const metaFrom = (input: UpdateSecretInput, prior: VersionMeta = { enabled: true }): VersionMeta => {
    const meta: VersionMeta = { ...prior };
    if (input.contentType !== undefined) meta.contentType = input.contentType;
    if (input.tags !== undefined) meta.tags = input.tags;
    const a = input.attributes;
    if (a?.enabled !== undefined) meta.enabled = a.enabled;
    if (a && 'nbf' in a) meta.nbf = a.nbf ?? undefined;
    if (a && 'exp' in a) meta.exp = a.exp ?? undefined;
    return meta;
  };

  const backupPrefix = 'coffer-secret-backup-v1.';

  return {
    checkName,

    async set(vault: Vault, name: string, input: SetSecretInput) {
      checkName(name);
      if (input.value.length > MAX_VALUE_CHARS) throw badParameter(`Secret is beyond the maximum permitted length of ${MAX_VALUE_CHARS} characters.`);
      checkTags(input.tags);
      const meta = metaFrom(input);
      const created = await store.create(vault, 'secrets', name, Buffer.from(input.value, 'utf8'), meta).catch((e) => rethrow(e, name));
      return bundle(vault, created, true);
    },

    async get(vault: Vault, name: string, version?: string) {
      checkName(name);
      const v = await store.get(vault, 'secrets', name, version);
      if (!v) throw secretNotFound(name, version);
      // Azure serves expired and not-yet-valid secrets (for recovery and testing); only disabled ones are refused.
      if (!v.meta.enabled) throw forbidden('Operation get is not allowed on a disabled secret.', 'SecretDisabled');
      return bundle(vault, v, true);
    },

    async update(vault: Vault, name: string, version: string | undefined, input: UpdateSecretInput) {
      checkName(name);
      checkTags(input.tags);
      const v = await store.updateMeta(vault, 'secrets', name, version, (prior) => metaFrom(input, prior));
      if (!v) throw secretNotFound(name, version);
      return bundle(vault, v, false);
    },

    async list(vault: Vault, maxResults: number, continuation: string | undefined, nextLink: (token: string) => string) {
      const p = await store.list(vault, 'secrets', { maxResults, continuation }).catch((e) => rethrow(e, ''));
      return page(p, (v) => item(vault, v, false), nextLink);
    },

    async listVersions(vault: Vault, name: string, maxResults: number, continuation: string | undefined, nextLink: (token: string) => string) {
      checkName(name);
      const p = await store.listVersions(vault, 'secrets', name, { maxResults, continuation }).catch((e) => rethrow(e, name));
      if (!p) throw secretNotFound(name);
      return page(p, (v) => item(vault, v, true), nextLink);
    },

    async delete(vault: Vault, name: string) {
      checkName(name);
      const d = await store.softDelete(vault, 'secrets', name, vault.properties.softDeleteRetentionInDays);
      if (!d) throw secretNotFound(name);
      return { ...bundle(vault, d.current, false), ...deletedFields(vault, d) };
    },

    async getDeleted(vault: Vault, name: string) {
      checkName(name);
      const d = await store.getDeleted(vault, 'secrets', name);
      if (!d) throw deletedNotFound(name);
      return { ...bundle(vault, d.current, false), ...deletedFields(vault, d) };
    },

    async listDeleted(vault: Vault, maxResults: number, continuation: string | undefined, nextLink: (token: string) => string) {
      const p = await store.listDeleted(vault, 'secrets', { maxResults, continuation }).catch((e) => rethrow(e, ''));
      return page(p, (d) => ({ ...item(vault, d.current, false), ...deletedFields(vault, d) }), nextLink);
    },

    async recover(vault: Vault, name: string) {
      checkName(name);
      const v = await store.recover(vault, 'secrets', name);
      if (!v) throw deletedNotFound(name);
      return bundle(vault, v, false);
    },

    async purge(vault: Vault, name: string) {
      checkName(name);
      if (vault.properties.enablePurgeProtection) {
        throw forbidden(`Operation "purge" is not allowed because purge protection is enabled for this vault. Key Vault service will automatically purge it after the retention period has passed. ${HELP}`);
      }
      if (!(await store.purge(vault, 'secrets', name))) throw deletedNotFound(name);
    },

    /** An opaque blob: every version with its value, sealed with the deployment's backup key (integrity-protected). */
    async backup(vault: Vault, name: string) {
      checkName(name);
      const versions = await store.exportVersions(vault, 'secrets', name);
      if (!versions) throw secretNotFound(name);
      const doc = JSON.stringify({ name, versions: versions.map((v) => ({ ...v, payload: v.payload.toString('base64') })) });
      const sealed = keyring.sealSystem('backup', 'secrets', Buffer.from(doc, 'utf8'));
      return { value: Buffer.concat([Buffer.from(backupPrefix), sealed]).toString('base64url') };
    },

    async restore(vault: Vault, blob: string) {
      let doc: { name: string; versions: { version: string; meta: VersionMeta; created: number; updated: number; payload: string }[] };
      try {
        const raw = Buffer.from(blob, 'base64url');
        if (!raw.subarray(0, backupPrefix.length).equals(Buffer.from(backupPrefix))) throw new EnvelopeError('not a secret backup');
        doc = JSON.parse(keyring.openSystem('backup', 'secrets', raw.subarray(backupPrefix.length)).toString('utf8'));
      } catch (err) {
        if (err instanceof EnvelopeError || err instanceof SyntaxError) {
          throw badParameter('Backup blob contains invalid or corrupt version.');
        }
        throw err;
      }
      const restored = await store.importVersions(vault, 'secrets', doc.name, doc.versions.map((v) => ({ ...v, payload: Buffer.from(v.payload, 'base64') })))
        .catch((e) => rethrow(e, doc.name));
      return bundle(vault, restored, false);
    },
  };
}

export type SecretsService = ReturnType<typeof createSecretsService>;
