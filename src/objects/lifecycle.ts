import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Vault } from '../control-plane/vaults.js';
import type { Endpoints } from '../endpoints.js';
import type { Keyring } from '../crypto/envelope.js';
import { KeyVaultError, badParameter, conflict, forbidden, notFound } from '../http/errors.js';
import { StoreError, type Collection, type ObjectStore, type StoredVersion } from './store.js';
import {
  createBackupCodec, deletedObjectFields, listPage, nextLinkFor, pageSize, type BackupDocument, type ListQuery,
} from './collection-helpers.js';
import * as shared from './shared-schemas.js';

/**
 * The lifecycle every object collection shares — list, versions, soft delete, recover, purge, backup, restore —
 * written once: a collection supplies its names, messages and output shapes, and gets the operations and routes.
 */
export const HELP = 'For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182';

/** Azure's errors for a collection, e.g. noun `Key` → KeyNotFound, "A key with (name/id) …". */
export function objectErrors(noun: 'Secret' | 'Key' | 'Certificate') {
  const lower = noun.toLowerCase();
  return {
    notFound: (name: string, version?: string) => notFound(`${noun}NotFound`,
      `A ${lower} with (name/id) ${version ? `${name}/${version}` : name} was not found in this key vault. If you recently deleted this ${lower} you may be able to recover it using the correct recovery command. ${HELP}`),
    deletedNotFound: (name: string) => notFound(`${noun}NotFound`, `Deleted ${noun} not found: ${name}`),
    rethrow(err: unknown, name: string): never {
      if (err instanceof StoreError) {
        if (err.reason === 'DeletedButRecoverable') {
          throw new KeyVaultError(409, 'Conflict', `${noun} ${name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the ${lower} can be recovered or purged.`, 'ObjectIsDeletedButRecoverable');
        }
        if (err.reason === 'AlreadyExists') throw conflict('Conflict', `${noun} ${name} already exists.`);
        if (err.reason === 'BadContinuation') throw badParameter(err.message);
      }
      throw err;
    },
  };
}

export interface CollectionShape {
  collection: Collection;
  errors: ReturnType<typeof objectErrors>;
  checkName(name: string): void;
  /** A version as delete, recover and restore return it (never a secret value). */
  bundle(vault: Vault, v: StoredVersion): object;
  /** A list row; `withVersion` is false in the list of names. */
  item(vault: Vault, v: StoredVersion, withVersion: boolean): object;
  /** A last check of a backup before it is restored into `vault`. */
  beforeRestore?(vault: Vault, doc: BackupDocument): void | Promise<void>;
}

type NextLink = (token: string) => string;

export function createLifecycleOperations(deps: { store: ObjectStore; endpoints: Endpoints; keyring: Keyring }, shape: CollectionShape) {
  const { store, endpoints } = deps;
  const { collection, errors, checkName, bundle, item } = shape;
  const backups = createBackupCodec(deps.keyring, collection);
  const deletedPath = `deleted${collection}`;
  const deletedFields = (vault: Vault, d: Parameters<typeof deletedObjectFields>[2]) =>
    deletedObjectFields(endpoints.vaultUrl(vault.name), deletedPath, d);

  return {
    /** `_query`: the request's query, for collections whose list has filters of its own (certificates' includePending). */
    async list(vault: Vault, maxResults: number, continuation: string | undefined, nextLink: NextLink, _query?: ListQuery) {
      const p = await store.list(vault, collection, { maxResults, continuation }).catch((e) => errors.rethrow(e, ''));
      return listPage(p, (v) => item(vault, v, false), nextLink);
    },

    async listVersions(vault: Vault, name: string, maxResults: number, continuation: string | undefined, nextLink: NextLink) {
      checkName(name);
      const p = await store.listVersions(vault, collection, name, { maxResults, continuation }).catch((e) => errors.rethrow(e, name));
      if (!p) throw errors.notFound(name);
      return listPage(p, (v) => item(vault, v, true), nextLink);
    },

    async delete(vault: Vault, name: string) {
      checkName(name);
      const d = await store.softDelete(vault, collection, name, vault.properties.softDeleteRetentionInDays);
      if (!d) throw errors.notFound(name);
      return { ...bundle(vault, d.current), ...deletedFields(vault, d) };
    },

    async getDeleted(vault: Vault, name: string) {
      checkName(name);
      const d = await store.getDeleted(vault, collection, name);
      if (!d) throw errors.deletedNotFound(name);
      return { ...bundle(vault, d.current), ...deletedFields(vault, d) };
    },

    /** `_query`: as for `list` (certificates' includePending). */
    async listDeleted(vault: Vault, maxResults: number, continuation: string | undefined, nextLink: NextLink, _query?: ListQuery) {
      const p = await store.listDeleted(vault, collection, { maxResults, continuation }).catch((e) => errors.rethrow(e, ''));
      return listPage(p, (d) => ({ ...item(vault, d.current, false), ...deletedFields(vault, d) }), nextLink);
    },

    async recover(vault: Vault, name: string) {
      checkName(name);
      const v = await store.recover(vault, collection, name);
      if (!v) throw errors.deletedNotFound(name);
      return bundle(vault, v);
    },

    async purge(vault: Vault, name: string) {
      checkName(name);
      if (vault.properties.enablePurgeProtection) {
        throw forbidden(`Operation "purge" is not allowed because purge protection is enabled for this vault. Key Vault service will automatically purge it after the retention period has passed. ${HELP}`);
      }
      if (!(await store.purge(vault, collection, name))) throw errors.deletedNotFound(name);
    },

    /** An opaque blob: every version with its payload, sealed with the deployment's backup key (integrity-protected). */
    async backup(vault: Vault, name: string) {
      checkName(name);
      const versions = await store.exportVersions(vault, collection, name);
      if (!versions) throw errors.notFound(name);
      return { value: backups.seal({ name, versions: versions.map((v) => ({ ...v, payload: v.payload.toString('base64') })) }) };
    },

    async restore(vault: Vault, blob: string) {
      const doc = backups.open(blob);
      await shape.beforeRestore?.(vault, doc);
      const restored = await store.importVersions(vault, collection, doc.name, doc.versions.map((v) => ({ ...v, payload: Buffer.from(v.payload, 'base64') })))
        .catch((e) => errors.rethrow(e, doc.name));
      return bundle(vault, restored);
    },
  };
}

