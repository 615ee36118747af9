import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openStorage, type Storage } from './engine.js';
import { groupCommit } from './group-commit.js';
import { precompile } from './prepared.js';
import { enginesUnderTest, freshDatabase } from '../../test/support/postgres.js';

async function freshStorage(engine: 'sqlite' | 'postgres'): Promise<Storage> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-group-commit-test-'));
  return openStorage({ dataDir, url: engine === 'postgres' ? await freshDatabase() : undefined });
}

for (const { engine, skip } of enginesUnderTest()) {
  test(`${engine}: concurrent writes commit together, and a failing write fails alone and leaves nothing`, { skip }, async () => {
    const storage = await freshStorage(engine);
    try {
      const commits = groupCommit(storage);
      assert.equal(groupCommit(storage), commits, 'one group commit per storage, shared by its writers');
      const put = (key: string) => commits.run(async (trx) => {
        await trx.insertInto('settings').values({ key, value: 'v' }).execute();
        // Written, then refused: the unit's own row must be rolled back with it.
        if (key.endsWith('bad')) throw new Error(`refused ${key}`);
        return key;
      });
      const outcomes = await Promise.allSettled(['a', 'b-bad', 'c', 'd-bad', 'e'].map(put));
      assert.deepEqual(outcomes.map((o) => (o.status === 'fulfilled' ? o.value : (o.reason as Error).message)),
        ['a', 'refused b-bad', 'c', 'refused d-bad', 'e']);
      // A constraint violation by the database fails only its own unit too.
      const duplicate = await Promise.allSettled([put('a'), put('f')]);
      assert.equal(duplicate[0].status, 'rejected');
      assert.equal(duplicate[1].status, 'fulfilled');
      const keys = (await storage.db.selectFrom('settings').select('key').where('key', 'in', ['a', 'b-bad', 'c', 'd-bad', 'e', 'f']).orderBy('key').execute()).map((r) => r.key);
      assert.deepEqual(keys, ['a', 'c', 'e', 'f']);
    } finally {
      await storage.close();
    }
  });

  test(`${engine}: a precompiled query binds new arguments and keeps its constants`, { skip }, async () => {
    const storage = await freshStorage(engine);
    try {
      await storage.db.insertInto('settings').values([{ key: 'k1', value: 'one' }, { key: 'k2', value: 'two' }, { key: 'k3', value: 'one' }]).execute();
      const byValue = precompile<{ key: string }, [string, string]>(storage.db, (p, db) => db.selectFrom('settings').select('key')
        .where('value', '=', p(1)).where('key', '!=', 'k3').where('key', '>=', p(0)).orderBy('key'));
      assert.deepEqual(await byValue(storage.db, 'k', 'one'), [{ key: 'k1' }]);
      assert.deepEqual(await byValue(storage.db, 'k', 'two'), [{ key: 'k2' }]);
      assert.deepEqual(await byValue(storage.db, 'k2', 'one'), []);
    } finally {
      await storage.close();
    }
  });
}
