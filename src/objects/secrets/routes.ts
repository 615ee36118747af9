import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { SecretsService, SetSecretInput, UpdateSecretInput } from './service.js';
import * as s from './schemas.js';
import { lifecycleRoutes } from '../lifecycle.js';
import type { Endpoints } from '../../endpoints.js';

type Params = { name: string; version?: string };
/** The secrets endpoint family of the vault data plane (`/secrets`, `/deletedsecrets`). */
export function secretsRoutes(app: FastifyInstance, deps: { secrets: SecretsService; endpoints: Endpoints }) {
  const { secrets, endpoints } = deps;
  const vault = (req: FastifyRequest) => req.coffer.vault!;
  const route = (operation: string) => ({ config: { plane: 'vault' as const, operation } });

  app.put<{ Params: Params; Body: SetSecretInput }>('/secrets/:name', {
    ...route('SecretSet'), schema: { body: s.setBody, response: { 200: s.secretBundle } },
  }, (req) => secrets.set(vault(req), req.params.name, req.body));

  for (const url of ['/secrets/:name', '/secrets/:name/:version']) {
    app.get<{ Params: Params }>(url, { ...route('SecretGet'), schema: { response: { 200: s.secretBundle } } },
      (req) => secrets.get(vault(req), req.params.name, req.params.version || undefined));
    app.patch<{ Params: Params; Body: UpdateSecretInput }>(url, {
      ...route('SecretUpdate'), schema: { body: s.updateBody, response: { 200: s.secretBundle } },
    }, (req) => secrets.update(vault(req), req.params.name, req.params.version || undefined, req.body ?? {}));
  }

  lifecycleRoutes(app, {
    service: secrets, endpoints, collection: 'secrets', operationPrefix: 'Secret',
    schemas: { bundle: s.secretBundle, deletedBundle: s.deletedSecretBundle, list: s.secretList, deletedList: s.deletedSecretList },
  });
}
