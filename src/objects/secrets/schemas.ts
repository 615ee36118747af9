/** Route schemas for the secrets family: they validate input and shape output (nothing else goes out). */
import { tags, attributesIn, attributesOut, deletedFields, listOf, backupResult, restoreBody, listQuery } from '../shared-schemas.js';

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

export const deletedSecretBundle = {
  type: 'object',
  properties: { ...secretBundle.properties, ...deletedFields },
} as const;

const secretItem = { type: 'object', properties: common } as const;
const deletedSecretItem = { type: 'object', properties: { ...common, ...deletedFields } } as const;

export const secretList = listOf(secretItem);
export const deletedSecretList = listOf(deletedSecretItem);
export { backupResult, restoreBody, listQuery };

export const setBody = {
  type: 'object',
  required: ['value'],
  properties: { value: { type: 'string' }, contentType: { type: 'string', maxLength: 255 }, tags, attributes: attributesIn },
} as const;

export const updateBody = {
  type: 'object',
  properties: { contentType: { type: 'string', maxLength: 255 }, tags, attributes: attributesIn },
} as const;
