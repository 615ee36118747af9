import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { SecretsService, SetSecretInput, UpdateSecretInput } from './service.js';
import * as s from './schemas.js';
import { pageSize, nextLinkFor, type ListQuery } from '../collection-helpers.js';
import type { Endpoints } from '../../endpoints.js';

type Params = { name: string; version?: string };
/** The secrets endpoint family of the vault data plane (`/secrets`, `/deletedsecrets`). */
export function secretsRoutes(app: FastifyInstance, deps: { secrets: SecretsService; endpoints: Endpoints }) {
  const { secrets, endpoints } = deps;
  const vault = (req: FastifyRequest) => req.coffer.vault!;
  const nextLink = nextLinkFor(endpoints);
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

  app.get<{ Querystring: ListQuery }>('/secrets', { ...route('SecretList'), schema: { querystring: s.listQuery, response: { 200: s.secretList } } },
    (req) => {
      const size = pageSize(req.query);
      return secrets.list(vault(req), size, req.query.$skiptoken, nextLink(req, '/secrets', size));
    });

  app.get<{ Params: Params; Querystring: ListQuery }>('/secrets/:name/versions', {
    ...route('SecretListVersions'), schema: { querystring: s.listQuery, response: { 200: s.secretList } },
  }, (req) => {
    const size = pageSize(req.query);
    return secrets.listVersions(vault(req), req.params.name, size, req.query.$skiptoken, nextLink(req, `/secrets/${req.params.name}/versions`, size));
  });

  app.delete<{ Params: Params }>('/secrets/:name', { ...route('SecretDelete'), schema: { response: { 200: s.deletedSecretBundle } } },
    (req) => secrets.delete(vault(req), req.params.name));

  app.get<{ Querystring: ListQuery }>('/deletedsecrets', {
    ...route('SecretListDeleted'), schema: { querystring: s.listQuery, response: { 200: s.deletedSecretList } },
  }, (req) => {
    const size = pageSize(req.query);
    return secrets.listDeleted(vault(req), size, req.query.$skiptoken, nextLink(req, '/deletedsecrets', size));
  });

  app.get<{ Params: Params }>('/deletedsecrets/:name', { ...route('SecretGetDeleted'), schema: { response: { 200: s.deletedSecretBundle } } },
    (req) => secrets.getDeleted(vault(req), req.params.name));

  app.post<{ Params: Params }>('/deletedsecrets/:name/recover', { ...route('SecretRecover'), schema: { response: { 200: s.secretBundle } } },
    (req) => secrets.recover(vault(req), req.params.name));

  app.delete<{ Params: Params }>('/deletedsecrets/:name', route('SecretPurge'), async (req, reply) => {
    await secrets.purge(vault(req), req.params.name);
    reply.code(204).send();
  });

  app.post<{ Params: Params }>('/secrets/:name/backup', { ...route('SecretBackup'), schema: { response: { 200: s.backupResult } } },
    (req) => secrets.backup(vault(req), req.params.name));

  app.post<{ Body: { value: string } }>('/secrets/restore', {
    ...route('SecretRestore'), schema: { body: s.restoreBody, response: { 200: s.secretBundle } },
  }, (req) => secrets.restore(vault(req), req.body.value));
}
