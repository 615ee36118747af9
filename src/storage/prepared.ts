import type { Compilable, CompiledQuery, Kysely } from 'kysely';

const SLOT = '\u0000coffer-slot-';

/** Stands for the `index`-th argument of a precompiled query; typed as whatever the column needs. */
export type Slot = <T = string>(index: number) => T;

/**
 * A query built and compiled once, executed many times with new arguments: the per-request reads skip Kysely's
 * query building and compilation (which cost more than running the statement). `build` receives `slot(i)` for each
 * argument; the compiled SQL keeps one placeholder per slot, and `run(executor, ...args)` binds the arguments in
 * their places (constants of the query stay as they were). The SQL is compiled for `db`'s dialect, and the executor
 * must be `db` or one of its transactions.
 */
export function precompile<Row, Args extends unknown[]>(db: Kysely<any>, build: (slot: Slot, db: Kysely<any>) => Compilable<Row>) {
  const marker: Slot = <T>(index: number) => `${SLOT}${index}` as unknown as T;
  const compiled = build(marker, db).compile() as CompiledQuery<Row>;
  const sources = compiled.parameters.map((p) => (typeof p === 'string' && p.startsWith(SLOT) ? Number(p.slice(SLOT.length)) : -1));
  return async function run(executor: Kysely<any>, ...args: Args): Promise<Row[]> {
    const parameters = sources.map((source, i) => (source < 0 ? compiled.parameters[i] : args[source]));
    return (await executor.executeQuery<Row>({ ...compiled, parameters })).rows;
  };
}
