import { CompiledQuery, type Kysely } from 'kysely';
import { inTransaction, type Storage } from './engine.js';
import type { Database } from './schema.js';
import type { ErrorData } from './sqlite-writer.js';

/** A unit of durable work: runs inside a transaction, all of it or none of it. */
export type Work<T> = (trx: Kysely<Database>) => Promise<T>;

/**
 * A durable write that can run on the SQLite writer thread: code found there by the URL of the module that defines
 * it and a name, data-only (structured-cloneable) arguments and result. It uses only `trx`.
 */
export interface WriteOperation<A, T> {
  readonly module: string;
  readonly name: string;
  readonly run: (trx: Kysely<Database>, args: A) => Promise<T>;
  /** Rebuilds an error this operation threw (it crossed the thread as plain data); undefined: a plain Error. */
  readonly revive?: (error: ErrorData) => Error | undefined;
}

const operations = new Map<string, WriteOperation<any, any>>();
const operationKey = (module: string, name: string) => `${module}#${name}`;

/** Defines (and registers, for the writer thread) a write operation; `module` is the defining module's import.meta.url. */
export function defineWrite<A, T>(module: string, name: string, run: (trx: Kysely<Database>, args: A) => Promise<T>,
  opts: { revive?: (error: ErrorData) => Error | undefined } = {}): WriteOperation<A, T> {
  const operation = { module, name, run, revive: opts.revive };
  operations.set(operationKey(module, name), operation);
  return operation;
}

/** The operation `name` of `module`, loading the module if need be (the writer thread's side of defineWrite). */
export async function findWrite(module: string, name: string): Promise<WriteOperation<unknown, unknown>> {
  if (!operations.has(operationKey(module, name))) await import(module);
  const operation = operations.get(operationKey(module, name));
  if (!operation) throw new Error(`no write operation ${name} in ${module}`);
  return operation;
}

export interface GroupCommit {
  /**
   * Runs `operation` atomically and resolves once it is durable, or rejects with its own error (having changed
   * nothing). Concurrent writes share one transaction and one fsync.
   */
  write<A, T>(operation: WriteOperation<A, T>, args: A): Promise<T>;
  /**
   * Runs `work` atomically and resolves once it is durable. A closure cannot cross to the SQLite writer thread, so
   * with the writer thread it runs in a transaction of its own (not grouped): prefer `write` on hot paths.
   */
  run<T>(work: Work<T>): Promise<T>;
}

/** Units per transaction: bounds how long one batch holds the write lock. */
const MAX_BATCH = 256;

const shared = new WeakMap<Storage, GroupCommit>();

/**
 * The storage's group commit, shared by every writer of that storage (object writes and audit records alike), so
 * that the writes arriving together share one transaction and one fsync.
 *
 * SQLite fsyncs every commit (`synchronous=FULL`): the writes queued while a batch is being committed form the next
 * batch, one transaction, each inside its own SAVEPOINT — a unit that throws is rolled back to its savepoint and
 * fails alone, the others commit — and every unit is acknowledged only after the COMMIT (its fsync) returned. The
 * batch runs on the storage's connection, or on the writer thread's own connection when it is enabled (then the
 * event loop never waits for the fsync, and a read on the server's connection after the acknowledgement sees the
 * write: WAL makes a committed transaction visible to every statement that starts afterwards).
 * PostgreSQL's pool already runs writes concurrently and the server groups commits itself, so there each unit is
 * its own transaction (serialization failures retried), exactly as without the queue.
 */
export function groupCommit(storage: Storage): GroupCommit {
  let commits = shared.get(storage);
  if (!commits) {
    const run = <T>(work: Work<T>) => inTransaction(storage, work);
    commits = storage.dialect === 'sqlite'
      ? sqliteGroupCommit(storage, run)
      : { run, write: (operation, args) => run((trx) => operation.run(trx, args)) };
    shared.set(storage, commits);
  }
  return commits;
}

export type Outcome = { ok: true; value: unknown } | { ok: false; err: unknown };

/**
 * Runs `units` in one transaction on `db`, each inside its own SAVEPOINT, and returns each one's outcome once the
 * COMMIT returned; throws (nothing durable) if the transaction itself fails. The writer thread's batch.
 */
