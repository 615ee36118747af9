import type { Vault } from '../../control-plane/vaults.js';
import type { Endpoints } from '../../endpoints.js';
import type { Keyring } from '../../crypto/envelope.js';
import { badParameter, forbidden } from '../../http/errors.js';
import type { ObjectStore, StoredVersion, VersionMeta } from '../store.js';
import { applyAttributes, checkTags, versionAttributes, type AttributesInput } from '../collection-helpers.js';
import { createLifecycleOperations, objectErrors } from '../lifecycle.js';
import { checkObjectName } from '../names.js';
import type { VaultEventHooks } from '../../events/event-grid.js';
import { refusedAsManaged } from '../certificates/managed-guard.js';

/** Azure's limits for secrets. */
export const MAX_VALUE_CHARS = 25_600;

export type SecretAttributesInput = AttributesInput;

export interface SetSecretInput {
  value: string;
  contentType?: string;
  tags?: Record<string, string>;
  attributes?: SecretAttributesInput;
}

export type UpdateSecretInput = Omit<SetSecretInput, 'value'>;

export function createSecretsService(deps: { store: ObjectStore; endpoints: Endpoints; keyring: Keyring; events?: VaultEventHooks }) {
  const { store, endpoints, keyring } = deps;
  const base = (vault: Vault) => endpoints.vaultUrl(vault.name);

  const checkName = checkObjectName;
  const errors = objectErrors('Secret');
  const secretNotFound = errors.notFound;
  const rethrow = errors.rethrow;

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


  const metaFrom = (input: UpdateSecretInput, prior: VersionMeta = { enabled: true }): VersionMeta => {
    const meta: VersionMeta = { ...prior };
    if (input.contentType !== undefined) meta.contentType = input.contentType;
    if (input.tags !== undefined) meta.tags = input.tags;
    return applyAttributes(meta, input.attributes);
  };


  const lifecycle = createLifecycleOperations({ store, endpoints, keyring }, {
    collection: 'secrets', errors, checkName, item, bundle: (vault, v) => bundle(vault, v, false),
  });

  return {
    ...lifecycle,
    checkName,

    async set(vault: Vault, name: string, input: SetSecretInput) {
      checkName(name);
      if (input.value.length > MAX_VALUE_CHARS) throw badParameter(`Secret is beyond the maximum permitted length of ${MAX_VALUE_CHARS} characters.`);
      checkTags(input.tags);
      const meta = metaFrom(input);
      // Its event is written in the version's own transaction.
      const hook = await deps.events?.objectVersionCreated(vault, 'Secret');
      const created = await store.create(vault, 'secrets', name, Buffer.from(input.value, 'utf8'), meta, { hook })
        .catch((e) => rethrow(refusedAsManaged(e, 'secrets', 'set'), name));
      // The value just sealed is the one given: answered as is, not unsealed again.
      return { value: input.value, ...bundle(vault, created, false) };
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

  };
}

export type SecretsService = ReturnType<typeof createSecretsService>;
