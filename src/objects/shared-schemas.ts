/** Route schema pieces shared by the object collections (secrets, keys, certificates). */
export const tags = { type: 'object', additionalProperties: { type: 'string' } } as const;

export const attributesIn = {
  type: 'object',
  properties: {
    enabled: { type: 'boolean' },
    nbf: { type: ['integer', 'null'] },
    exp: { type: ['integer', 'null'] },
  },
} as const;

export const attributesOut = {
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

export const deletedFields = {
  recoveryId: { type: 'string' },
  deletedDate: { type: 'integer' },
  scheduledPurgeDate: { type: 'integer' },
} as const;

export const listOf = (item: object) => ({
  type: 'object',
  properties: { value: { type: 'array', items: item }, nextLink: { type: ['string', 'null'] } },
} as const);

export const backupResult = { type: 'object', properties: { value: { type: 'string' } } } as const;

export const restoreBody = {
  type: 'object',
  required: ['value'],
  properties: { value: { type: 'string', minLength: 1 } },
} as const;

export const listQuery = {
  type: 'object',
  properties: { maxresults: { type: 'string', pattern: '^[0-9]+$' }, $skiptoken: { type: 'string' } },
} as const;
