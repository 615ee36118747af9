import { Worker } from 'node:worker_threads';

/** An error as plain data (it crosses threads): name, message and its own primitive properties. */
export type ErrorData = { name: string; message: string; [property: string]: string | number | boolean };

/** One write of a batch, as the writer thread receives it: which operation (see defineWrite) and its arguments. */
export interface WriteUnit { module: string; name: string; args: unknown }
export type UnitOutcome = { ok: true; value: unknown } | { ok: false; error: ErrorData };

export type WriterRequest = { id: number; units: WriteUnit[] } | { close: true };
export type WriterReply = { id: number; outcomes?: UnitOutcome[]; error?: ErrorData };

/**
 * The SQLite writer thread: runs each batch of the group commit in one transaction on a connection of its own, so
 * that the COMMIT's fsync (0.4 ms on a quiet disk, 10 ms on a busy one) runs off the event loop.
 */
export interface SqliteWriter {
  /** Commits `units` as one transaction; resolves with each unit's outcome once durable, rejects if none is. */
  commit(units: WriteUnit[]): Promise<UnitOutcome[]>;
  /** Finishes the batches sent, then stops the thread. */
  close(): Promise<void>;
}

// Under tsx (tests, development) the worker is TypeScript and needs tsx's loader; built code runs the .js directly.
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const ENTRY = new URL(FROM_SOURCE ? './sqlite-writer-worker.ts' : './sqlite-writer-worker.js', import.meta.url).href;
const BOOT = `const { workerData } = require('node:worker_threads');
(async () => { if (workerData.tsx) (await import('tsx/esm/api')).register(); await import(workerData.entry); })();`;
/** The thread holds a connection, compiled statements and one batch at a time: a small heap. */
const WORKER_LIMITS = { maxOldGenerationSizeMb: 48, maxYoungGenerationSizeMb: 4 };

export function createSqliteWriter(file: string): SqliteWriter {
  type Pending = { resolve(outcomes: UnitOutcome[]): void; reject(err: Error): void };
  const pending = new Map<number, Pending>();
  let worker: Worker | undefined;
  let nextId = 0;
  let closed = false;

  const failAll = (err: Error) => {
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  };

  function spawn(): Worker {
    const thread = new Worker(BOOT, { eval: true, workerData: { entry: ENTRY, tsx: FROM_SOURCE, file }, resourceLimits: WORKER_LIMITS });
    thread.on('message', (reply: WriterReply) => {
      const p = pending.get(reply.id);
      if (!p) return;
      pending.delete(reply.id);
      // An idle writer never keeps the process alive.
      if (pending.size === 0) thread.unref();
      if (reply.outcomes) p.resolve(reply.outcomes);
      else p.reject(Object.assign(new Error(reply.error?.message ?? 'the write failed'), reply.error ?? {}));
    });
    thread.on('error', (err) => {
      if (worker === thread) worker = undefined;
      failAll(err);
    });
    thread.on('exit', (code) => {
      if (worker === thread) worker = undefined;
      failAll(new Error(`the SQLite writer thread exited (code ${code})`));
    });
    return thread;
  }

  return {
    commit(units) {
      // After close the database belongs to no one: a late write must not start a thread that outlives the storage.
      if (closed) return Promise.reject(new Error('the storage is closed'));
      const thread = (worker ??= spawn());
      const id = ++nextId;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        thread.ref();
        thread.postMessage({ id, units } satisfies WriterRequest);
      });
    },
    async close() {
      closed = true;
      const thread = worker;
      if (!thread) return;
      worker = undefined;
      const exited = new Promise((resolve) => thread.once('exit', resolve));
      thread.ref();
      thread.postMessage({ close: true } satisfies WriterRequest);
      await exited;
    },
  };
}
