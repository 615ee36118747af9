import path from 'node:path';
import fs from 'node:fs';
import { Kysely, Migrator, SqliteDialect, PostgresDialect, CompiledQuery } from 'kysely';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import type { Database } from './schema.js';
import { migrationProvider } from './migrations.js';

export type StorageDialect = 'sqlite' | 'postgres';

export interface Storage {
  db: Kysely<Database>;
  dialect: StorageDialect;
  /** A human-readable description that never includes credentials. */
  describe: string;
  close(): Promise<void>;
}

// PostgreSQL returns int8 as string by default; our int8 columns are epoch-ms and sequence numbers, all < 2^53.
pg.types.setTypeParser(20, (v) => Number(v));

/**
 * Opens the storage engine named by `url` — `postgres://…` for PostgreSQL, anything else (or nothing) for the
 * embedded SQLite database in the data dir — and brings its schema up to date.
 */
export async function openStorage(opts: { url?: string; dataDir: string }): Promise<Storage> {
  const storage = opts.url && /^postgres(ql)?:\/\//.test(opts.url)
    ? openPostgres(opts.url)
    : openSqlite(opts.url ? opts.url.replace(/^sqlite:/, '') : path.join(opts.dataDir, 'coffer.db'));
  await migrate(storage);
  return storage;
}

function openSqlite(file: string): Storage {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const database = new SQLite(file);
  database.pragma('journal_mode = WAL');
  // FULL: every commit is fsynced before it returns, so an acknowledged write survives power loss.
  database.pragma('synchronous = FULL');
  database.pragma('foreign_keys = ON');
  database.pragma('busy_timeout = 5000');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database }) });
  return { db, dialect: 'sqlite', describe: `sqlite:${file}`, close: () => db.destroy() };
}

function openPostgres(url: string): Storage {
  const parsed = new URL(url);
  const pool = new pg.Pool({
    connectionString: url,
    max: Number(parsed.searchParams.get('pool_max') ?? 10),
    statement_timeout: Number(parsed.searchParams.get('statement_timeout') ?? 10_000),
  });
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  const describe = `postgres://${parsed.hostname}:${parsed.port || 5432}${parsed.pathname}`;
  return { db, dialect: 'postgres', describe, close: () => db.destroy() };
}

async function migrate(storage: Storage) {
  const migrator = new Migrator({ db: storage.db, provider: migrationProvider(storage.dialect) });
  if (storage.dialect === 'postgres') {
    // Nodes starting together must not race on DDL: serialise migrations with a transaction-scoped advisory lock.
    await storage.db.connection().execute(async (conn) => {
      await conn.executeQuery(CompiledQuery.raw('select pg_advisory_lock(7242001)'));
      try {
        const { error } = await new Migrator({ db: conn, provider: migrationProvider('postgres') }).migrateToLatest();
        if (error) throw error;
      } finally {
        await conn.executeQuery(CompiledQuery.raw('select pg_advisory_unlock(7242001)'));
      }
    });
    return;
  }
  const { error } = await migrator.migrateToLatest();
  if (error) throw error;
}

/** Runs `fn` in a transaction; PostgreSQL serialization failures and deadlocks are retried. */
export async function inTransaction<T>(storage: Storage, fn: (trx: Kysely<Database>) => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await storage.db.transaction().execute(fn);
    } catch (err: any) {
      const retryable = err?.code === '40001' || err?.code === '40P01';
      if (!retryable || attempt >= 5) throw err;
      await new Promise((r) => setTimeout(r, 5 * 2 ** attempt + Math.random() * 10));
    }
  }
}
