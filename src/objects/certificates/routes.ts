import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { CertificatesService, CreateCertificateInput, ImportCertificateInput, MergeCertificateInput, UpdateCertificateInput } from './service.js';
import type { PolicyInput } from './policy.js';
import * as s from './schemas.js';
import { lifecycleRoutes } from '../lifecycle.js';
import type { CertificateContacts, Contact } from './contacts.js';
import type { CertificateIssuers, IssuerInput } from './issuers.js';
import type { Endpoints } from '../../endpoints.js';

type Params = { name: string; version?: string };

/** The certificates endpoint family of the vault data plane (`/certificates`, `/deletedcertificates`). */
export function certificatesRoutes(app: FastifyInstance, deps: {
  certificates: CertificatesService; contacts: CertificateContacts; issuers: CertificateIssuers; endpoints: Endpoints;
}) {
  const { certificates, contacts, issuers } = deps;
  const vault = (req: FastifyRequest) => req.coffer.vault!;
  const route = (operation: string) => ({ config: { plane: 'vault' as const, operation } });

  app.get('/certificates/contacts', { ...route('CertificateContactsGet'), schema: { response: { 200: s.contactsOut } } },
    (req) => contacts.get(vault(req)));
  app.put<{ Body: { contacts: Contact[] } }>('/certificates/contacts', {
    ...route('CertificateContactsSet'), schema: { body: s.contactsBody, response: { 200: s.contactsOut } },
  }, (req) => contacts.set(vault(req), req.body.contacts));
  app.delete('/certificates/contacts', { ...route('CertificateContactsDelete'), schema: { response: { 200: s.contactsOut } } },
    (req) => contacts.delete(vault(req)));

  type IssuerParams = { issuer: string };
  app.get('/certificates/issuers', { ...route('CertificateIssuerList'), schema: { response: { 200: s.issuerList } } },
    (req) => issuers.list(vault(req)));
  app.get<{ Params: IssuerParams }>('/certificates/issuers/:issuer', { ...route('CertificateIssuerGet'), schema: { response: { 200: s.issuerOut } } },
    (req) => issuers.get(vault(req), req.params.issuer));
  app.put<{ Params: IssuerParams; Body: IssuerInput }>('/certificates/issuers/:issuer', {
    ...route('CertificateIssuerSet'), schema: { body: s.issuerSetBody, response: { 200: s.issuerOut } },
  }, (req) => issuers.set(vault(req), req.params.issuer, req.body));
  app.patch<{ Params: IssuerParams; Body: IssuerInput }>('/certificates/issuers/:issuer', {
    ...route('CertificateIssuerUpdate'), schema: { body: s.issuerUpdateBody, response: { 200: s.issuerOut } },
  }, (req) => issuers.update(vault(req), req.params.issuer, req.body ?? {}));
  app.delete<{ Params: IssuerParams }>('/certificates/issuers/:issuer', { ...route('CertificateIssuerDelete'), schema: { response: { 200: s.issuerOut } } },
    (req) => issuers.delete(vault(req), req.params.issuer));

  // The integrated CA's root, public like the deployment's TLS CA: trusting it is the point.
  app.get('/coffer/certificate-ca.pem', { config: { plane: 'public' as const, operation: 'CertificateCaRoot' } }, async (_req, reply) => {
    reply.type('application/x-pem-file');
    return certificates.caRootPem();
  });

  app.post<{ Params: Params; Body: CreateCertificateInput }>('/certificates/:name/create', {
    ...route('CertificateCreate'), schema: { body: s.createBody, response: { 202: s.operation } },
  }, async (req, reply) => {
    const op = await certificates.create(vault(req), req.params.name, req.body ?? {});
    reply.code(202).header('location', `${op.id}?api-version=${req.coffer.apiVersion}`);
    return op;
  });

  app.post<{ Params: Params; Body: ImportCertificateInput }>('/certificates/:name/import', {
    ...route('CertificateImport'), schema: { body: s.importBody, response: { 200: s.certificateBundle } },
  }, (req) => certificates.import(vault(req), req.params.name, req.body));

  app.get<{ Params: Params }>('/certificates/:name/policy', { ...route('CertificatePolicyGet'), schema: { response: { 200: s.policyOut } } },
    (req) => certificates.getPolicy(vault(req), req.params.name));
  app.patch<{ Params: Params; Body: PolicyInput }>('/certificates/:name/policy', {
    ...route('CertificatePolicyUpdate'), schema: { body: s.policyIn, response: { 200: s.policyOut } },
  }, (req) => certificates.updatePolicy(vault(req), req.params.name, req.body ?? {}));

  app.get<{ Params: Params }>('/certificates/:name/pending', { ...route('CertificateOperationGet'), schema: { response: { 200: s.operation } } },
    (req) => certificates.getOperation(vault(req), req.params.name));
  app.patch<{ Params: Params; Body: { cancellation_requested: boolean } }>('/certificates/:name/pending', {
    ...route('CertificateOperationUpdate'), schema: { body: s.cancelBody, response: { 200: s.operation } },
  }, (req) => certificates.cancelOperation(vault(req), req.params.name, req.body.cancellation_requested));
  app.delete<{ Params: Params }>('/certificates/:name/pending', { ...route('CertificateOperationDelete'), schema: { response: { 200: s.operation } } },
    (req) => certificates.deleteOperation(vault(req), req.params.name));

  app.post<{ Params: Params; Body: MergeCertificateInput }>('/certificates/:name/pending/merge', {
    ...route('CertificateMerge'), schema: { body: s.mergeBody, response: { 201: s.certificateBundle } },
  }, async (req, reply) => {
    const merged = await certificates.merge(vault(req), req.params.name, req.body);
    reply.code(201);
    return merged;
  });

  for (const url of ['/certificates/:name', '/certificates/:name/:version']) {
    app.get<{ Params: Params }>(url, { ...route('CertificateGet'), schema: { response: { 200: s.certificateBundle } } },
      (req) => certificates.get(vault(req), req.params.name, req.params.version || undefined));
    app.patch<{ Params: Params; Body: UpdateCertificateInput }>(url, {
      ...route('CertificateUpdate'), schema: { body: s.updateBody, response: { 200: s.certificateBundle } },
    }, (req) => certificates.update(vault(req), req.params.name, req.params.version || undefined, req.body ?? {}));
  }

  lifecycleRoutes(app, {
    service: certificates, endpoints: deps.endpoints, collection: 'certificates', operationPrefix: 'Certificate',
    schemas: {
      bundle: s.certificateBundle, deletedBundle: s.deletedCertificateBundle,
      list: s.certificateList, deletedList: s.deletedCertificateList,
    },
  });
}