export async function commitBatch(db: Kysely<Database>, units: Work<unknown>[]): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  await db.transaction().execute(async (trx) => {
    for (const unit of units) {
      await trx.executeQuery(SAVEPOINT);
      try {
        const value = await unit(trx);
        await trx.executeQuery(RELEASE);
        outcomes.push({ ok: true, value });
      } catch (err) {
        await trx.executeQuery(ROLLBACK_TO);
        await trx.executeQuery(RELEASE);
        outcomes.push({ ok: false, err });
      }
    }
  });
  return outcomes;
}

// Four statements per write: compiled once.
const SAVEPOINT = CompiledQuery.raw('savepoint group_write');
const RELEASE = CompiledQuery.raw('release group_write');
const ROLLBACK_TO = CompiledQuery.raw('rollback to group_write');

/** An error as data, to cross a thread: its name, message and own primitive properties (`code`, `reason`…). */
export function errorData(err: unknown): ErrorData {
  if (!(err instanceof Error)) return { name: 'Error', message: String(err) };
  const data: ErrorData = { name: err.name, message: err.message };
  for (const [key, value] of Object.entries(err)) {
    if (['string', 'number', 'boolean'].includes(typeof value)) data[key] = value as string | number | boolean;
  }
  return data;
}

/** The error `data` describes: the operation's own kind if it knows it, else an Error with the same properties. */
export function reviveError(data: ErrorData, operation?: WriteOperation<unknown, unknown>): Error {
  const revived = operation?.revive?.(data);
  if (revived) return revived;
  const { name, message, ...props } = data;
  return Object.assign(new Error(message), props, { name });
}

interface Queued {
  operation: WriteOperation<unknown, unknown>;
  args: unknown;
  /** A closure instead of the operation (only without the writer thread: a closure cannot cross to it). */
  work?: Work<unknown>;
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

/** Runs a batch on the writer thread if there is one, else on the storage's own connection (on the event loop). */
async function commitQueued(storage: Storage, batch: Queued[]): Promise<Outcome[]> {
  if (!storage.writer) return commitBatch(storage.db, batch.map(({ operation, args, work }) => work ?? ((trx) => operation.run(trx, args))));
  const outcomes = await storage.writer.commit(batch.map(({ operation, args }) => ({ module: operation.module, name: operation.name, args })));
  return outcomes.map((o, i) => (o.ok ? o : { ok: false, err: reviveError(o.error, batch[i].operation) }));
}

/** Stands for a closure in the queue (never registered, never sent to the writer thread). */
const CLOSURE: WriteOperation<unknown, unknown> = { module: '', name: 'closure', run: () => Promise.reject(new Error('a closure runs itself')) };

function sqliteGroupCommit(storage: Storage, run: GroupCommit['run']): GroupCommit {
  let queue: Queued[] = [];
  let sending = false;

  // One batch at a time: what arrives while one commits forms the next.
  function pump() {
    if (sending || !queue.length) return;
    sending = true;
    // After the current I/O phase: the requests that arrived with this one join its batch.
    setImmediate(() => void send());
  }

  async function send() {
    const batch = queue.slice(0, MAX_BATCH);
    queue = queue.slice(MAX_BATCH);
    try {
      const outcomes = await commitQueued(storage, batch);
      batch.forEach((unit, i) => {
        const outcome = outcomes[i];
        if (outcome.ok) unit.resolve(outcome.value); else unit.reject(outcome.err);
      });
    } catch (err) {
      // The COMMIT (or the writer thread) failed: nothing of the batch is durable.
      for (const unit of batch) unit.reject(err);
    }
    sending = false;
    pump();
  }

  const enqueue = <T>(unit: Omit<Queued, 'resolve' | 'reject'>) => new Promise<T>((resolve, reject) => {
    queue.push({ ...unit, resolve: resolve as (v: unknown) => void, reject });
    pump();
  });
  // Without the writer thread a closure joins the batch like a named operation.
  const runClosure = <T>(work: Work<T>) => (storage.writer ? run(work) : enqueue<T>({ operation: CLOSURE, args: undefined, work }));
  return {
    run: runClosure,
    write: <A, T>(operation: WriteOperation<A, T>, args: A) =>
      enqueue<T>({ operation: operation as WriteOperation<unknown, unknown>, args }),
  };
}
