import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, sql } from 'kysely';
import { createWalSync, durableSqliteDialect } from './wal-sync.js';
import { openStorage } from './engine.js';

/** A WAL-mode database at NORMAL behind the durable dialect, with an fdatasync the test releases by hand. */
function harness() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-walsync-'));
  const file = path.join(dir, 'test.db');
  const database = new SQLite(file);
  database.pragma('journal_mode = WAL');
  database.pragma('synchronous = NORMAL');
  database.exec('create table t (v integer)');
  const syncs: { walBytes: number; release(err?: Error): void }[] = [];
  const walSync = createWalSync(file, (fd) => new Promise<void>((resolve, reject) => {
    syncs.push({ walBytes: fs.fstatSync(fd).size, release: (err) => (err ? reject(err) : resolve()) });
  }));
  const db = new Kysely<{ t: { v: number } }>({ dialect: durableSqliteDialect({ database, walSync }) });
  const settledFlag = (p: Promise<unknown>) => {
    const state = { settled: false, error: undefined as unknown };
    p.then(() => { state.settled = true; }, (err) => { state.settled = true; state.error = err; });
    return state;
  };
  const tick = () => new Promise((r) => setImmediate(r));
  return { file, db, syncs, settledFlag, tick, close: async () => { await db.destroy(); fs.rmSync(dir, { recursive: true, force: true }); } };
}

test('a write is acknowledged only after the WAL sync that started after its commit has completed', async () => {
  const h = harness();
  try {
    const write = h.db.insertInto('t').values({ v: 1 }).execute();
    const state = h.settledFlag(write);
    await h.tick();
    assert.equal(h.syncs.length, 1, 'the release of the connection starts a sync');
    assert.ok(h.syncs[0].walBytes > 0, 'the commit reached the WAL file before the sync started');
    assert.equal(state.settled, false, 'not acknowledged while the sync is in flight');
    // The connection itself is free meanwhile: a read runs (and sees the committed row) without waiting.
    const rows = await h.db.selectFrom('t').selectAll().execute();
    assert.deepEqual(rows, [{ v: 1 }]);
    h.syncs[0].release();
    await write;
    assert.equal(h.syncs.length, 1, 'a read needs no sync');
  } finally {
    await h.close();
  }
});

test('commits made while a sync is in flight share the next one', async () => {
  const h = harness();
  try {
    const first = h.db.insertInto('t').values({ v: 1 }).execute();
    await h.tick();
    const later = [2, 3, 4].map((v) => h.db.transaction().execute((trx) => trx.insertInto('t').values({ v }).execute()));
    const states = later.map(h.settledFlag);
    await h.tick();
    assert.equal(h.syncs.length, 1, 'the next sync waits for the one in flight');
    h.syncs[0].release();
    await first;
    await h.tick();
    assert.equal(h.syncs.length, 2, 'one more sync for the three commits that came meanwhile');
    assert.ok(states.every((s) => !s.settled), 'the sync in flight when they committed does not acknowledge them');
    assert.ok(h.syncs[1].walBytes > h.syncs[0].walBytes);
    h.syncs[1].release();
    await Promise.all(later);
  } finally {
    await h.close();
  }
});

test('after a failed sync every write fails until restart (fail closed), and the failure names no path', async () => {
  const h = harness();
  try {
    const write = h.db.insertInto('t').values({ v: 1 }).execute();
    await h.tick();
    h.syncs[0].release(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
    await assert.rejects(write, /write-ahead log could not be synced to disk \(EIO\)/);
    await assert.rejects(h.db.insertInto('t').values({ v: 2 }).execute(), /could not be synced/);
    assert.equal(h.syncs.length, 1, 'no sync is attempted after a failure');
  } finally {
    await h.close();
  }
});

test('the storage engine commits through the WAL sync: writes are durable and read back after reopening', async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-walsync-engine-'));
  try {
    let storage = await openStorage({ dataDir });
    await storage.db.insertInto('settings').values({ key: 'probe', value: 'kept' }).execute();
    const mode = await sql<{ synchronous: number }>`pragma synchronous`.execute(storage.db);
    assert.equal(mode.rows[0].synchronous, 1, 'NORMAL: the fsync happens off the event loop, not in the COMMIT');
    await storage.close();
    storage = await openStorage({ dataDir });
    const row = await storage.db.selectFrom('settings').select('value').where('key', '=', 'probe').executeTakeFirst();
    assert.equal(row?.value, 'kept');
    await storage.close();
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
