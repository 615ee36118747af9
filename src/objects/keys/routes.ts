import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { KeysService, CreateKeyInput, ImportKeyInput, UpdateKeyInput, CryptoOperation, ReleaseKeyInput } from './service.js';
import type { RotationPolicyInput } from './rotation-policy.js';
import * as s from './schemas.js';
import { lifecycleRoutes } from '../lifecycle.js';
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

  lifecycleRoutes(app, {
    service: keys, endpoints: deps.endpoints, collection: 'keys', operationPrefix: 'Key',
    schemas: { bundle: s.keyBundle, deletedBundle: s.deletedKeyBundle, list: s.keyList, deletedList: s.deletedKeyList },
  });

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
    app.post<{ Params: Params; Body: ReleaseKeyInput }>(`${url}/release`, {
      ...route('KeyRelease'), schema: { body: s.releaseBody, response: { 200: s.operationResult } },
    }, (req) => keys.release(vault(req), req.params.name, version(req), req.body));
  }

  app.post<{ Body: { count: number } }>('/rng', {
    ...route('GetRandomBytes'), schema: { body: s.randomBody, response: { 200: s.randomResult } },
  }, (req) => keys.randomBytes(req.body.count));
}
