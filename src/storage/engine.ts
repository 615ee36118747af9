import path from 'node:path';
import fs from 'node:fs';
import { Kysely, Migrator, SqliteDialect, PostgresDialect, CompiledQuery, sql, type RawBuilder } from 'kysely';
import SQLite from 'better-sqlite3';
import { createRequire } from 'node:module';
import type pg from 'pg';
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

/**
 * The PostgreSQL driver, loaded on first use: a node on the embedded SQLite never needs it, and loading it costs
 * ~45 ms of every start. PostgreSQL returns int8 as string by default; our int8 columns are epoch-ms and sequence
 * numbers, all < 2^53.
 */
let pgDriver: typeof pg | undefined;
function loadPg(): typeof pg {
  if (!pgDriver) {
    pgDriver = createRequire(import.meta.url)('pg') as typeof pg;
    pgDriver.types.setTypeParser(20, (v) => Number(v));
  }
  return pgDriver;
}

/**
 * Opens the storage engine named by `url` — `postgres://…` for PostgreSQL, anything else (or nothing) for the
 * embedded SQLite database in the data dir — and brings its schema up to date.
 */
export async function openStorage(opts: { url?: string; dataDir: string }): Promise<Storage> {
  const storage = opts.url && /^postgres(ql)?:\/\//.test(opts.url)
    ? openPostgres(opts.url)
    : openSqlite(opts.url ? opts.url.replace(/^sqlite:/, '') : path.join(opts.dataDir, 'coffer.db'));
  try {
    await migrate(storage);
  } catch (err) {
    await storage.close().catch(() => undefined);
    if (storage.dialect !== 'postgres') throw err;
    // One line for the operator; the driver's error stays attached as the cause for whoever debugs.
    throw new StorageError(`cannot open PostgreSQL storage ${storage.describe}: ${reason(err as PgError, new URL(opts.url!))}`, { cause: err });
  }
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
  // Kysely's SQLite driver prepares every statement anew (10% of a GET's CPU); reuse prepared statements by SQL text.
  // Safe across schema changes (SQLite re-prepares transparently) and holds no data. Nothing streams (iterate),
  // so a cached statement is never busy when reused.
  const statements = new Map<string, SQLite.Statement>();
  const cachingDatabase = {
    close: () => database.close(),
    prepare(sqlText: string) {
      let statement = statements.get(sqlText);
      if (!statement) {
        if (statements.size >= 500) statements.clear(); // bounded: multi-row inserts vary in text
        statements.set(sqlText, (statement = database.prepare(sqlText)));
      }
      return statement;
    },
  };
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: cachingDatabase as unknown as SQLite.Database }) });
  return { db, dialect: 'sqlite', describe: `sqlite:${file}`, close: () => db.destroy() };
}

/** The URL parameters Coffer interprets itself; they are removed before the URL reaches the driver. */
const COFFER_URL_PARAMS = ['pool_max', 'statement_timeout', 'idle_in_transaction_timeout', 'connect_timeout', 'sslmode', 'sslrootcert', 'sslcert', 'sslkey'];

/**
 * The pg pool configuration for a `postgres://` URL. TLS follows libpq's `sslmode` meanings, which is what users'
 * URLs are written for (pg's own parser treats `require` as `verify-full`): `disable` (default) plain TCP;
 * `require` encrypted, and verified against `sslrootcert` only when one is given; `verify-ca` verified chain;
 * `verify-full` verified chain and host name. `allow`/`prefer` (opportunistic TLS) are refused rather than guessed.
 */
export function postgresPoolConfig(url: string): pg.PoolConfig {
  const parsed = parseUrl(url);
  const param = (name: string) => parsed.searchParams.get(name) ?? undefined;
  const positiveInt = (name: string, fallback: number) => {
    const raw = param(name);
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 0) throw new StorageError(`invalid ${name}=${raw} in the storage URL (a whole number)`);
    return n;
  };
  const config: pg.PoolConfig = {
    application_name: 'coffer',
    max: positiveInt('pool_max', 10) || 10,
    statement_timeout: positiveInt('statement_timeout', 10_000),
    // A node that stalls (or is frozen) inside a transaction must not hold row locks past the others' statement
    // timeout: PostgreSQL ends such a session after this long, so the other nodes' writes go through.
    idle_in_transaction_session_timeout: positiveInt('idle_in_transaction_timeout', 4_000),
    // libpq's connect_timeout is in seconds; without one, an unreachable host would hang startup indefinitely.
    connectionTimeoutMillis: positiveInt('connect_timeout', 10) * 1000,
    ssl: sslOptions(param),
    // TCP keepalives: a connection silently dropped by a firewall or NAT between node and database is noticed.
    keepAlive: true,
  };
  for (const name of COFFER_URL_PARAMS) parsed.searchParams.delete(name);
  config.connectionString = parsed.toString();
  return config;
}

