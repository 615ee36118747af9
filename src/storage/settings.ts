import { sql, type Kysely } from 'kysely';
import type { Database } from './schema.js';

export interface SettingsRepository {
  get(key: string): Promise<string | undefined>;
  /** Inserts unless present; returns the value in force afterwards (ours, or the one another node wrote first). */
  putIfAbsent(key: string, value: string): Promise<string>;
  put(key: string, value: string): Promise<void>;
  /**
   * Adds `delta` to an integer setting (absent counts as 0) in one statement and returns the new value, so two nodes
   * adding at once both count.
   */
  addToInteger(key: string, delta: number): Promise<number>;
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
    async addToInteger(key, delta) {
      if (!Number.isSafeInteger(delta)) throw new RangeError(`not an integer: ${delta}`);
      const sum = sql<string>`cast(cast(settings.value as bigint) + cast(${delta} as bigint) as text)`;
      const row = await db.insertInto('settings').values({ key, value: String(delta) })
        .onConflict((oc) => oc.column('key').doUpdateSet({ value: sum }))
        .returning('value').executeTakeFirstOrThrow();
      return Number(row.value);
    },
  };
}
