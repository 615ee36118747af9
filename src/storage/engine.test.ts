import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { openStorage, inTransaction, databaseNowMs, postgresPoolConfig, StorageError, type Storage } from './engine.js';
import { createSettingsRepository } from './settings.js';
import { migrationProvider } from './migrations.js';
import { createCa } from '../crypto/tls.js';
import { enginesUnderTest, freshDatabase, postgresSkipReason, query } from '../../test/support/postgres.js';

const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-storage-test-'));

/** Opens a fresh, empty storage of the given engine; the test closes it. */
async function freshStorage(engine: 'sqlite' | 'postgres', params = ''): Promise<Storage> {
  const dataDir = tempDir();
  return openStorage({ dataDir, url: engine === 'postgres' ? (await freshDatabase()) + params : undefined });
}

for (const { engine, skip } of enginesUnderTest()) {
  test(`${engine}: migrations bring an empty database up to date, and reopening is a no-op`, { skip }, async () => {
    const dataDir = tempDir();
    const url = engine === 'postgres' ? await freshDatabase() : undefined;
    const first = await openStorage({ url, dataDir });
    await createSettingsRepository(first.db).put('probe', 'kept');
    await first.close();
    const again = await openStorage({ url, dataDir });
    try {
      assert.equal(await createSettingsRepository(again.db).get('probe'), 'kept');
      assert.equal(again.dialect, engine);
    } finally {
      await again.close();
    }
  });

  test(`${engine}: concurrent additions to an integer setting all count`, { skip }, async () => {
    const storage = await freshStorage(engine);
    try {
      const settings = createSettingsRepository(storage.db);
      const day = 86_400_000;
      const results = await Promise.all(Array.from({ length: 10 }, () => settings.addToInteger('clock.offset_ms', 91 * day)));
      assert.equal(await settings.get('clock.offset_ms'), String(910 * day));
      assert.equal(new Set(results).size, 10, 'each addition saw its own result');
      assert.equal(await settings.addToInteger('clock.offset_ms', -910 * day), 0);
    } finally {
      await storage.close();
    }
  });

  test(`${engine}: the database clock is epoch milliseconds`, { skip }, async () => {
    const storage = await freshStorage(engine);
    try {
      const row = await storage.db.selectNoFrom(databaseNowMs(storage).as('now')).executeTakeFirstOrThrow();
      assert.ok(Math.abs(Number(row.now) - Date.now()) < 5_000, `database now ${row.now} vs ${Date.now()}`);
    } finally {
      await storage.close();
    }
  });

  test(`${engine}: inTransaction does not retry ordinary errors and rolls back`, { skip }, async () => {
    const storage = await freshStorage(engine);
    try {
      await createSettingsRepository(storage.db).put('taken', 'first');
      let attempts = 0;
      await assert.rejects(inTransaction(storage, async (trx) => {
        attempts++;
        await trx.insertInto('settings').values({ key: 'fresh', value: 'x' }).execute();
        await trx.insertInto('settings').values({ key: 'taken', value: 'second' }).execute();
      }));
      assert.equal(attempts, 1);
      assert.equal(await createSettingsRepository(storage.db).get('fresh'), undefined, 'the transaction was rolled back');
    } finally {
      await storage.close();
    }
  });
}

test('postgres: nodes starting together migrate one database once (advisory lock)', { skip: postgresSkipReason }, async () => {
  const url = await freshDatabase();
  const nodes = await Promise.all([1, 2, 3].map(() => openStorage({ url, dataDir: tempDir() })));
  try {
    const applied = await query(url, 'select name from kysely_migration order by name');
    const known = Object.keys(await migrationProvider('postgres').getMigrations()).sort();
    assert.deepEqual(applied.map((r) => r.name), known, 'each migration applied exactly once');
    const settings = nodes.map((n) => createSettingsRepository(n.db));
    // putIfAbsent from every node at once: one value wins and every node sees it.
    const seen = await Promise.all(settings.map((s, i) => s.putIfAbsent('tenant', `node-${i}`)));
    assert.equal(new Set(seen).size, 1);
  } finally {
    await Promise.all(nodes.map((n) => n.close()));
  }
});

