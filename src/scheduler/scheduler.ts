import type { Storage } from '../storage/engine.js';
import type { Clock } from '../clock.js';

export interface Job {
  name: string;
  run(now: number): Promise<unknown>;
}

/**
 * Background work that runs exactly once across a cluster: each tick, a node takes (or renews) the `scheduler`
 * lease in the database and only the holder runs the jobs; when the holder dies, its lease expires and another
 * node takes over.
 */
export function createScheduler(deps: { storage: Storage; clock: Clock; nodeId: string; intervalMs?: number; leaseMs?: number; onError: (job: string, err: unknown) => void }) {
  const { storage, clock, nodeId } = deps;
  const intervalMs = deps.intervalMs ?? 5_000;
  const leaseMs = deps.leaseMs ?? 15_000;
  const jobs: Job[] = [];
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;

  async function holdLease(): Promise<boolean> {
    const now = Date.now();
    await storage.db.insertInto('leases').values({ name: 'scheduler', holder: nodeId, expires_at: now + leaseMs })
      .onConflict((oc) => oc.column('name').doNothing()).execute();
    const taken = await storage.db.updateTable('leases').set({ holder: nodeId, expires_at: now + leaseMs })
      .where('name', '=', 'scheduler')
      .where((eb) => eb.or([eb('holder', '=', nodeId), eb('expires_at', '<', now)]))
      .executeTakeFirst();
    return Number(taken.numUpdatedRows) > 0;
  }

  async function tick() {
    if (!(await holdLease())) return;
    for (const job of jobs) {
      try {
        await job.run(clock.now());
      } catch (err) {
        deps.onError(job.name, err);
      }
    }
  }

  return {
    add(job: Job) { jobs.push(job); },
    /** Runs the jobs now (if this node holds the lease) and waits for them. */
    async runNow() {
      while (running) await running;
      running = tick().finally(() => { running = undefined; });
      await running;
    },
    start() {
      timer = setInterval(() => { if (!running) this.runNow().catch((err) => deps.onError('scheduler', err)); }, intervalMs);
      timer.unref();
    },
    async stop() {
      if (timer) clearInterval(timer);
      while (running) await running;
      await storage.db.deleteFrom('leases').where('name', '=', 'scheduler').where('holder', '=', nodeId).execute();
    },
  };
}
