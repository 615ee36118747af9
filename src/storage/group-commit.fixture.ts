// Write operations for group-commit.test.ts: defined in a module of their own because the SQLite writer thread
// loads the module that defines an operation (a test file would run its tests there).
import { defineWrite } from './group-commit.js';

/** Inserts a setting; a key ending in "bad" is written, then refused, so that its unit must roll back. */
export const putSettingOrRefuse = defineWrite(import.meta.url, 'test.putSettingOrRefuse', async (trx, key: string) => {
  await trx.insertInto('settings').values({ key, value: 'v' }).execute();
  if (key.endsWith('bad')) throw Object.assign(new Error(`refused ${key}`), { reason: 'Refused' });
  return key;
});