function sslOptions(param: (name: string) => string | undefined): pg.PoolConfig['ssl'] {
  const mode = param('sslmode') ?? 'disable';
  const read = (name: string) => {
    const file = param(name);
    if (!file) return undefined;
    try {
      return fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw new StorageError(`cannot read ${name} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  if (mode === 'disable') return false;
  if (mode !== 'require' && mode !== 'verify-ca' && mode !== 'verify-full') {
    throw new StorageError(`unsupported sslmode=${mode} in the storage URL: use disable, require, verify-ca or verify-full`);
  }
  const ca = read('sslrootcert');
  const clientCert = { cert: read('sslcert'), key: read('sslkey') };
  // libpq: `require` with a root certificate behaves as `verify-ca`.
  const verify = mode !== 'require' || ca !== undefined;
  return {
    ca,
    ...clientCert,
    rejectUnauthorized: verify,
    ...(mode === 'verify-full' ? {} : { checkServerIdentity: () => undefined }),
  };
}

/** A storage failure worth a one-line message (no stack, no credentials): bad URL, unreachable or refusing database. */
export class StorageError extends Error {}

function openPostgres(url: string): Storage {
  const parsed = parseUrl(url);
  const pool = new (loadPg().Pool)(postgresPoolConfig(url));
  // A pooled idle connection that breaks (database restart, network cut) is discarded by the pool and replaced on
  // the next query; without a listener, Node would treat the event as an uncaught error and exit.
  pool.on('error', (err) => process.emitWarning(`PostgreSQL connection lost: ${redact(err.message, parsed)}`, 'StorageWarning'));
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  const describe = `postgres://${parsed.hostname}:${parsed.port || 5432}${parsed.pathname}`;
  return { db, dialect: 'postgres', describe, close: () => db.destroy() };
}

function parseUrl(url: string): URL {
  try {
    return new URL(url);
  } catch {
    // The URL is not repeated: it may carry a password.
    throw new StorageError('the storage URL is not a valid postgres:// URL');
  }
}

function redact(message: string, url: URL) {
  return url.password ? message.split(decodeURIComponent(url.password)).join('***').split(url.password).join('***') : message;
}

// Migrations are keyed by name and were developed concurrently: one may sort before another that already ran on a
// database (0009_keys after 0010/0011), and must still run rather than abort the start.
const UNORDERED = { allowUnorderedMigrations: true } as const;

async function migrate(storage: Storage) {
  const migrator = new Migrator({ db: storage.db, provider: migrationProvider(storage.dialect), ...UNORDERED });
  if (storage.dialect === 'postgres') {
    // Nodes starting together must not race on DDL: serialise migrations with a transaction-scoped advisory lock.
    await storage.db.connection().execute(async (conn) => {
      await conn.executeQuery(CompiledQuery.raw('select pg_advisory_lock(7242001)'));
      try {
        const { error } = await new Migrator({ db: conn, provider: migrationProvider('postgres'), ...UNORDERED }).migrateToLatest();
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

/**
 * The database's own clock in epoch milliseconds, for comparisons between nodes (leases): one clock for the whole
 * cluster, whatever the skew between the nodes' hosts.
 */
export function databaseNowMs(storage: Storage): RawBuilder<number> {
  return storage.dialect === 'postgres'
    ? sql<number>`(extract(epoch from clock_timestamp()) * 1000)::bigint`
    : sql<number>`cast((julianday('now') - 2440587.5) * 86400000 as integer)`;
}

type PgError = Error & { code?: string; errors?: Error[] };

/** Why the database could not be used, in words an operator can act on. */
function reason(err: PgError, url: URL): string {
  const network: Record<string, string> = {
    ECONNREFUSED: 'connection refused (is PostgreSQL running and listening on that address?)',
    ENOTFOUND: 'unknown host',
    EAI_AGAIN: 'host name lookup failed',
    ETIMEDOUT: 'connection timed out',
    EHOSTUNREACH: 'host unreachable',
  };
  // Connecting to `localhost` tries each address; Node reports them together as an AggregateError without a message.
  const first = err.errors?.[0] as PgError | undefined;
  const code = err.code ?? first?.code;
  const text = code && network[code] ? network[code] : err.message || first?.message || String(err);
  return redact(text, url);
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
