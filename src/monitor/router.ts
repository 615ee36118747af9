import { sql } from 'kysely';
import { databaseNowMs, type Storage } from '../storage/engine.js';
import type { DiagnosticSettings, Route } from './diagnostic-settings.js';
import './tables.js';

export interface AuditRecord { seq: number; time: number; record: string }

/** Where one route's records go. Transactional sinks (the workspace) also advance the cursor in their transaction. */
export interface Sink {
  /** Delivers `records` (in order); resolves once they are delivered or dead-lettered, rejects to retry later. */
  deliver(route: Route, records: AuditRecord[], advanceCursor: (trx: Storage['db']) => Promise<boolean>, signal: AbortSignal): Promise<void>;
}

/**
 * Routes audit records to diagnostic-setting destinations after they are durable, reading them back from the audit
 * table. Each destination keeps a cursor per origin (the node that wrote the records) in the database, so nothing is
 * lost across restarts. Within one origin, records commit in sequence order (each node's audit writes are one batch
 * at a time), so a cursor never skips a record that commits later — which a single cursor over every node's records
 * could, on PostgreSQL. Each origin is leased to one node: its own writer while alive, then whichever node adopts it
 * once the lease expires (a crashed node's undelivered records are delivered by another node, or by the restarted
 * node). Cursors advance by compare-and-set, so two holders (a stalled node that comes back) never both advance it.
 *
 * Delivery is at least once: a crash between a file or webhook delivery and its cursor update repeats that batch
 * (records carry their correlationId to de-duplicate). The workspace sink writes and advances in one transaction:
 * exactly once. Each route delivers on its own, so a slow destination delays only itself; requests never wait on any.
 */
