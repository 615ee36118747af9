import { sql } from 'kysely';
import { databaseNowMs, type Storage } from '../storage/engine.js';
import { createSettingsRepository } from '../storage/settings.js';
import type { Clock } from '../clock.js';

export interface Job {
  name: string;
  run(now: number): Promise<unknown>;
}

/** The settings key holding the administrator's clock offset, shared by every node. */
export const CLOCK_OFFSET_SETTING = 'clock.offset_ms';

const LEASE = 'scheduler';
/** Each node's heartbeat is a lease row of its own, `node:{id}`, renewed every tick and expiring like the scheduler's. */
const HEARTBEAT_PREFIX = 'node:';

/**
 * Background work that runs exactly once across a cluster: each tick, a node takes (or renews) the `scheduler`
 * lease in the database and only the holder runs the jobs; when the holder dies, its lease expires (after
 * `leaseMs`, three ticks by default) and another node takes over. Lease times are the database's clock, so skew
 * between the nodes' hosts cannot give two holders. The lease is re-checked before each job, so a holder that
 * stalled past its lease stops before running more work. Jobs are idempotent database operations, so the one
 * remaining window — a job already running when its lease expires — cannot apply anything twice.
 *
 * Every tick (on every node, holder or not) also picks up the shared service-clock offset, so an administrator's
 * clock advance on one node reaches the others within a tick, and renews the node's heartbeat, from which each node
 * counts the live nodes of the cluster (throttling gives each node its share of a vault's budget).
 */
export function createScheduler(deps: {
  storage: Storage; clock: Clock; nodeId: string; intervalMs?: number; leaseMs?: number;
  onError: (job: string, err: unknown) => void;
  /** Called after a job that did something (a truthy result, e.g. a count of purged objects). */
  onJobDone?: (job: string, result: unknown) => void;
}) {
  const { storage, clock, nodeId } = deps;
  const intervalMs = deps.intervalMs ?? 5_000;
  const leaseMs = deps.leaseMs ?? 3 * intervalMs;
  const settings = createSettingsRepository(storage.db);
  const jobs: Job[] = [];
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;

  async function holdLease(): Promise<boolean> {
    const now = databaseNowMs(storage);
    const expiresAt = sql<number>`${now} + ${leaseMs}`;
    await storage.db.insertInto('leases').values({ name: LEASE, holder: nodeId, expires_at: expiresAt })
      .onConflict((oc) => oc.column('name').doNothing()).execute();
    const taken = await storage.db.updateTable('leases').set({ holder: nodeId, expires_at: expiresAt })
      .where('name', '=', LEASE)
      .where((eb) => eb.or([eb('holder', '=', nodeId), eb('expires_at', '<', now)]))
      .executeTakeFirst();
    return Number(taken.numUpdatedRows) > 0;
  }

  async function syncClock() {
    const stored = Number((await settings.get(CLOCK_OFFSET_SETTING)) ?? 0);
    if (Number.isFinite(stored) && stored !== clock.offsetMs()) clock.setOffset(stored);
  }

  let liveNodes = 1;
  async function heartbeat() {
    const now = databaseNowMs(storage);
    const name = `${HEARTBEAT_PREFIX}${nodeId}`;
    const expiresAt = sql<number>`${now} + ${leaseMs}`;
    await storage.db.insertInto('leases').values({ name, holder: nodeId, expires_at: expiresAt })
      .onConflict((oc) => oc.column('name').doUpdateSet({ expires_at: expiresAt })).execute();
    const live = await storage.db.selectFrom('leases').select((eb) => eb.fn.countAll<number | string>().as('n'))
      .where('name', 'like', `${HEARTBEAT_PREFIX}%`).where('expires_at', '>=', now).executeTakeFirst();
    liveNodes = Math.max(1, Number(live?.n ?? 1));
  }

  async function tick() {
    await syncClock();
    await heartbeat();
    for (const job of jobs) {
      if (!(await holdLease())) return;
      try {
        const result = await job.run(clock.now());
        if (result) deps.onJobDone?.(job.name, result);
      } catch (err) {
        deps.onError(job.name, err);
      }
    }
  }

  return {
    add(job: Job) { jobs.push(job); },
    /** The nodes whose heartbeat has not expired, this one included (as of this node's last tick). */
    liveNodes: () => liveNodes,
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
      // Hand the lease back, so another node takes over at its next tick instead of waiting for expiry.
      await storage.db.deleteFrom('leases').where('name', '=', LEASE).where('holder', '=', nodeId).execute();
      await storage.db.deleteFrom('leases').where('name', '=', `${HEARTBEAT_PREFIX}${nodeId}`).execute();
    },
  };
}
