import fs from 'node:fs';
import path from 'node:path';
import { SqliteDialect, type DatabaseConnection, type Driver, type QueryCompiler, type TransactionSettings } from 'kysely';

/**
 * Durability of SQLite commits without blocking the event loop.
 *
 * better-sqlite3 is synchronous: with `synchronous=FULL` every COMMIT fsyncs the WAL on the event loop (0.4–0.8 ms
 * on a quiet disk, 10 ms on a busy one), and nothing else runs meanwhile. Instead the connection commits at
 * `synchronous=NORMAL` (the commit's frames reach the WAL file, not yet the disk) and whoever wrote waits for an
 * `fdatasync` of the WAL file run on libuv's thread pool before it continues. An fsync flushes the file (its inode),
 * whichever descriptor asks, so once it returns every frame committed before it started is on disk: the guarantee of
 * `FULL` in WAL mode (which syncs the WAL at each commit), kept before anything is acknowledged, while the event
 * loop serves other requests. Commits that arrive while a sync is in flight share the next one.
 * SQLite's own NORMAL-mode ordering (WAL synced before a checkpoint, database file after) is untouched.
 */
export interface WalSync {
  /** Resolves once every commit made before the call is on disk; rejects (for good) after a failed sync. */
  sync(): Promise<void>;
}

export function createWalSync(databaseFile: string, fdatasync: (fd: number) => Promise<void> = defaultFdatasync): WalSync {
  const walFile = `${databaseFile}-wal`;
  let fd: number | undefined;
  let inFlight: Promise<void> | undefined;
  let next: Promise<void> | undefined;
  // After a failed fsync the kernel may have dropped the dirty pages it could not write, so a later fsync could
  // succeed without them: fail closed until the process restarts and SQLite recovers from what is really on disk.
  let failure: Error | undefined;

  function open() {
    fd = fs.openSync(walFile, 'r');
    // The WAL's directory entry must be durable too (SQLite's FULL mode syncs the directory when it creates the WAL).
    const dir = fs.openSync(path.dirname(path.resolve(walFile)), 'r');
    try {
      fs.fsyncSync(dir);
    } finally {
      fs.closeSync(dir);
    }
    return fd;
  }

  function start(): Promise<void> {
    if (failure) return Promise.reject(failure);
    let started: Promise<void>;
    try {
      started = fdatasync(fd ?? open());
    } catch (err) {
      started = Promise.reject(err);
    }
    const settled = started.then(
      () => { if (inFlight === settled) inFlight = undefined; },
      (err: unknown) => {
        failure = new Error(`the write-ahead log could not be synced to disk (${(err as NodeJS.ErrnoException).code ?? 'error'}); restart Coffer`);
        if (inFlight === settled) inFlight = undefined;
        throw failure;
      });
    inFlight = settled;
    return settled;
  }

  return {
    sync() {
      if (failure) return Promise.reject(failure);
      if (!inFlight) return start();
      // The sync in flight may have started before this caller's commit: the caller needs the next one.
      next ??= inFlight.catch(() => undefined).then(() => {
        next = undefined;
        return start();
      });
      return next;
    },
  };
}

function defaultFdatasync(fd: number) {
  return new Promise<void>((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())));
}

/**
 * Kysely's SQLite dialect whose writers wait for durability after releasing the connection: a statement that
 * writes (`readonly` false) marks the connection dirty, and when the connection is released — after the COMMIT, or
 * after an autocommit statement — the releaser awaits the WAL sync, while the next holder of the connection already
 * runs. So `await trx.execute()` and `await db.insertInto(…).execute()` return only once the write is on disk.
 */
export function durableSqliteDialect(opts: { database: DatabaseLike; walSync: WalSync }) {
  let dirty = false;
  const database = {
    close: () => opts.database.close(),
    prepare(sqlText: string) {
      const statement = opts.database.prepare(sqlText);
      if (!statement.readonly) dirty = true;
      return statement;
    },
  };
  class DurableSqliteDialect extends SqliteDialect {
    override createDriver(): Driver {
      const inner = super.createDriver();
      return {
        init: () => inner.init(),
        acquireConnection: () => inner.acquireConnection(),
        beginTransaction: (connection: DatabaseConnection, settings: TransactionSettings) => inner.beginTransaction(connection, settings),
        commitTransaction: (connection: DatabaseConnection) => inner.commitTransaction(connection),
        rollbackTransaction: (connection: DatabaseConnection) => inner.rollbackTransaction(connection),
        savepoint: (connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']) => inner.savepoint!(connection, name, compile),
        rollbackToSavepoint: (connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']) => inner.rollbackToSavepoint!(connection, name, compile),
        releaseSavepoint: (connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']) => inner.releaseSavepoint!(connection, name, compile),
        async releaseConnection(connection: DatabaseConnection) {
          await inner.releaseConnection(connection);
          if (!dirty) return;
          // Everything written so far is committed (or rolled back) now; the sync that covers it starts here.
          dirty = false;
          await opts.walSync.sync();
        },
        destroy: () => inner.destroy(),
      };
    }
  }
  return new DurableSqliteDialect({ database: database as never });
}

/** The part of better-sqlite3's Database the dialect uses (the storage passes its statement-caching facade). */
export interface DatabaseLike {
  close(): unknown;
  prepare(sqlText: string): { readonly: boolean };
}