test('postgres: serialization failures are retried until the transaction commits', { skip: postgresSkipReason }, async () => {
  const storage = await freshStorage('postgres');
  try {
    await createSettingsRepository(storage.db).put('counter', '0');
    let attempts = 0;
    let reads = 0;
    let bothRead!: () => void;
    const barrier = new Promise<void>((resolve) => { bothRead = resolve; });
    // Two serializable read-modify-writes that both read before either writes: PostgreSQL must fail one (40001).
    const increment = () => inTransaction(storage, async (trx) => {
      attempts++;
      await sql`set transaction isolation level serializable`.execute(trx);
      const row = await trx.selectFrom('settings').select('value').where('key', '=', 'counter').executeTakeFirstOrThrow();
      if (++reads === 2) bothRead();
      if (reads <= 2) await barrier;
      await trx.updateTable('settings').set({ value: String(Number(row.value) + 1) }).where('key', '=', 'counter').execute();
    });
    await Promise.all([increment(), increment()]);
    assert.equal(await createSettingsRepository(storage.db).get('counter'), '2', 'no increment lost');
    assert.equal(attempts, 3, 'exactly one attempt was retried');
  } finally {
    await storage.close();
  }
});

test('postgres: deadlocks are retried', { skip: postgresSkipReason }, async () => {
  const storage = await freshStorage('postgres');
  try {
    const settings = createSettingsRepository(storage.db);
    await settings.put('a', '0');
    await settings.put('b', '0');
    let attempts = 0;
    let locked = 0;
    let bothLocked!: () => void;
    const barrier = new Promise<void>((resolve) => { bothLocked = resolve; });
    // Each takes one row, then wants the other's: PostgreSQL breaks the cycle by failing one (40P01).
    const touch = (first: string, second: string) => inTransaction(storage, async (trx) => {
      attempts++;
      await trx.updateTable('settings').set({ value: sql`value || ${first}` }).where('key', '=', first).execute();
      if (++locked === 2) bothLocked();
      if (locked <= 2) await barrier;
      await trx.updateTable('settings').set({ value: sql`value || ${first}` }).where('key', '=', second).execute();
    });
    await Promise.all([touch('a', 'b'), touch('b', 'a')]);
    assert.equal(attempts, 3);
    assert.equal((await settings.get('a'))!.length + (await settings.get('b'))!.length, 6, 'both transactions applied once');
  } finally {
    await storage.close();
  }
});

test('postgres: statement_timeout and pool_max come from the URL', { skip: postgresSkipReason }, async () => {
  const storage = await freshStorage('postgres', '?statement_timeout=200&pool_max=2');
  try {
    await assert.rejects(sql`select pg_sleep(2)`.execute(storage.db), (err: any) => err.code === '57014');
    const rows = await sql<{ setting: string }>`select current_setting('application_name') as setting`.execute(storage.db);
    assert.equal(rows.rows[0].setting, 'coffer');
  } finally {
    await storage.close();
  }
});

test('postgres: a missing database is a one-line StorageError', { skip: postgresSkipReason }, async () => {
  const url = new URL(process.env.COFFER_TEST_STORAGE_URL!);
  url.pathname = '/no_such_coffer_database';
  await assert.rejects(openStorage({ url: url.toString(), dataDir: tempDir() }), (err: Error) => {
    assert.ok(err instanceof StorageError);
    assert.match(err.message, /^cannot open PostgreSQL storage postgres:\/\/127\.0\.0\.1:\d+\/no_such_coffer_database: .*does not exist/);
    return true;
  });
});

test('an unreachable database fails startup with one clear line and no password', async () => {
  const port = 1; // tcpmux: reserved, and nothing listens there
  const started = Date.now();
  await assert.rejects(openStorage({ url: `postgres://coffer:Sup3r-Secret@127.0.0.1:${port}/coffer`, dataDir: tempDir() }), (err: Error) => {
    assert.ok(err instanceof StorageError, `a StorageError, not ${err.constructor.name}`);
    assert.equal(err.message, `cannot open PostgreSQL storage postgres://127.0.0.1:${port}/coffer: connection refused (is PostgreSQL running and listening on that address?)`);
    assert.doesNotMatch(err.message, /Sup3r-Secret/);
    return true;
  });
  assert.ok(Date.now() - started < 15_000);
});

