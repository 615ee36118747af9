import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inTransaction, openStorage, type Storage } from './engine.js';
import { groupCommit } from './group-commit.js';
import { putSettingOrRefuse } from './group-commit.fixture.js';
import { precompile } from './prepared.js';
import { enginesUnderTest, freshDatabase } from '../../test/support/postgres.js';

/** `writerThread`: SQLite's group commit on the writer thread (COFFER_SQLITE_WRITER_THREAD=1) instead of the event loop. */
async function freshStorage(engine: 'sqlite' | 'postgres', writerThread = false): Promise<Storage> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-group-commit-test-'));
  const url = engine === 'postgres' ? await freshDatabase() : undefined;
  const previous = process.env.COFFER_SQLITE_WRITER_THREAD;
  process.env.COFFER_SQLITE_WRITER_THREAD = writerThread ? '1' : '0';
  try {
    return await openStorage({ dataDir, url });
  } finally {
    if (previous === undefined) delete process.env.COFFER_SQLITE_WRITER_THREAD; else process.env.COFFER_SQLITE_WRITER_THREAD = previous;
  }
}

type Mode = { engine: 'sqlite' | 'postgres'; skip: string | false; writerThread: boolean; label: string };
const modes = enginesUnderTest().flatMap(({ engine, skip }): Mode[] => (engine === 'sqlite'
  ? [{ engine, skip, writerThread: false, label: 'sqlite' }, { engine, skip, writerThread: true, label: 'sqlite (writer thread)' }]
  : [{ engine, skip, writerThread: false, label: engine }]));

for (const { engine, skip, writerThread, label } of modes) {
  test(`${label}: concurrent writes commit together, and a failing write fails alone and leaves nothing`, { skip }, async () => {
    const storage = await freshStorage(engine, writerThread);
    try {
      const commits = groupCommit(storage);
      assert.equal(groupCommit(storage), commits, 'one group commit per storage, shared by its writers');
      // Written, then refused: the unit's own row must be rolled back with it.
      const put = (key: string) => commits.write(putSettingOrRefuse, key);
      const outcomes = await Promise.allSettled(['a', 'b-bad', 'c', 'd-bad', 'e'].map(put));
      assert.deepEqual(outcomes.map((o) => (o.status === 'fulfilled' ? o.value : (o.reason as Error).message)),
        ['a', 'refused b-bad', 'c', 'refused d-bad', 'e']);
      // The error keeps its properties across the writer thread.
      assert.equal(((outcomes[1] as PromiseRejectedResult).reason as { reason?: string }).reason, 'Refused');
      // A constraint violation by the database fails only its own unit too, with the driver's code.
      const duplicate = await Promise.allSettled([put('a'), put('f')]);
      assert.equal(duplicate[0].status, 'rejected');
      assert.match(String(((duplicate[0] as PromiseRejectedResult).reason as { code?: string }).code), engine === 'sqlite' ? /^SQLITE_CONSTRAINT/ : /^23505$/);
      assert.equal(duplicate[1].status, 'fulfilled');
      // A closure (not a named operation) still runs atomically.
      await assert.rejects(commits.run(async (trx) => {
        await trx.insertInto('settings').values({ key: 'g', value: 'v' }).execute();
        throw new Error('refused g');
      }), /refused g/);
      const keys = (await storage.db.selectFrom('settings').select('key').where('key', 'in', ['a', 'b-bad', 'c', 'd-bad', 'e', 'f', 'g']).orderBy('key').execute()).map((r) => r.key);
      assert.deepEqual(keys, ['a', 'c', 'e', 'f']);
    } finally {
      await storage.close();
    }
  });

  test(`${label}: grouped writes and the server connection's own read-then-write transactions interleave without failing`, { skip }, async () => {
    // On SQLite two connections write (the writer thread's and the server's): a transaction that reads, then writes
    // after the other committed must wait for the lock, not fail (SQLITE_BUSY_SNAPSHOT).
    const storage = await freshStorage(engine, writerThread);
    try {
      const commits = groupCommit(storage);
      // Grouped writes keep committing (four chains) while each transaction of the server's connection waits
      // between its read and its write.
      await commits.write(putSettingOrRefuse, 'writer-started');
      let next = 0;
      const grouped = Array.from({ length: 4 }, async () => {
        while (next < 60) await commits.write(putSettingOrRefuse, `grouped-${next++}`);
      });
      const own = Array.from({ length: 20 }, (_, i) => inTransaction(storage, async (trx) => {
        const seen = await trx.selectFrom('settings').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
        await new Promise((r) => setTimeout(r, 2));
        await trx.insertInto('settings').values({ key: `own-${i}`, value: String(seen.n) }).execute();
      }));
      await Promise.all([...grouped, ...own]);
      const count = await storage.db.selectFrom('settings').select((eb) => eb.fn.countAll<number>().as('n'))
        .where((eb) => eb.or([eb('key', 'like', 'grouped-%'), eb('key', 'like', 'own-%')])).executeTakeFirstOrThrow();
      assert.equal(Number(count.n), 80);
    } finally {
      await storage.close();
    }
  });

  test(`${label}: a precompiled query binds new arguments and keeps its constants`, { skip }, async () => {
    const storage = await freshStorage(engine, writerThread);
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
