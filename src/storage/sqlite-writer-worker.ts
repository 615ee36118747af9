// The SQLite writer thread (see sqlite-writer.ts): one connection, one batch at a time, in the order received.
import { parentPort, workerData } from 'node:worker_threads';
import { Kysely, SqliteDialect } from 'kysely';
import { openSqliteConnection } from './engine.js';
import { commitBatch, errorData, findWrite } from './group-commit.js';
import type { Database } from './schema.js';
import type { UnitOutcome, WriterReply, WriterRequest } from './sqlite-writer.js';

const port = parentPort!;
// Waiting for the write lock (held by the server's connection during one of its own transactions) blocks only this
// thread, so it may wait long; a batch that gives up fails every write in it.
const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: openSqliteConnection(workerData.file as string, { busyTimeoutMs: 30_000 }) }) });

async function handle(request: WriterRequest) {
  if ('close' in request) {
    await db.destroy();
    port.close();
    return;
  }
  let reply: WriterReply;
  try {
    // Each operation's code is loaded before the transaction starts: no module loading while holding the lock.
    const operations = await Promise.allSettled(request.units.map((unit) => findWrite(unit.module, unit.name)));
    const outcomes = await commitBatch(db, request.units.map((unit, i) => async (trx) => {
      const operation = operations[i];
      if (operation.status === 'rejected') throw operation.reason;
      return operation.value.run(trx, unit.args);
    }));
    reply = { id: request.id, outcomes: outcomes.map((o): UnitOutcome => (o.ok ? o : { ok: false, error: errorData(o.err) })) };
  } catch (err) {
    reply = { id: request.id, error: errorData(err) };
  }
  try {
    port.postMessage(reply);
  } catch (err) {
    // A result that cannot be cloned is a bug of its operation; the batch is committed, but say what went wrong.
    port.postMessage({ id: request.id, error: errorData(err) } satisfies WriterReply);
  }
}

let queue = Promise.resolve();
port.on('message', (request: WriterRequest) => {
  queue = queue.then(() => handle(request));
});