test('an invalid storage URL is refused without echoing it', async () => {
  await assert.rejects(openStorage({ url: 'postgres://coffer:Sup3r-Secret@[bad/coffer', dataDir: tempDir() }), (err: Error) => {
    assert.ok(err instanceof StorageError);
    assert.doesNotMatch(err.message, /Sup3r-Secret/);
    return true;
  });
});

test('sslmode follows libpq: disable, require (verify only with a root certificate), verify-ca, verify-full', () => {
  const dir = tempDir();
  const rootCert = path.join(dir, 'root.crt');
  fs.writeFileSync(rootCert, 'PEM');
  const ssl = (params: string) => postgresPoolConfig(`postgres://u:p@db.example:5432/coffer${params}`).ssl;
  assert.equal(ssl(''), false);
  assert.equal(ssl('?sslmode=disable'), false);
  assert.deepEqual(pick(ssl('?sslmode=require')), { rejectUnauthorized: false, ca: undefined, checksHost: false });
  assert.deepEqual(pick(ssl(`?sslmode=require&sslrootcert=${rootCert}`)), { rejectUnauthorized: true, ca: 'PEM', checksHost: false });
  assert.deepEqual(pick(ssl(`?sslmode=verify-ca&sslrootcert=${rootCert}`)), { rejectUnauthorized: true, ca: 'PEM', checksHost: false });
  assert.deepEqual(pick(ssl('?sslmode=verify-full')), { rejectUnauthorized: true, ca: undefined, checksHost: true });
  assert.throws(() => ssl('?sslmode=prefer'), StorageError);
  assert.throws(() => ssl('?sslmode=verify-full&sslrootcert=/nonexistent/root.crt'), /cannot read sslrootcert/);
  // Coffer's own parameters never reach the driver, whose parser would reinterpret sslmode.
  const config = postgresPoolConfig(`postgres://u:p@db.example/coffer?sslmode=require&pool_max=3&statement_timeout=5&connect_timeout=2&application_name=x`);
  assert.equal(config.connectionString, 'postgres://u:p@db.example/coffer?application_name=x');
  assert.deepEqual([config.max, config.statement_timeout, config.connectionTimeoutMillis], [3, 5, 2000]);
  assert.throws(() => postgresPoolConfig('postgres://db.example/coffer?pool_max=lots'), /invalid pool_max=lots/);
});

const tlsCa = process.env.COFFER_TEST_PG_TLS_CA;
test('postgres: TLS to the database with sslmode=verify-full, and a wrong CA is refused', {
  skip: postgresSkipReason || (!tlsCa && 'the PostgreSQL server of this run has no TLS certificate from the test CA'),
}, async () => {
  const url = await freshDatabase();
  const storage = await openStorage({ url: `${url}?sslmode=verify-full&sslrootcert=${tlsCa}`, dataDir: tempDir() });
  try {
    const { rows } = await sql<{ ssl: boolean }>`select ssl from pg_stat_ssl where pid = pg_backend_pid()`.execute(storage.db);
    assert.equal(rows[0].ssl, true);
  } finally {
    await storage.close();
  }
  const otherCa = path.join(tempDir(), 'other-ca.crt');
  fs.writeFileSync(otherCa, (await createCa('Not The Database CA', 1)).cert);
  await assert.rejects(openStorage({ url: `${url}?sslmode=verify-full&sslrootcert=${otherCa}`, dataDir: tempDir() }),
    (err: Error) => err instanceof StorageError && /certificate/.test(err.message));
});

function pick(ssl: unknown) {
  const o = ssl as { rejectUnauthorized: boolean; ca?: string; checkServerIdentity?: unknown };
  return { rejectUnauthorized: o.rejectUnauthorized, ca: o.ca, checksHost: o.checkServerIdentity === undefined };
}
