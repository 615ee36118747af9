import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { KeysService, CreateKeyInput, ImportKeyInput, UpdateKeyInput, CryptoOperation } from './service.js';
import type { RotationPolicyInput } from './rotation-policy.js';
import * as s from './schemas.js';
import { pageSize, nextLinkFor, type ListQuery } from '../collection-helpers.js';
import type { Endpoints } from '../../endpoints.js';

type Params = { name: string; version?: string };
type OperationBody = { alg: string; value: string };

/** URL segment → key operation and Azure's operation name. */
const CRYPT_ROUTES: [string, CryptoOperation, string][] = [
  ['encrypt', 'encrypt', 'KeyEncrypt'],
  ['decrypt', 'decrypt', 'KeyDecrypt'],
  ['wrapkey', 'wrapKey', 'KeyWrap'],
  ['unwrapkey', 'unwrapKey', 'KeyUnwrap'],
];

/** The keys endpoint family of the vault data plane (`/keys`, `/deletedkeys`, `/rng`). */
export function keysRoutes(app: FastifyInstance, deps: { keys: KeysService; endpoints: Endpoints }) {
  const { keys } = deps;
  const vault = (req: FastifyRequest) => req.coffer.vault!;
  const version = (req: FastifyRequest<{ Params: Params }>) => req.params.version || undefined;
  const nextLink = nextLinkFor(deps.endpoints);
  const route = (operation: string) => ({ config: { plane: 'vault' as const, operation } });

  app.post<{ Params: Params; Body: CreateKeyInput }>('/keys/:name/create', {
    ...route('KeyCreate'), schema: { body: s.createBody, response: { 200: s.keyBundle } },
  }, (req) => keys.create(vault(req), req.params.name, req.body));

  app.put<{ Params: Params; Body: ImportKeyInput }>('/keys/:name', {
    ...route('KeyImport'), schema: { body: s.importBody, response: { 200: s.keyBundle } },
  }, (req) => keys.import(vault(req), req.params.name, req.body));

  for (const url of ['/keys/:name', '/keys/:name/:version']) {
    app.get<{ Params: Params }>(url, { ...route('KeyGet'), schema: { response: { 200: s.keyBundle } } },
      (req) => keys.get(vault(req), req.params.name, version(req)));
    app.patch<{ Params: Params; Body: UpdateKeyInput }>(url, {
      ...route('KeyUpdate'), schema: { body: s.updateBody, response: { 200: s.keyBundle } },
    }, (req) => keys.update(vault(req), req.params.name, version(req), req.body ?? {}));
  }

  app.get<{ Querystring: ListQuery }>('/keys', { ...route('KeyList'), schema: { querystring: s.listQuery, response: { 200: s.keyList } } },
    (req) => {
      const size = pageSize(req.query);
      return keys.list(vault(req), size, req.query.$skiptoken, nextLink(req, '/keys', size));
    });

  app.get<{ Params: Params; Querystring: ListQuery }>('/keys/:name/versions', {
    ...route('KeyListVersions'), schema: { querystring: s.listQuery, response: { 200: s.keyList } },
  }, (req) => {
    const size = pageSize(req.query);
    return keys.listVersions(vault(req), req.params.name, size, req.query.$skiptoken, nextLink(req, `/keys/${req.params.name}/versions`, size));
  });

  app.delete<{ Params: Params }>('/keys/:name', { ...route('KeyDelete'), schema: { response: { 200: s.deletedKeyBundle } } },
    (req) => keys.delete(vault(req), req.params.name));

  app.get<{ Querystring: ListQuery }>('/deletedkeys', {
    ...route('KeyListDeleted'), schema: { querystring: s.listQuery, response: { 200: s.deletedKeyList } },
  }, (req) => {
    const size = pageSize(req.query);
    return keys.listDeleted(vault(req), size, req.query.$skiptoken, nextLink(req, '/deletedkeys', size));
  });

  app.get<{ Params: Params }>('/deletedkeys/:name', { ...route('KeyGetDeleted'), schema: { response: { 200: s.deletedKeyBundle } } },
    (req) => keys.getDeleted(vault(req), req.params.name));

  app.post<{ Params: Params }>('/deletedkeys/:name/recover', { ...route('KeyRecover'), schema: { response: { 200: s.keyBundle } } },
    (req) => keys.recover(vault(req), req.params.name));

  app.delete<{ Params: Params }>('/deletedkeys/:name', route('KeyPurge'), async (req, reply) => {
    await keys.purge(vault(req), req.params.name);
    reply.code(204).send();
  });

  app.post<{ Params: Params }>('/keys/:name/backup', { ...route('KeyBackup'), schema: { response: { 200: s.backupResult } } },
    (req) => keys.backup(vault(req), req.params.name));

  app.post<{ Body: { value: string } }>('/keys/restore', {
    ...route('KeyRestore'), schema: { body: s.restoreBody, response: { 200: s.keyBundle } },
  }, (req) => keys.restore(vault(req), req.body.value));

  app.post<{ Params: Params }>('/keys/:name/rotate', { ...route('KeyRotate'), schema: { response: { 200: s.keyBundle } } },
    (req) => keys.rotate(vault(req), req.params.name));

  app.get<{ Params: Params }>('/keys/:name/rotationpolicy', {
    ...route('KeyRotationPolicyGet'), schema: { response: { 200: s.rotationPolicy } },
  }, (req) => keys.getRotationPolicy(vault(req), req.params.name));

  app.put<{ Params: Params; Body: RotationPolicyInput }>('/keys/:name/rotationpolicy', {
    ...route('KeyRotationPolicySet'), schema: { body: s.rotationPolicyBody, response: { 200: s.rotationPolicy } },
  }, (req) => keys.setRotationPolicy(vault(req), req.params.name, req.body ?? {}));

  for (const url of ['/keys/:name/:version', '/keys/:name']) {
    for (const [segment, operation, name] of CRYPT_ROUTES) {
      app.post<{ Params: Params; Body: OperationBody }>(`${url}/${segment}`, {
        ...route(name), schema: { body: s.operationBody, response: { 200: s.operationResult } },
      }, (req) => keys.crypt(vault(req), req.params.name, version(req), operation, req.body.alg, req.body.value));
    }
    app.post<{ Params: Params; Body: OperationBody }>(`${url}/sign`, {
      ...route('KeySign'), schema: { body: s.operationBody, response: { 200: s.operationResult } },
    }, (req) => keys.sign(vault(req), req.params.name, version(req), req.body.alg, req.body.value));
    app.post<{ Params: Params; Body: OperationBody & { digest: string } }>(`${url}/verify`, {
      ...route('KeyVerify'), schema: { body: s.verifyBody, response: { 200: s.verifyResult } },
    }, (req) => keys.verify(vault(req), req.params.name, version(req), req.body.alg, req.body.digest, req.body.value));
  }

  app.post<{ Body: { count: number } }>('/rng', {
    ...route('GetRandomBytes'), schema: { body: s.randomBody, response: { 200: s.randomResult } },
  }, (req) => keys.randomBytes(req.body.count));
}
