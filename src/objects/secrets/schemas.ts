/** Route schemas for the secrets family: they validate input and shape output (nothing else goes out). */
const tags = { type: 'object', additionalProperties: { type: 'string' } } as const;

const attributesIn = {
  type: 'object',
  properties: {
    enabled: { type: 'boolean' },
    nbf: { type: ['integer', 'null'] },
    exp: { type: ['integer', 'null'] },
  },
} as const;

const attributesOut = {
  type: 'object',
  properties: {
    enabled: { type: 'boolean' },
    nbf: { type: 'integer' },
    exp: { type: 'integer' },
    created: { type: 'integer' },
    updated: { type: 'integer' },
    recoveryLevel: { type: 'string' },
    recoverableDays: { type: 'integer' },
  },
} as const;

const common = {
  id: { type: 'string' },
  contentType: { type: 'string' },
  attributes: attributesOut,
  tags,
  managed: { type: 'boolean' },
} as const;

export const secretBundle = {
  type: 'object',
  properties: { value: { type: 'string' }, ...common, kid: { type: 'string' }, previousVersion: { type: 'string' } },
} as const;

const deletedFields = {
  recoveryId: { type: 'string' },
  deletedDate: { type: 'integer' },
  scheduledPurgeDate: { type: 'integer' },
} as const;

export const deletedSecretBundle = {
  type: 'object',
  properties: { ...secretBundle.properties, ...deletedFields },
} as const;

const secretItem = { type: 'object', properties: common } as const;
const deletedSecretItem = { type: 'object', properties: { ...common, ...deletedFields } } as const;

const listOf = (item: object) => ({
  type: 'object',
  properties: { value: { type: 'array', items: item }, nextLink: { type: ['string', 'null'] } },
} as const);

export const secretList = listOf(secretItem);
export const deletedSecretList = listOf(deletedSecretItem);
export const backupResult = { type: 'object', properties: { value: { type: 'string' } } } as const;

export const setBody = {
  type: 'object',
  required: ['value'],
  properties: { value: { type: 'string' }, contentType: { type: 'string', maxLength: 255 }, tags, attributes: attributesIn },
} as const;

export const updateBody = {
  type: 'object',
  properties: { contentType: { type: 'string', maxLength: 255 }, tags, attributes: attributesIn },
} as const;

export const restoreBody = {
  type: 'object',
  required: ['value'],
  properties: { value: { type: 'string', minLength: 1 } },
} as const;

export const listQuery = {
  type: 'object',
  properties: { maxresults: { type: 'string', pattern: '^[0-9]+$' }, $skiptoken: { type: 'string' } },
} as const;
