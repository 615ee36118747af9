import crypto, { type KeyObject } from 'node:crypto';
import type { Vault } from '../../control-plane/vaults.js';
import type { Endpoints } from '../../endpoints.js';
import type { Keyring } from '../../crypto/envelope.js';
import type { Clock } from '../../clock.js';
import { badParameter, conflict, notFound } from '../../http/errors.js';
import { StoreError, type ObjectStore, type StoredVersion, type VersionMeta } from '../store.js';
import { applyAttributes, checkTags, createBackupCodec, deletedObjectFields, seconds, versionAttributes, type AttributesInput, type BackupDocument } from '../collection-helpers.js';
import { createLifecycleOperations, objectErrors, type LifecycleOperations } from '../lifecycle.js';
import { curveOf, exportPrivate, generateSoftwareKey, loadPrivate, publicJwk, type CurveName } from '../keys/key-crypto.js';
import {
  CertificateInputError, PEM, PKCS12, certificateFacts, createCsr, issueSelfSigned, keyMatches, parsePem, parsePfx, secretValue, type ParsedImport,
} from './x509.js';
import { INTEGRATED_CA, type IntegratedCa } from './integrated-ca.js';
import { addMonths, policyFromCertificate, resolvePolicy, type CertificatePolicy, type PolicyInput } from './policy.js';
import { checkObjectName } from '../names.js';
import type { Kysely } from 'kysely';
import type { Database } from '../../storage/schema.js';
import { listPage, type ListQuery } from '../collection-helpers.js';
import type { CertificateNotice } from './notifications.js';
import type { VaultEventHooks } from '../../events/event-grid.js';

export interface CreateCertificateInput {
  policy?: PolicyInput;
  attributes?: AttributesInput;
  tags?: Record<string, string>;
}

export interface ImportCertificateInput extends CreateCertificateInput {
  value: string;
  pwd?: string;
}

export type UpdateCertificateInput = CreateCertificateInput;

export interface MergeCertificateInput {
  x5c: string[];
  attributes?: AttributesInput;
  tags?: Record<string, string>;
}

/** The pending (issuance) operation of a certificate, as `…/pending` reports it. */
interface CertificateOperation {
  status: 'inProgress' | 'completed' | 'failed' | 'cancelled';
  status_details?: string;
  request_id: string;
  issuer: { name: string };
  cancellation_requested: boolean;
  target?: string;
  csr?: string;
}

/** What a pending version's key records until the externally signed certificate is merged. */
interface PendingIssuance {
  policy: CertificatePolicy;
  tags?: Record<string, string>;
  enabled: boolean;
  operation: CertificateOperation;
}

/** A certificate backup: its versions plus those of its managed key and secret. */
type CertificateBackup = BackupDocument & { keys: BackupDocument['versions']; secrets: BackupDocument['versions'] };

/** What a certificate version records beside its DER certificate. */
interface CertificateMeta extends VersionMeta {
  x5t: string;
  policy: CertificatePolicy;
  operation?: CertificateOperation;
}

const meta = (v: StoredVersion) => v.meta as CertificateMeta;
/**
 * A certificate deleted while its only version still waited for its merge. Azure deletes such a certificate like any
 * other (listed among the deleted ones with includePending); Coffer keeps no certificate object for a waiting version,
 * so deleting one first records this stand-in (no DER certificate, `awaitingMerge`) to carry it through the deleted
 * state. Recovering it returns the certificate to waiting for its merge, and the stand-in goes again.
 */
const isAwaitingMerge = (v: StoredVersion) => v.meta.awaitingMerge === true;
/** Whether a lifetime action's trigger (a lifetime percentage, or days before expiry) has passed at `now` (ms). */
function triggerPassed(trigger: CertificatePolicy['lifetime_actions'][number]['trigger'], nbf: number, exp: number, now: number) {
  const { lifetime_percentage: pct, days_before_expiry: days } = trigger;
  const dueSeconds = pct !== undefined ? nbf + ((exp - nbf) * pct) / 100 : exp - (days ?? 0) * 86_400;
  return now / 1000 >= dueSeconds;
}
/** What issuance needs of a vault: its keys for sealing and its name for identifiers (the scheduler has no more). */
type VaultLike = Pick<Vault, 'id' | 'wrappedDataKey' | 'name'>;
const newVersionId = () => crypto.randomBytes(16).toString('hex');
/** Key operations of a certificate's managed key, as Azure assigns them. */
const MANAGED_KEY_OPS: Record<string, string[]> = {
  RSA: ['sign', 'verify', 'wrapKey', 'unwrapKey', 'encrypt', 'decrypt'],
  EC: ['sign', 'verify'],
};

