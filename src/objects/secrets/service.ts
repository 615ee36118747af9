import type { Vault } from '../../control-plane/vaults.js';
import type { Endpoints } from '../../endpoints.js';
import type { Keyring } from '../../crypto/envelope.js';
import { KeyVaultError, badParameter, conflict, forbidden, notFound } from '../../http/errors.js';
import { StoreError, type ObjectStore, type StoredVersion, type DeletedObject, type VersionMeta } from '../store.js';
import {
  applyAttributes, checkTags, createBackupCodec, deletedObjectFields, listPage as page, versionAttributes, type AttributesInput,
} from '../collection-helpers.js';

/** Azure's limits for secrets. */
export const SECRET_NAME = /^[0-9a-zA-Z-]{1,127}$/;
export const MAX_VALUE_CHARS = 25_600;
const HELP = 'For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182';

export type SecretAttributesInput = AttributesInput;

export interface SetSecretInput {
  value: string;
  contentType?: string;
  tags?: Record<string, string>;
  attributes?: SecretAttributesInput;
}

export type UpdateSecretInput = Omit<SetSecretInput, 'value'>;

export function createSecretsService(deps: { store: ObjectStore; endpoints: Endpoints; keyring: Keyring }) {
  const { store, endpoints, keyring } = deps;
  const base = (vault: Vault) => endpoints.vaultUrl(vault.name);

  const checkName = (name: string) => {
    if (!SECRET_NAME.test(name)) {
      throw badParameter(`The request URI contains an invalid name: ${name}`);
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

  const item = (vault: Vault, v: StoredVersion, withVersion: boolean) => ({
    id: `${base(vault)}/secrets/${v.name}${withVersion ? `/${v.version}` : ''}`,
    attributes: versionAttributes(vault, v),
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

  const deletedFields = (vault: Vault, d: DeletedObject) => deletedObjectFields(base(vault), 'deletedsecrets', d);

  const metaFrom = (input: UpdateSecretInput, prior: VersionMeta = { enabled: true }): VersionMeta => {
    const meta: VersionMeta = { ...prior };
    if (input.contentType !== undefined) meta.contentType = input.contentType;
    if (input.tags !== undefined) meta.tags = input.tags;
    return applyAttributes(meta, input.attributes);
  };

  const backups = createBackupCodec(keyring, 'secrets');

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
      return { value: backups.seal({ name, versions: versions.map((v) => ({ ...v, payload: v.payload.toString('base64') })) }) };
    },

    async restore(vault: Vault, blob: string) {
      const doc = backups.open(blob);
      const restored = await store.importVersions(vault, 'secrets', doc.name, doc.versions.map((v) => ({ ...v, payload: Buffer.from(v.payload, 'base64') })))
        .catch((e) => rethrow(e, doc.name));
      return bundle(vault, restored, false);
    },
  };
}

export type SecretsService = ReturnType<typeof createSecretsService>;
