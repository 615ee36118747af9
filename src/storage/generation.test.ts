import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { openStorage, type Storage } from './engine.js';
import { GATE_TABLES, createGenerationCache, createGenerationReader } from './generation.js';
import { createDirectory } from '../identity/directory.js';
import { createClock } from '../clock.js';
import { enginesUnderTest, freshDatabase } from '../../test/support/postgres.js';

async function freshStorage(engine: 'sqlite' | 'postgres'): Promise<Storage> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-generation-test-'));
  return openStorage({ dataDir, url: engine === 'postgres' ? await freshDatabase() : undefined });
}

test('a cached value is reused while the generation stands still, and reloaded once it moves', async () => {
  let generation = 1;
  let loads = 0;
  const cache = createGenerationCache({ readGeneration: async () => generation });
  const lookup = cache.memo(async (key) => `${key}#${++loads}`, 100);
  await cache.refresh();
  assert.equal(await lookup('a'), 'a#1');
  assert.equal(await lookup('a'), 'a#1');
  await cache.refresh();
  assert.equal(await lookup('a'), 'a#1', 'same generation: cached');
  generation = 2;
  await cache.refresh();
  assert.equal(await lookup('a'), 'a#2', 'the generation moved: reloaded');
});

test('a load that was running when the generation moved does not fill the new epoch', async () => {
  let generation = 1;
  let release!: (v: string) => void;
  const values = [new Promise<string>((r) => { release = r; }), Promise.resolve('fresh')];
  const cache = createGenerationCache({ readGeneration: async () => generation });
  const lookup = cache.memo(() => values.shift()!, 100);
  await cache.refresh();
  const slow = lookup('k');
  generation = 2;
  await cache.refresh();
  release('stale');
  assert.equal(await slow, 'stale');
  assert.equal(await lookup('k'), 'fresh');
});

test('concurrent first reads share one load; a failed load is not remembered; the cache is bounded', async () => {
  let loads = 0;
  const cache = createGenerationCache({ readGeneration: async () => 1 });
  await cache.refresh();
  const shared = cache.memo(async (key) => { loads++; return key; }, 2);
  await Promise.all([shared('x'), shared('x'), shared('x')]);
  assert.equal(loads, 1);
  await shared('y');
  await shared('z'); // full at 2 entries: starts over
  await shared('x');
  assert.equal(loads, 4, 'x was dropped when the cache filled up');

  let fail = true;
  const flaky = cache.memo(async () => { if (fail) throw new Error('database away'); return 'ok'; }, 10);
  await assert.rejects(flaky('k'), /database away/);
  fail = false;
  assert.equal(await flaky('k'), 'ok');
});

for (const { engine, skip } of enginesUnderTest()) {
  test(`${engine}: every change to a table a gate reads moves the generation, committed or not at all`, { skip }, async () => {
    const storage = await freshStorage(engine);
    try {
      const read = createGenerationReader(storage);
      const directory = createDirectory({ db: storage.db, clock: createClock(0) });
      let before = await read();
      const moved = async (what: string) => {
        const now = await read();
        assert.ok(now > before, `${what} moved the generation (${before} → ${now})`);
        before = now;
      };
      const user = await directory.createServicePrincipal({ displayName: 'probe', tenantId: 't' });
      await moved('insert into principals');
      await directory.setEnabled(user.objectId, false);
      await moved('update of principals');
      const group = await directory.createGroup({ tenantId: 't', displayName: 'g', mailNickname: 'g' });
      await moved('new group');
      await directory.addMember(group.objectId, user.objectId);
      await moved('insert into group_members');
      await directory.removeMember(group.objectId, user.objectId);
      await moved('delete from group_members');
      // Every gate table carries the trigger, whoever writes to it.
      for (const table of GATE_TABLES) {
        const triggers = engine === 'postgres'
          ? await sql<{ n: number }>`select count(*)::int as n from pg_trigger where tgrelid = ${table}::regclass and tgname like '%cache_generation%'`.execute(storage.db)
          : await sql<{ n: number }>`select count(*) as n from sqlite_master where type = 'trigger' and tbl_name = ${table} and name like '%cache_generation%'`.execute(storage.db);
        assert.equal(Number(triggers.rows[0].n), engine === 'postgres' ? 1 : 3, `${table} has the generation trigger`);
      }
      await directory.deletePrincipal(user.objectId);
      await moved('delete from principals');
      // A rolled-back change leaves the generation where it was.
      await storage.db.transaction().execute(async (trx) => {
        await trx.updateTable('principals').set({ display_name: 'x' }).execute();
        throw new Error('rollback');
      }).catch(() => undefined);
      assert.equal(await read(), before);
    } finally {
      await storage.close();
    }
  });
}