export function createCertificatesService(deps: {
  store: ObjectStore; endpoints: Endpoints; keyring: Keyring; clock: Clock; ca?: IntegratedCa; events?: VaultEventHooks; db: Kysely<Database>;
}) {
  const { store, endpoints, keyring, clock } = deps;
  const base = (vault: VaultLike) => endpoints.vaultUrl(vault.name);
  const errors = objectErrors('Certificate');
  const certificateNotFound = errors.notFound;
  const pendingNotFound = (name: string) => notFound('PendingCertificateNotFound', `Pending certificate not found: ${name}`);

  const checkName = checkObjectName;

  const ids = (vault: VaultLike, name: string, version: string) => ({
    id: `${base(vault)}/certificates/${name}/${version}`,
    kid: `${base(vault)}/keys/${name}/${version}`,
    sid: `${base(vault)}/secrets/${name}/${version}`,
  });
  const policyOut = (vault: Vault, name: string, policy: CertificatePolicy) => ({
    id: `${base(vault)}/certificates/${name}/policy`, ...policy,
    attributes: { ...policy.attributes, created: seconds(policy.attributes.created), updated: seconds(policy.attributes.updated) },
  });

  const item = (vault: Vault, v: StoredVersion, withVersion: boolean) => ({
    id: `${base(vault)}/certificates/${v.name}${withVersion ? `/${v.version}` : ''}`,
    attributes: versionAttributes(vault, v),
    tags: v.meta.tags,
    x5t: meta(v).x5t,
  });

  const bundle = (vault: Vault, v: StoredVersion) => ({
    ...ids(vault, v.name, v.version),
    ...(isAwaitingMerge(v) ? {} : { x5t: meta(v).x5t, cer: v.open().toString('base64') }),
    contentType: meta(v).policy.secret_props.contentType,
    attributes: versionAttributes(vault, v),
    tags: v.meta.tags,
    policy: policyOut(vault, v.name, meta(v).policy),
  });

  const operationOut = (vault: Vault, name: string, op: CertificateOperation) => ({ id: `${base(vault)}/certificates/${name}/pending`, ...op });

  /** Software keys only: HSM key types need a premium vault and a PKCS#11 token (as for keys). */
  const checkProtection = (vault: Vault, kty: string) => {
    if (!kty.endsWith('-HSM')) return;
    if (vault.properties.sku.name !== 'premium') throw badParameter('Hardware key operation not allowed on standard vault');
    throw badParameter('Hardware key operation not available: this Coffer deployment has no PKCS#11 module configured.');
  };

  /** A certificate's name also names its managed key and secret: a plain key or secret of that name is a conflict. */
  async function checkNameFree(vault: VaultLike, name: string) {
    for (const collection of ['keys', 'secrets'] as const) {
      const existing = await store.get(vault, collection, name);
      if (existing && !existing.meta.managed) {
        throw conflict('Conflict', `There is already a ${collection === 'keys' ? 'key' : 'secret'} named ${name} in this vault that is not managed by a certificate.`);
      }
    }
  }

  const isIntegratedCa = (policy: CertificatePolicy) => deps.ca !== undefined && policy.issuer.name.toLowerCase() === INTEGRATED_CA.toLowerCase();
  /** Issuers Coffer completes by itself, so their certificates can also renew by themselves. */
  const issuesInternally = (policy: CertificatePolicy) => policy.issuer.name.toLowerCase() === 'self' || isIntegratedCa(policy);

  /** The managed key of a new certificate version; `pending` marks a version still waiting for its certificate. */
  async function storeKey(vault: VaultLike, name: string, version: string, key: KeyObject, policy: CertificatePolicy, extra: VersionMeta) {
    const kty = key.asymmetricKeyType === 'rsa' ? 'RSA' : 'EC';
    await checkNameFree(vault, name);
    return store.create(vault, 'keys', name, exportPrivate(key), {
      ...extra, managed: true, kty: policy.key_props.kty, keyOps: MANAGED_KEY_OPS[kty], publicKey: publicJwk(key), exportable: policy.key_props.exportable,
    }, { version }).catch((e) => errors.rethrow(e, name));
  }

  /**
   * The managed secret and the certificate of a version whose key is stored. The certificate is written last, so a
   * certificate is visible only once its key and secret exist.
   */
  async function storeCertificate(vault: VaultLike, name: string, version: string, key: KeyObject, chain: Buffer[],
    policy: CertificatePolicy, input: CreateCertificateInput, operation?: CertificateOperation) {
    const facts = certificateFacts(chain[0]);
    const contentType = policy.secret_props.contentType;
    const value = containerFor(policy, chain, key);
    const enabled = input.attributes?.enabled ?? policy.attributes.enabled;
    const { kid } = ids(vault, name, version);
    await store.create(vault, 'secrets', name, Buffer.from(value, 'utf8'), { enabled, nbf: facts.nbf, exp: facts.exp, managed: true, contentType, kid }, { version })
      .catch((e) => errors.rethrow(e, name));
    const certMeta: CertificateMeta = { enabled, nbf: facts.nbf, exp: facts.exp, tags: input.tags, x5t: facts.x5t, policy, ...(operation ? { operation } : {}) };
    // Every issued version (create, import, merge, renewal) is a CertificateNewVersionCreated, written with the version.
    const hook = await deps.events?.objectVersionCreated(vault, 'Certificate');
    return store.create(vault, 'certificates', name, chain[0], certMeta, { version, hook }).catch((e) => errors.rethrow(e, name));
  }

  /** The managed secret's value (PFX or PEM; the private key only when exportable). */
  const containerFor = (policy: CertificatePolicy, chain: Buffer[], key: KeyObject) =>
    secretValue(policy.secret_props.contentType, chain, policy.key_props.exportable ? key : undefined);

  /** Stores one certificate version and its managed key and secret under the same version id. */
  async function storeVersion(vault: VaultLike, name: string, key: KeyObject, chain: Buffer[], policy: CertificatePolicy,
    input: CreateCertificateInput, operation?: CertificateOperation) {
    const facts = certificateFacts(chain[0]);
    const version = newVersionId();
    const enabled = input.attributes?.enabled ?? policy.attributes.enabled;
    await storeKey(vault, name, version, key, policy, { enabled, nbf: facts.nbf, exp: facts.exp });
    return storeCertificate(vault, name, version, key, chain, policy, input, operation);
  }

  /** The version waiting for an external CA's certificate (issuer Unknown), if any: its key carries the request. */
  async function pendingKey(vault: VaultLike, name: string) {
    const key = await store.get(vault, 'keys', name);
    return key?.meta.managed && key.meta.pending ? { key, pending: key.meta.pending as PendingIssuance } : undefined;
  }

  const issuance = (policy: CertificatePolicy) => ({
    subject: policy.x509_props.subject ?? '', dnsNames: policy.x509_props.sans?.dns_names, emails: policy.x509_props.sans?.emails,
    upns: policy.x509_props.sans?.upns, ekus: policy.x509_props.ekus, keyUsage: policy.x509_props.key_usage,
  });

  async function current(vault: Vault, name: string, version?: string) {
    checkName(name);
    const v = await store.get(vault, 'certificates', name, version);
    if (!v) throw certificateNotFound(name, version);
    return v;
  }

  /** The key for a new version: the current one when the policy reuses keys, otherwise a fresh one. */
  async function keyFor(vault: VaultLike, name: string, policy: CertificatePolicy): Promise<KeyObject> {
    if (policy.key_props.reuse_key) {
      const existing = await store.get(vault, 'keys', name);
      if (existing?.meta.managed) return loadPrivate(existing.open());
    }
    return policy.key_props.kty.startsWith('RSA')
      ? generateSoftwareKey({ kty: 'RSA', size: policy.key_props.key_size })
      : generateSoftwareKey({ kty: 'EC', curve: policy.key_props.crv as CurveName });
  }

  /** Issues (self-signed, or by the integrated CA) and stores a version; returns its (completed) operation. */
  async function issueVersion(vault: VaultLike, name: string, key: KeyObject, policy: CertificatePolicy, input: CreateCertificateInput) {
    const notBefore = new Date(clock.now());
    const request = { ...issuance(policy), notBefore, notAfter: addMonths(notBefore, policy.x509_props.validity_months) };
    let chain: Buffer[];
    try {
      chain = isIntegratedCa(policy) ? await deps.ca!.issue(key, request) : [await issueSelfSigned(key, request)];
    } catch (err) {
      if (err instanceof CertificateInputError) throw badParameter(err.message);
      throw err;
    }
    const operation: CertificateOperation = {
      status: 'completed', request_id: crypto.randomUUID(), issuer: { name: policy.issuer.name }, cancellation_requested: false,
    };
    await storeVersion(vault, name, key, chain, policy, input, { ...operation, target: `${base(vault)}/certificates/${name}` });
    return operation;
  }

  /** Issuer Unknown: the key is generated here and only a CSR leaves; the certificate arrives later by merge. */
  async function createPending(vault: Vault, name: string, key: KeyObject, policy: CertificatePolicy, input: CreateCertificateInput) {
    let csr: Buffer;
    try {
      csr = await createCsr(key, issuance(policy));
    } catch (err) {
      if (err instanceof CertificateInputError) throw badParameter(err.message);
      throw err;
    }
    const pending: PendingIssuance = {
      policy, tags: input.tags, enabled: input.attributes?.enabled ?? policy.attributes.enabled,
      operation: {
        status: 'inProgress', request_id: crypto.randomUUID(), issuer: { name: policy.issuer.name }, cancellation_requested: false,
        csr: csr.toString('base64'),
        status_details: 'Pending certificate created. Please Perform Merge to complete the request.',
      },
    };
    const v = await storeKey(vault, name, newVersionId(), key, policy, { enabled: true, pending });
    return operationOut(vault, v.name, pending.operation);
  }

  /**
   * Certificates "not completely provisioned": names whose only object is a managed key still waiting for its merge
   * (issuer Unknown). A certificate with issued versions is listed anyway, whatever its newest request.
   */
  async function pendingOnly(vault: Vault, afterNameKey: string | undefined, limit: number) {
    let q = deps.db.selectFrom('object_names as n')
      .innerJoin('object_versions as v', (j) => j.onRef('v.seq', '=', 'n.current_seq'))
      .select(['n.name_key', 'n.name'])
      .where('n.vault_id', '=', vault.id).where('n.collection', '=', 'keys').where('n.deleted_at', 'is', null)
      // A cheap pre-filter; pendingKey reads the key's metadata itself.
      .where('v.meta', 'like', '%"pending":%')
      .where(({ not, exists, selectFrom }) => not(exists(selectFrom('object_names as c').select('c.name_key')
        .where('c.vault_id', '=', vault.id).where('c.collection', '=', 'certificates').whereRef('c.name_key', '=', 'n.name_key'))))
      .orderBy('n.name_key').limit(limit);
    if (afterNameKey !== undefined) q = q.where('n.name_key', '>', afterNameKey);
    const rows = await q.execute();
    return Promise.all(rows.map(async (r) => ({ nameKey: r.name_key, waiting: await pendingKey(vault, r.name) })));
  }

  const pendingItem = (vault: Vault, { key, pending }: NonNullable<Awaited<ReturnType<typeof pendingKey>>>) => ({
    id: `${base(vault)}/certificates/${key.name}`, attributes: { ...versionAttributes(vault, key), enabled: pending.enabled }, tags: pending.tags,
  });

  /**
   * The list with `includePending=true`: pending-only certificates first (in name order), then the issued ones. Its
   * continuation tokens say which part they continue: `pending.<name>` or `issued.<the store's token>`.
   */
  async function listWithPending(vault: Vault, maxResults: number, continuation: string | undefined, nextLink: (token: string) => string) {
    const issued = async (token: string | undefined, size: number) => {
      const p = await store.list(vault, 'certificates', { maxResults: size, continuation: token || undefined }).catch((e) => errors.rethrow(e, ''));
      return { items: p.items.map((v) => item(vault, v, false)), next: p.next === undefined ? undefined : `issued.${p.next}` };
    };
    if (continuation?.startsWith('issued.')) return listPage(await issued(continuation.slice('issued.'.length), maxResults), (i) => i, nextLink);
    const after = continuation?.startsWith('pending.') ? Buffer.from(continuation.slice('pending.'.length), 'base64url').toString('utf8') : undefined;
    const pending = await pendingOnly(vault, after, maxResults + 1);
    const page = pending.slice(0, maxResults);
    const first = page.flatMap((p) => (p.waiting ? [pendingItem(vault, p.waiting)] : []));
    if (pending.length > maxResults) {
      return listPage({ items: first, next: `pending.${Buffer.from(page[page.length - 1].nameKey).toString('base64url')}` }, (i) => i, nextLink);
    }
    const room = maxResults - first.length;
    const rest = room > 0 ? await issued(undefined, room) : { items: [], next: 'issued.' };
    return listPage({ items: [...first, ...rest.items], next: rest.next }, (i) => i, nextLink);
  }

  const backups = createBackupCodec(keyring, 'certificates');

  /** Azure's `includePending` query flag (true or false; anything else is a 400). */
  const includePending = (query: ListQuery | undefined) => {
    const given = (query as { includePending?: string | string[] } | undefined)?.includePending;
    // A repeated parameter arrives as an array: joined, it is no value Key Vault accepts (a 400, not a crash).
    const flag = Array.isArray(given) ? given.join(',') : given;
    if (flag !== undefined && !['true', 'false'].includes(flag.toLowerCase())) throw badParameter(`Invalid includePending value: ${flag}.`);
    return flag?.toLowerCase() === 'true';
  };

  const lifecycle = createLifecycleOperations({ store, endpoints, keyring }, { collection: 'certificates', errors, checkName, bundle, item });

  /** Deleting, recovering and purging a certificate does the same to its managed key and secret. */
  const cascading: Pick<LifecycleOperations, 'delete' | 'recover' | 'purge'> = {
    async delete(vault, name) {
      checkName(name);
      const waiting = await pendingKey(vault, name);
      if (waiting && !(await store.get(vault, 'certificates', name))) {
        const { key, pending } = waiting;
        const standIn = { enabled: pending.enabled, tags: pending.tags, policy: pending.policy, operation: pending.operation, awaitingMerge: true };
        await store.create(vault, 'certificates', name, Buffer.alloc(0), standIn, { version: key.version }).catch((e) => errors.rethrow(e, name));
      }
      const deleted = await lifecycle.delete(vault, name);
      for (const collection of ['keys', 'secrets'] as const) await store.softDelete(vault, collection, name, vault.properties.softDeleteRetentionInDays);
      return deleted;
    },
    async recover(vault, name) {
      const recovered = await lifecycle.recover(vault, name);
      for (const collection of ['keys', 'secrets'] as const) await store.recover(vault, collection, name);
      const live = await store.get(vault, 'certificates', name);
      if (live && isAwaitingMerge(live)) {
        // Back to waiting for its merge: the pending key alone stands for the certificate again.
        await store.softDelete(vault, 'certificates', name, vault.properties.softDeleteRetentionInDays);
        await store.purge(vault, 'certificates', name);
      }
      return recovered;
    },
    async purge(vault, name) {
      await lifecycle.purge(vault, name);
      for (const collection of ['keys', 'secrets'] as const) await store.purge(vault, collection, name);
    },
  };

  return {
    ...lifecycle,
    ...cascading,

    /** Azure's `includePending`: certificates still waiting for their first certificate are listed only when asked. */
    async list(vault: Vault, maxResults: number, continuation: string | undefined, nextLink: (token: string) => string, query?: ListQuery) {
      if (includePending(query) || continuation?.startsWith('pending.') || continuation?.startsWith('issued.')) {
        return listWithPending(vault, maxResults, continuation, nextLink);
      }
      return lifecycle.list(vault, maxResults, continuation, nextLink);
    },

    /**
     * Deleted certificates; those deleted while waiting for their merge only with includePending (as Azure lists
     * them). Such a list's continuation tokens carry `withpending.`, so the next page keeps the choice.
     */
    async listDeleted(vault: Vault, maxResults: number, continuation: string | undefined, nextLink: (token: string) => string, query?: ListQuery) {
      const withPending = includePending(query) || continuation?.startsWith('withpending.') === true;
      const token = withPending && continuation?.startsWith('withpending.') ? continuation.slice('withpending.'.length) : continuation;
      const p = await store.listDeleted(vault, 'certificates', { maxResults, continuation: token }).catch((e) => errors.rethrow(e, ''));
      const items = withPending ? p.items : p.items.filter((d) => !isAwaitingMerge(d.current));
      const vaultUrl = endpoints.vaultUrl(vault.name);
      return listPage({ items, next: p.next && (withPending ? `withpending.${p.next}` : p.next) },
        (d) => ({ ...item(vault, d.current, false), ...deletedObjectFields(vaultUrl, 'deletedcertificates', d) }), nextLink);
    },

    async create(vault: Vault, name: string, input: CreateCertificateInput) {
      checkName(name);
      checkTags(input.tags);
      if (!input.policy) throw badParameter('The certificate policy is required to create a certificate.');
      const policy = resolvePolicy(input.policy, undefined, clock.now());
      checkProtection(vault, policy.key_props.kty);
      const issuer = policy.issuer.name.toLowerCase();
      if (!issuesInternally(policy) && issuer !== 'unknown') {
        throw badParameter(`Issuer ${policy.issuer.name} is not supported by this Coffer deployment; use Self, Unknown or ${INTEGRATED_CA}.`);
      }
      if (!policy.x509_props.subject && !policy.x509_props.sans) throw badParameter('The policy must have a subject or subject alternative names.');
      if (await pendingKey(vault, name)) throw conflict('Conflict', `There is a pending operation for certificate ${name}; merge, cancel or delete it first.`);
      const key = await keyFor(vault, name, policy);
      if (issuer === 'unknown') return createPending(vault, name, key, policy, input);
      const operation = await issueVersion(vault, name, key, policy, input);
      // The 202 reports the request as accepted, as Azure's does; clients then poll …/pending, which says completed.
      // (Python's poller never polls when the create response is already final, and then has no result.)
      return operationOut(vault, name, { ...operation, status: 'inProgress', status_details: 'Pending certificate created. Certificate request is in progress. This may take some time based on the issuer provider. Please check again later.' });
    },

    async import(vault: Vault, name: string, input: ImportCertificateInput) {
      checkName(name);
      checkTags(input.tags);
      // PEM arrives as text, or base64 of the text when a client does not send the policy's content type.
      const decoded = Buffer.from(input.value, 'base64');
      const pemText = input.value.includes('-----BEGIN') ? input.value
        : decoded.subarray(0, 64).toString('latin1').includes('-----BEGIN') ? decoded.toString('utf8') : undefined;
      const isPem = pemText !== undefined;
      let parsed: ParsedImport;
      try {
        parsed = isPem ? parsePem(pemText) : parsePfx(decoded, input.pwd);
      } catch (err) {
        if (err instanceof CertificateInputError) throw badParameter(err.message);
        throw err;
      }
      const facts = certificateFacts(parsed.chain[0]);
      const key = parsed.key;
      const kty = key.asymmetricKeyType === 'rsa' ? 'RSA' : 'EC';
      const derived = policyFromCertificate(facts, { kty, size: key.asymmetricKeyDetails?.modulusLength, crv: curveOf(key) }, isPem ? PEM : PKCS12);
      const withInput: PolicyInput = { ...derived, ...input.policy,
        key_props: { ...derived.key_props, ...input.policy?.key_props },
        secret_props: { ...derived.secret_props, ...input.policy?.secret_props },
        x509_props: { ...derived.x509_props, ...input.policy?.x509_props } };
      const policy = resolvePolicy(withInput, undefined, clock.now());
      checkProtection(vault, policy.key_props.kty);
      const v = await storeVersion(vault, name, key, parsed.chain, policy, input);
      return bundle(vault, v);
    },

    /** Whether `name` in keys or secrets (live, or soft-deleted when `deleted`) belongs to a certificate. */
    async isManaged(vault: Vault, collection: 'keys' | 'secrets', name: string, deleted: boolean) {
      const object = deleted ? (await store.getDeleted(vault, collection, name))?.current : await store.get(vault, collection, name);
      return object?.meta.managed === true;
    },

    /** A version waiting for its merge reads as Azure shows it: ids, policy and attributes, but no certificate yet. */
    async get(vault: Vault, name: string, version?: string) {
      checkName(name);
      const waiting = await pendingKey(vault, name);
      if (waiting && (!version || version.toLowerCase() === waiting.key.version)) {
        const { key, pending } = waiting;
        return {
          ...ids(vault, key.name, key.version), contentType: pending.policy.secret_props.contentType,
          attributes: { ...versionAttributes(vault, key), enabled: pending.enabled }, tags: pending.tags,
          policy: policyOut(vault, key.name, pending.policy),
        };
      }
      return bundle(vault, await current(vault, name, version));
    },

    async update(vault: Vault, name: string, version: string | undefined, input: UpdateCertificateInput) {
      checkName(name);
      checkTags(input.tags);
      const now = clock.now();
      const v = await store.updateMeta(vault, 'certificates', name, version, (prior) => {
        const next = { ...prior } as CertificateMeta;
        if (input.tags !== undefined) next.tags = input.tags;
        if (input.policy) next.policy = resolvePolicy(input.policy, next.policy, now);
        return applyAttributes(next, input.attributes);
      });
      if (!v) throw certificateNotFound(name, version);
      // The managed key and secret follow the certificate's enabled state, as in Azure.
      if (input.attributes?.enabled !== undefined) {
        for (const collection of ['keys', 'secrets'] as const) {
          await store.updateMeta(vault, collection, name, v.version, (m) => ({ ...m, enabled: input.attributes!.enabled! }));
        }
      }
      return bundle(vault, v);
    },

    /**
     * The scheduler's pass: renews a self-issued certificate whose AutoRenew action is due (at a lifetime percentage
     * or days before expiry). A new version resets the clock, so a second pass does nothing.
     */
    async renewIfDue(vault: VaultLike, name: string, now: number) {
      const v = await store.get(vault, 'certificates', name);
      if (!v || !v.meta.enabled || (await pendingKey(vault, name))) return false;
      const { policy, nbf, exp } = meta(v);
      const renew = policy.lifetime_actions.find((a) => a.action.action_type === 'AutoRenew');
      if (!renew || !issuesInternally(policy) || nbf === undefined || exp === undefined) return false;
      if (!triggerPassed(renew.trigger, nbf, exp, now)) return false;
      await issueVersion(vault, v.name, await keyFor(vault, v.name, policy), policy, { tags: v.meta.tags });
      return true;
    },

    /**
     * The email notice due for a certificate's current version, if any: its EmailContacts action's trigger has passed,
     * or its AutoRenew action's has while the issuer is one Coffer cannot renew with by itself (an external CA).
     */
    async noticeDue(vault: VaultLike, name: string, now: number): Promise<CertificateNotice | undefined> {
      const v = await store.get(vault, 'certificates', name);
      if (!v || !v.meta.enabled) return undefined;
      const { policy, nbf, exp } = meta(v);
      if (nbf === undefined || exp === undefined) return undefined;
      const due = policy.lifetime_actions.find((a) => (a.action.action_type === 'EmailContacts' || (a.action.action_type === 'AutoRenew' && !issuesInternally(policy)))
        && triggerPassed(a.trigger, nbf, exp, now));
      if (!due) return undefined;
      return { vaultName: vault.name, certificate: v.name, id: ids(vault, v.name, v.version).id, version: v.version, expires: exp, action: due.action.action_type };
    },

    /** The integrated CA's root certificate (PEM), for clients to trust. */
    async caRootPem() {
      if (!deps.ca) throw notFound('NotFound', 'This deployment has no integrated CA.');
      return deps.ca.rootPem();
    },

    async getPolicy(vault: Vault, name: string) {
      const v = await current(vault, name);
      return policyOut(vault, v.name, meta(v).policy);
    },

    async updatePolicy(vault: Vault, name: string, input: PolicyInput) {
      checkName(name);
      const now = clock.now();
      const v = await store.updateMeta(vault, 'certificates', name, undefined, (prior) =>
        ({ ...prior, policy: resolvePolicy(input, (prior as CertificateMeta).policy, now) }));
      if (!v) throw certificateNotFound(name);
      return policyOut(vault, v.name, meta(v).policy);
    },

    async getOperation(vault: Vault, name: string) {
      checkName(name);
      const waiting = await pendingKey(vault, name);
      if (waiting) return operationOut(vault, waiting.key.name, waiting.pending.operation);
      const v = await store.get(vault, 'certificates', name);
      const op = v && meta(v).operation;
      if (!v || !op) throw pendingNotFound(name);
      return operationOut(vault, v.name, op);
    },

    /** A pending (Unknown issuer) request is cancelled at once; a completed operation only records the request. */
    async cancelOperation(vault: Vault, name: string, cancellationRequested: boolean) {
      checkName(name);
      const waiting = await pendingKey(vault, name);
      if (waiting && cancellationRequested) {
        const v = await store.updateMeta(vault, 'keys', name, waiting.key.version, (prior) => {
          const pending = prior.pending as PendingIssuance;
          return { ...prior, pending: { ...pending, operation: { ...pending.operation, cancellation_requested: true, status: 'cancelled' } } };
        });
        return operationOut(vault, name, (v!.meta.pending as PendingIssuance).operation);
      }
      return this.getOperation(vault, name);
    },

    async deleteOperation(vault: Vault, name: string) {
      const op = await this.getOperation(vault, name);
      const waiting = await pendingKey(vault, name);
      // A certificate that never had a version is not created at all: its pending key goes with the request.
      if (waiting && !(await store.get(vault, 'certificates', name))) {
        await store.softDelete(vault, 'keys', name, vault.properties.softDeleteRetentionInDays);
        await store.purge(vault, 'keys', name);
        return op;
      }
      const [collection, version] = waiting ? ['keys' as const, waiting.key.version] : ['certificates' as const, undefined];
      await store.updateMeta(vault, collection, name, version, (prior) => {
        const { operation: _op, pending: _pending, ...rest } = prior as CertificateMeta & { pending?: unknown };
        return rest;
      });
      return op;
    },

    /** Completes an Unknown-issuer request with the CA's certificate (and chain), if it is for the pending key. */
    async merge(vault: Vault, name: string, input: MergeCertificateInput) {
      checkName(name);
      checkTags(input.tags);
      const waiting = await pendingKey(vault, name);
      if (!waiting || waiting.pending.operation.status !== 'inProgress') throw pendingNotFound(name);
      let chain: Buffer[];
      let facts;
      try {
        chain = input.x5c.map((c) => Buffer.from(c, 'base64'));
        facts = certificateFacts(chain[0]);
        chain.slice(1).forEach((c) => certificateFacts(c));
      } catch {
        throw badParameter('The specified X.509 certificate content is malformed.');
      }
      const key = loadPrivate(waiting.key.open());
      if (!keyMatches(key, facts)) throw badParameter("Public key from x509 certificate and key of this instance doesn't match");
      const { policy } = waiting.pending;
      const operation: CertificateOperation = { ...waiting.pending.operation, status: 'completed', csr: undefined, target: `${base(vault)}/certificates/${name}` };
      const v = await storeCertificate(vault, name, waiting.key.version, key, chain, policy,
        { tags: input.tags ?? waiting.pending.tags, attributes: { enabled: input.attributes?.enabled ?? waiting.pending.enabled } }, operation);
      await store.updateMeta(vault, 'keys', name, waiting.key.version, (prior) => {
        const { pending: _pending, ...rest } = prior;
        return { ...rest, nbf: facts.nbf, exp: facts.exp, enabled: meta(v).enabled };
      });
      return bundle(vault, v);
    },

    /** One blob with every version of the certificate and of its managed key and secret. */
    async backup(vault: Vault, name: string) {
      checkName(name);
      const exported = async (collection: 'certificates' | 'keys' | 'secrets') =>
        ((await store.exportVersions(vault, collection, name)) ?? []).map((v) => ({ ...v, payload: v.payload.toString('base64') }));
      const versions = await exported('certificates');
      if (!versions.length) throw certificateNotFound(name);
      const doc: CertificateBackup = { name, versions, keys: await exported('keys'), secrets: await exported('secrets') };
      return { value: backups.seal(doc) };
    },

    /** Restores all three collections, after checking that none of them holds the name (live or deleted). */
    async restore(vault: Vault, blob: string) {
      const doc = backups.open(blob) as CertificateBackup;
      if (!Array.isArray(doc.keys) || !Array.isArray(doc.secrets)) throw badParameter('Backup blob contains invalid or corrupt version.');
      for (const collection of ['certificates', 'keys', 'secrets'] as const) {
        if (await store.get(vault, collection, doc.name)) throw conflict('Conflict', `Certificate ${doc.name} already exists.`);
        if (await store.getDeleted(vault, collection, doc.name)) errors.rethrow(new StoreError('DeletedButRecoverable', doc.name), doc.name);
      }
      const decode = (versions: BackupDocument['versions']) => versions.map((v) => ({ ...v, payload: Buffer.from(v.payload, 'base64') }));
      if (doc.keys.length) await store.importVersions(vault, 'keys', doc.name, decode(doc.keys)).catch((e) => errors.rethrow(e, doc.name));
      if (doc.secrets.length) await store.importVersions(vault, 'secrets', doc.name, decode(doc.secrets)).catch((e) => errors.rethrow(e, doc.name));
      const restored = await store.importVersions(vault, 'certificates', doc.name, decode(doc.versions)).catch((e) => errors.rethrow(e, doc.name));
      return bundle(vault, restored);
    },
  };
}

export type CertificatesService = ReturnType<typeof createCertificatesService>;
