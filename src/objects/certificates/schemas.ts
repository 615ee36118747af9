/** Route schemas for the certificates family: they validate input and shape output (nothing else goes out). */
import { tags, attributesIn, attributesOut, deletedFields, listOf } from '../shared-schemas.js';

const strings = { type: 'array', items: { type: 'string' } } as const;

const policyProperties = {
  key_props: {
    type: 'object',
    properties: {
      exportable: { type: 'boolean' }, kty: { type: 'string' }, key_size: { type: 'integer' },
      reuse_key: { type: 'boolean' }, crv: { type: 'string' },
    },
  },
  secret_props: { type: 'object', properties: { contentType: { type: 'string' } } },
  x509_props: {
    type: 'object',
    properties: {
      subject: { type: 'string' },
      ekus: strings,
      sans: { type: 'object', properties: { emails: strings, dns_names: strings, upns: strings } },
      key_usage: strings,
      validity_months: { type: 'integer' },
    },
  },
  lifetime_actions: {
    type: 'array',
    items: {
      type: 'object',
      properties: {
        trigger: { type: 'object', properties: { lifetime_percentage: { type: 'integer' }, days_before_expiry: { type: 'integer' } } },
        action: { type: 'object', properties: { action_type: { type: 'string' } } },
      },
    },
  },
  issuer: { type: 'object', properties: { name: { type: 'string' }, cty: { type: 'string' }, cert_transparency: { type: 'boolean' } } },
} as const;

export const policyIn = {
  type: 'object',
  properties: { ...policyProperties, attributes: attributesIn },
} as const;

export const policyOut = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    ...policyProperties,
    attributes: { type: 'object', properties: { enabled: { type: 'boolean' }, created: { type: 'integer' }, updated: { type: 'integer' } } },
  },
} as const;

const itemProperties = { id: { type: 'string' }, attributes: attributesOut, tags, x5t: { type: 'string' } } as const;

export const certificateBundle = {
  type: 'object',
  properties: {
    ...itemProperties,
    kid: { type: 'string' }, sid: { type: 'string' }, cer: { type: 'string' }, contentType: { type: 'string' }, policy: policyOut,
  },
} as const;

export const deletedCertificateBundle = { type: 'object', properties: { ...certificateBundle.properties, ...deletedFields } } as const;
export const certificateList = listOf({ type: 'object', properties: itemProperties });
export const deletedCertificateList = listOf({ type: 'object', properties: { ...itemProperties, ...deletedFields } });

export const operation = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    issuer: { type: 'object', properties: { name: { type: 'string' } } },
    csr: { type: 'string' },
    cancellation_requested: { type: 'boolean' },
    status: { type: 'string' },
    status_details: { type: 'string' },
    target: { type: 'string' },
    request_id: { type: 'string' },
  },
} as const;

export const createBody = {
  type: 'object',
  properties: { policy: policyIn, attributes: attributesIn, tags, preserveCertOrder: { type: 'boolean' } },
} as const;

export const importBody = {
  type: 'object',
  required: ['value'],
  properties: { ...createBody.properties, value: { type: 'string', minLength: 1 }, pwd: { type: 'string' } },
} as const;

export const updateBody = { type: 'object', properties: { policy: policyIn, attributes: attributesIn, tags } } as const;

export const cancelBody = {
  type: 'object',
  required: ['cancellation_requested'],
  properties: { cancellation_requested: { type: 'boolean' } },
} as const;

export const mergeBody = {
  type: 'object',
  required: ['x5c'],
  properties: { x5c: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } }, attributes: attributesIn, tags },
} as const;

const contact = { type: 'object', properties: { email: { type: 'string' }, name: { type: 'string' }, phone: { type: 'string' } } } as const;
export const contactsBody = { type: 'object', required: ['contacts'], properties: { contacts: { type: 'array', items: contact } } } as const;
export const contactsOut = { type: 'object', properties: { id: { type: 'string' }, contacts: { type: 'array', items: contact } } } as const;

const issuerProperties = {
  provider: { type: 'string', minLength: 1 },
  credentials: { type: 'object', properties: { account_id: { type: 'string' }, pwd: { type: 'string' } } },
  org_details: {
    type: 'object',
    properties: {
      id: { type: 'string' },
      admin_details: {
        type: 'array',
        items: { type: 'object', properties: { first_name: { type: 'string' }, last_name: { type: 'string' }, email: { type: 'string' }, phone: { type: 'string' } } },
      },
    },
  },
} as const;
export const issuerSetBody = { type: 'object', required: ['provider'], properties: { ...issuerProperties, attributes: { type: 'object', properties: { enabled: { type: 'boolean' } } } } } as const;
export const issuerUpdateBody = { type: 'object', properties: issuerSetBody.properties } as const;
/** The account password is write-only: the output schema has no `pwd`. */
export const issuerOut = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    provider: { type: 'string' },
    credentials: { type: 'object', properties: { account_id: { type: 'string' } } },
    org_details: issuerProperties.org_details,
    attributes: { type: 'object', properties: { enabled: { type: 'boolean' }, created: { type: 'integer' }, updated: { type: 'integer' } } },
  },
} as const;
export const issuerList = listOf({ type: 'object', properties: { id: { type: 'string' }, provider: { type: 'string' } } });