export function createAuditRouter(deps: {
  storage: Storage; nodeId: string; settings: DiagnosticSettings; sinks: Record<Route['kind'], Sink>;
  intervalMs?: number; leaseMs?: number; batchSize?: number;
  /** false: this node writes audit records but delivers none; another node adopts them at once. */
  deliver?: boolean;
  onError: (route: string, err: unknown) => void;
}) {
  const { storage, nodeId } = deps;
  const { db } = storage;
  const intervalMs = deps.intervalMs ?? 500;
  const leaseMs = deps.leaseMs ?? 15_000;
  const batchSize = deps.batchSize ?? 200;
  const running = new Map<string, Promise<void>>();
  /** `{route}|{origin}` keys whose last drain found nothing left: an adopted origin caught up on every route is released. */
  const caughtUp = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  let ticking: Promise<void> | undefined;
  let stopped = false;
  // Stopping abandons deliveries in flight (a webhook mid-retry): their cursors stay, so they are delivered later.
  const stopping = new AbortController();

  /** Renews this node's lease on its own records and adopts origins whose holder stopped renewing. */
  async function leasedOrigins(): Promise<string[]> {
    const now = databaseNowMs(storage);
    const expiresAt = sql<number>`${now} + ${leaseMs}`;
    await db.insertInto('audit_origins').values({ origin: nodeId, holder: nodeId, expires_at: expiresAt })
      .onConflict((oc) => oc.column('origin').doUpdateSet({ holder: nodeId, expires_at: expiresAt })).execute();
    await db.updateTable('audit_origins').set({ holder: nodeId, expires_at: expiresAt })
      .where((eb) => eb.or([eb('holder', '=', nodeId), eb('expires_at', '<', now)])).execute();
    return (await db.selectFrom('audit_origins').select('origin').where('holder', '=', nodeId).execute()).map((r) => r.origin);
  }

  async function cursorOf(route: Route, origin: string) {
    const row = await db.selectFrom('audit_cursors').select('seq').where('route', '=', route.key).where('origin', '=', origin).executeTakeFirst();
    return row?.seq;
  }

  /** Delivers one route's backlog from one origin, a batch at a time, until it is caught up. */
  async function drain(route: Route, origin: string) {
    while (!stopped) {
      const stored = await cursorOf(route, origin);
      const from = Math.max(stored ?? 0, route.startSeq);
      const records = await db.selectFrom('audit_events').select(['seq', 'time', 'record'])
        .where('resource_key', '=', route.resourceKey).where('origin', '=', origin).where('seq', '>', from)
        .orderBy('seq').limit(batchSize).execute();
      if (!records.length) {
        caughtUp.add(`${route.key}|${origin}`);
        return;
      }
      caughtUp.delete(`${route.key}|${origin}`);
      const to = records.at(-1)!.seq;
      const advance = async (trx: Storage['db']) => {
        if (stored === undefined) {
          const inserted = await trx.insertInto('audit_cursors').values({ route: route.key, origin, seq: to })
            .onConflict((oc) => oc.columns(['route', 'origin']).doNothing()).executeTakeFirst();
          return Number(inserted.numInsertedOrUpdatedRows ?? 0n) > 0;
        }
        const updated = await trx.updateTable('audit_cursors').set({ seq: to })
          .where('route', '=', route.key).where('origin', '=', origin).where('seq', '=', stored).executeTakeFirst();
        return Number(updated.numUpdatedRows) > 0;
      };
      await deps.sinks[route.kind].deliver(route, records, advance, stopping.signal);
    }
  }

  // The lease is renewed (and dead nodes' origins adopted) a few times per lease period, not on every tick: ticks
  // follow audit commits, and on SQLite each renewal would be one more fsync beside them.
  let origins: string[] = [];
  let renewedAt = 0;

  async function tick() {
    if (Date.now() - renewedAt > leaseMs / 3) {
      origins = await leasedOrigins();
      renewedAt = Date.now();
    }
    const routes = await deps.settings.routes();
    // A dead node's records, once all delivered, need no more reading: its origin row goes (its cursors stay, so
    // should that node only have stalled and come back, it resumes where delivery stopped).
    for (const origin of origins.filter((o) => o !== nodeId)) {
      if (routes.every((r) => caughtUp.has(`${r.key}|${origin}`) && !running.has(`${r.key}|${origin}`))) {
        await db.deleteFrom('audit_origins').where('origin', '=', origin).where('holder', '=', nodeId).execute();
        origins.splice(origins.indexOf(origin), 1);
        // Should the origin be offered again (a node that writes but does not deliver), it is drained afresh first.
        for (const r of routes) caughtUp.delete(`${r.key}|${origin}`);
      }
    }
    for (const route of routes) {
      for (const origin of origins) {
        const key = `${route.key}|${origin}`;
        if (running.has(key)) continue;
        running.set(key, drain(route, origin).catch((err) => deps.onError(route.key, err)).finally(() => running.delete(key)));
      }
    }
  }

  const runTick = () => {
    if (stopped || deps.deliver === false || ticking) return;
    ticking = tick().catch((err) => deps.onError('audit-router', err)).finally(() => { ticking = undefined; });
  };
  let kicked: NodeJS.Timeout | undefined;

  return {
    start() {
      if (deps.deliver === false) {
        // An expired lease on its own records, so the delivering nodes adopt them; offered again should an adopter
        // release them once caught up.
        const offer = () => db.insertInto('audit_origins').values({ origin: nodeId, holder: nodeId, expires_at: 0 })
          .onConflict((oc) => oc.column('origin').doNothing()).execute()
          .then(() => undefined, (err) => deps.onError('audit-router', err));
        timer = setInterval(offer, intervalMs);
        timer.unref();
        void offer();
        return;
      }
      timer = setInterval(runTick, intervalMs);
      timer.unref();
      runTick();
    },
    /** Nudges delivery (after an audit batch commits) without waiting for the next tick. */
    kick() {
      // At most one extra tick per 100 ms however many audit batches commit: delivery sooner, at a bounded cost.
      kicked ??= setTimeout(() => { kicked = undefined; runTick(); }, 100).unref();
    },
    /** Waits for in-flight deliveries; the lease is handed back so another node adopts this node's records at once. */
    async stop() {
      stopped = true;
      stopping.abort();
      if (timer) clearInterval(timer);
      if (kicked) clearTimeout(kicked);
      await ticking;
      await Promise.allSettled([...running.values()]);
      await db.updateTable('audit_origins').set({ expires_at: 0 }).where('holder', '=', nodeId).execute().catch(() => undefined);
    },
  };
}
