import { sql, type Kysely } from 'kysely';
import { inTransaction, type Storage } from './engine.js';
import type { Database } from './schema.js';

/** A unit of durable work: runs inside a transaction, all of it or none of it. */
export type Work<T> = (trx: Kysely<Database>) => Promise<T>;

export interface GroupCommit {
  /**
   * Runs `work` atomically and resolves once it is durable, or rejects with its own error (having changed nothing).
   * `work` must use only `trx` (the storage's own connection is held by the batch while it runs).
   */
  run<T>(work: Work<T>): Promise<T>;
}

/** Units per transaction: bounds how long one batch holds the connection. */
const MAX_BATCH = 256;

const shared = new WeakMap<Storage, GroupCommit>();

/**
 * The storage's group commit, shared by every writer of that storage (object writes and audit records alike), so
 * that the writes arriving together share one transaction and one fsync.
 *
 * SQLite has one connection and fsyncs every commit (`synchronous=FULL`): the writes queued while the event loop
 * is busy run as one transaction, each inside its own SAVEPOINT — a unit that throws is rolled back to its savepoint
 * and fails alone, the others commit — and every unit is acknowledged only after the COMMIT (its fsync) returned.
 * PostgreSQL's pool already runs writes concurrently and the server groups commits itself, so there each unit is
 * its own transaction (serialization failures retried), exactly as without the queue.
 */
export function groupCommit(storage: Storage): GroupCommit {
  let commits = shared.get(storage);
  if (!commits) shared.set(storage, (commits = storage.dialect === 'postgres' ? { run: (work) => inTransaction(storage, work) } : sqliteGroupCommit(storage)));
  return commits;
}

interface Queued {
  work: Work<unknown>;
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

type Outcome = { ok: true; value: unknown } | { ok: false; err: unknown };

function sqliteGroupCommit(storage: Storage): GroupCommit {
  let queue: Queued[] = [];
  let scheduled = false;

  async function runBatch(batch: Queued[]) {
    const outcomes: Outcome[] = [];
    try {
      await storage.db.transaction().execute(async (trx) => {
        for (const unit of batch) {
          await sql`savepoint group_write`.execute(trx);
          try {
            const value = await unit.work(trx);
            await sql`release group_write`.execute(trx);
            outcomes.push({ ok: true, value });
          } catch (err) {
            await sql`rollback to group_write`.execute(trx);
            await sql`release group_write`.execute(trx);
            outcomes.push({ ok: false, err });
          }
        }
      });
    } catch (err) {
      // The COMMIT (or the database itself) failed: nothing of the batch is durable.
      for (const unit of batch) unit.reject(err);
      return;
    }
    batch.forEach((unit, i) => {
      const outcome = outcomes[i];
      if (outcome.ok) unit.resolve(outcome.value); else unit.reject(outcome.err);
    });
  }

  async function drain() {
    while (queue.length) {
      const batch = queue.slice(0, MAX_BATCH);
      queue = queue.slice(MAX_BATCH);
      await runBatch(batch);
    }
    scheduled = false;
  }

  return {
    run<T>(work: Work<T>) {
      return new Promise<T>((resolve, reject) => {
        queue.push({ work, resolve: resolve as (v: unknown) => void, reject });
        if (!scheduled) {
          scheduled = true;
          // After the current I/O phase: the requests that arrived with this one join its batch.
          setImmediate(() => void drain());
        }
      });
    },
  };
}
