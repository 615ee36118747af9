import type { Kysely } from 'kysely';
import type { Database } from './schema.js';

export interface SettingsRepository {
  get(key: string): Promise<string | undefined>;
  /** Inserts unless present; returns the value in force afterwards (ours, or the one another node wrote first). */
  putIfAbsent(key: string, value: string): Promise<string>;
  put(key: string, value: string): Promise<void>;
}

export function createSettingsRepository(db: Kysely<Database>): SettingsRepository {
  const get = async (key: string) =>
    (await db.selectFrom('settings').select('value').where('key', '=', key).executeTakeFirst())?.value;
  return {
    get,
    async putIfAbsent(key, value) {
      await db.insertInto('settings').values({ key, value }).onConflict((oc) => oc.column('key').doNothing()).execute();
      return (await get(key))!;
    },
    async put(key, value) {
      await db.insertInto('settings').values({ key, value })
        .onConflict((oc) => oc.column('key').doUpdateSet({ value })).execute();
    },
  };
}
