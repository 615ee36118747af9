/** Route schemas for the keys family: they validate input and shape output (no private key field can go out). */
import { tags, attributesIn, attributesOut, deletedFields, listOf } from '../shared-schemas.js';

const base64url = { type: 'string', pattern: '^[A-Za-z0-9_\\-+/]*={0,2}$' } as const;
const keyOps = { type: 'array', items: { type: 'string' } } as const;

/** The public JSON Web Key: the output schema lists only public members, so d, p, q… can never be serialised. */
const publicJwk = {
  type: 'object',
  properties: {
    kid: { type: 'string' }, kty: { type: 'string' }, key_ops: keyOps,
    n: { type: 'string' }, e: { type: 'string' }, crv: { type: 'string' }, x: { type: 'string' }, y: { type: 'string' },
  },
} as const;

const keyAttributesOut = {
  type: 'object',
  properties: { ...attributesOut.properties, exportable: { type: 'boolean' } },
} as const;

const keyAttributesIn = {
  type: 'object',
  properties: { ...attributesIn.properties, exportable: { type: 'boolean' } },
} as const;

/** Azure's KeyReleasePolicy: `data` is the base64url of the policy JSON. */
const releasePolicy = {
  type: 'object',
  properties: { contentType: { type: 'string' }, data: base64url, immutable: { type: 'boolean' } },
} as const;

export const keyBundle = {
  type: 'object',
  properties: { key: publicJwk, attributes: keyAttributesOut, tags, managed: { type: 'boolean' }, release_policy: releasePolicy },
} as const;

export const deletedKeyBundle = { type: 'object', properties: { ...keyBundle.properties, ...deletedFields } } as const;

const keyItem = { kid: { type: 'string' }, attributes: keyAttributesOut, tags, managed: { type: 'boolean' } } as const;
export const keyList = listOf({ type: 'object', properties: keyItem });
export const deletedKeyList = listOf({ type: 'object', properties: { ...keyItem, ...deletedFields } });

export const createBody = {
  type: 'object',
  required: ['kty'],
  properties: {
    kty: { type: 'string' },
    key_size: { type: 'integer' },
    public_exponent: { type: 'integer' },
    crv: { type: 'string' },
    key_ops: keyOps,
    attributes: keyAttributesIn,
    tags,
    release_policy: releasePolicy,
  },
} as const;

export const importBody = {
  type: 'object',
  required: ['key'],
  properties: {
    Hsm: { type: 'boolean' },
    key: {
      type: 'object',
      required: ['kty'],
      properties: {
        kty: { type: 'string' }, crv: { type: 'string' }, key_ops: keyOps,
        ...Object.fromEntries(['n', 'e', 'd', 'p', 'q', 'dp', 'dq', 'qi', 'x', 'y'].map((f) => [f, base64url])),
      },
    },
    attributes: keyAttributesIn,
    tags,
    release_policy: releasePolicy,
  },
} as const;

export const updateBody = {
  type: 'object',
  properties: { key_ops: keyOps, attributes: attributesIn, tags, release_policy: releasePolicy },
} as const;

export const releaseBody = {
  type: 'object',
  required: ['target'],
  properties: { target: { type: 'string', minLength: 1 }, nonce: { type: 'string' }, enc: { type: 'string' } },
} as const;

export const operationBody = {
  type: 'object',
  required: ['alg', 'value'],
  properties: { alg: { type: 'string' }, value: base64url },
} as const;

export const verifyBody = {
  type: 'object',
  required: ['alg', 'digest', 'value'],
  properties: { alg: { type: 'string' }, digest: base64url, value: base64url },
} as const;

export const operationResult = { type: 'object', properties: { kid: { type: 'string' }, value: { type: 'string' } } } as const;
export const verifyResult = { type: 'object', properties: { value: { type: 'boolean' } } } as const;

export const randomBody = {
  type: 'object',
  required: ['count'],
  properties: { count: { type: 'integer', minimum: 1, maximum: 128 } },
} as const;
export const randomResult = { type: 'object', properties: { value: { type: 'string' } } } as const;

const lifetimeAction = {
  type: 'object',
  properties: {
    trigger: { type: 'object', properties: { timeAfterCreate: { type: 'string' }, timeBeforeExpiry: { type: 'string' } } },
    action: { type: 'object', properties: { type: { type: 'string' } } },
  },
} as const;

export const rotationPolicyBody = {
  type: 'object',
  properties: {
    lifetimeActions: { type: 'array', items: lifetimeAction },
    attributes: { type: 'object', properties: { expiryTime: { type: ['string', 'null'] } } },
  },
} as const;

export const rotationPolicy = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    lifetimeActions: { type: 'array', items: lifetimeAction },
    attributes: {
      type: 'object',
      properties: { expiryTime: { type: 'string' }, created: { type: 'integer' }, updated: { type: 'integer' } },
    },
  },
} as const;