export type LifecycleOperations = ReturnType<typeof createLifecycleOperations>;

/** The lifecycle routes of a collection: `/{collection}…` and `/deleted{collection}…`, operations named `{prefix}List`… */
export function lifecycleRoutes(app: FastifyInstance, deps: {
  service: LifecycleOperations; endpoints: Endpoints; collection: Collection; operationPrefix: string;
  schemas: { bundle: object; deletedBundle: object; list: object; deletedList: object };
}) {
  const { service, collection, operationPrefix, schemas } = deps;
  type Params = { name: string };
  const vault = (req: FastifyRequest) => req.coffer.vault!;
  const nextLink = nextLinkFor(deps.endpoints);
  const route = (operation: string) => ({ config: { plane: 'vault' as const, operation: `${operationPrefix}${operation}` } });
  const deleted = `/deleted${collection}`;

  app.get<{ Querystring: ListQuery }>(`/${collection}`, {
    ...route('List'), schema: { querystring: shared.listQuery, response: { 200: schemas.list } },
  }, (req) => {
    const size = pageSize(req.query);
    return service.list(vault(req), size, req.query.$skiptoken, nextLink(req, `/${collection}`, size), req.query);
  });

  app.get<{ Params: Params; Querystring: ListQuery }>(`/${collection}/:name/versions`, {
    ...route('ListVersions'), schema: { querystring: shared.listQuery, response: { 200: schemas.list } },
  }, (req) => {
    const size = pageSize(req.query);
    return service.listVersions(vault(req), req.params.name, size, req.query.$skiptoken, nextLink(req, `/${collection}/${req.params.name}/versions`, size));
  });

  app.delete<{ Params: Params }>(`/${collection}/:name`, { ...route('Delete'), schema: { response: { 200: schemas.deletedBundle } } },
    (req) => service.delete(vault(req), req.params.name));

  app.get<{ Querystring: ListQuery }>(deleted, {
    ...route('ListDeleted'), schema: { querystring: shared.listQuery, response: { 200: schemas.deletedList } },
  }, (req) => {
    const size = pageSize(req.query);
    return service.listDeleted(vault(req), size, req.query.$skiptoken, nextLink(req, deleted, size), req.query);
  });

  app.get<{ Params: Params }>(`${deleted}/:name`, { ...route('GetDeleted'), schema: { response: { 200: schemas.deletedBundle } } },
    (req) => service.getDeleted(vault(req), req.params.name));

  app.post<{ Params: Params }>(`${deleted}/:name/recover`, { ...route('Recover'), schema: { response: { 200: schemas.bundle } } },
    (req) => service.recover(vault(req), req.params.name));

  app.delete<{ Params: Params }>(`${deleted}/:name`, route('Purge'), async (req, reply) => {
    await service.purge(vault(req), req.params.name);
    return reply.code(204).send();
  });

  app.post<{ Params: Params }>(`/${collection}/:name/backup`, { ...route('Backup'), schema: { response: { 200: shared.backupResult } } },
    (req) => service.backup(vault(req), req.params.name));

  app.post<{ Body: { value: string } }>(`/${collection}/restore`, {
    ...route('Restore'), schema: { body: shared.restoreBody, response: { 200: schemas.bundle } },
  }, (req) => service.restore(vault(req), req.body.value));
}
