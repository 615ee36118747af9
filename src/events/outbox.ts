import fs from 'node:fs';
import path from 'node:path';
import { sql } from 'kysely';
import type { Clock } from '../clock.js';
import { databaseNowMs, type Storage } from '../storage/engine.js';
import { envelope, type VaultEvent } from './events.js';
import type { EventsDb } from './tables.js';
import { admits, storageAccountOf, type EventSubscription, type EventSubscriptions } from './subscriptions.js';
import { deliverEvent, DELIVERY_TIMEOUT_MS, type AttemptOutcome } from './webhook.js';

/**
 * The durable outbox. Publishing writes one row per matching subscription into `event_deliveries` (in the caller's
 * transaction when it has one), so an event survives a crash between the change and its delivery. Delivery claims
 * each row with a conditional UPDATE before sending it, so two nodes (or the scheduler and the local kick after a
 * publish) never send the same row at once; a row is deleted once delivered or dead-lettered. At-least-once with
 * the event's id as the de-duplication key, as Event Grid itself.
 */

/** Event Grid's retry schedule (after attempt n, wait RETRY_SCHEDULE_MS[n-1]; the last step repeats). */
export const RETRY_SCHEDULE_MS = [10_000, 30_000, 60_000, 300_000, 600_000, 1_800_000, 3_600_000, 10_800_000, 21_600_000, 43_200_000];
/**
 * How long one node owns a claimed row: a delivery attempt plus slack; a node that died mid-attempt loses it then.
 * Claims are on the database's clock (like the scheduler's lease), so skew between nodes' hosts cannot double-claim.
 */
const CLAIM_MS = DELIVERY_TIMEOUT_MS + 30_000;
const BATCH = 50;
/** Receivers' answers that Event Grid never retries: the event itself is refused. */
const NOT_RETRIED = new Set([400, 413]);

export interface Outbox {
  /**
   * Enqueues an event for every subscription of `vaultId` whose filter admits it; the event is built (once, for all
   * of them) only when the vault has subscriptions, from the vault's resource id they record. Returns how many.
   */
  enqueue(executor: EventsDb, vaultId: string, build: (vaultResourceId: string) => VaultEvent): Promise<number>;
  /** Delivers (or retries, or dead-letters) every due row; returns how many rows it finished. */
  deliverDue(): Promise<number>;
  /** Starts a delivery pass soon, without waiting (after a publish, so events leave before the next scheduler tick). */
  kick(): void;
  /** No more kicks; waits for the pass in flight (its rows stay claimed until their claim lapses if it is cut short). */
  close(): Promise<void>;
}

export function createOutbox(deps: {
  db: EventsDb; storage: Storage; clock: Clock; subscriptions: EventSubscriptions; dataDir: string;
  onError?: (err: unknown) => void;
}): Outbox {
  const { db, clock, subscriptions } = deps;
  const dbNow = databaseNowMs(deps.storage);
  let pass: Promise<number> | undefined;
  let again = false;
  let closed = false;

  function deadLetterFile(s: EventSubscription) {
    const target = s.settings.deadLetter!;
    const vaultName = s.settings.topic.split('/').pop()!.toLowerCase();
    return path.join(deps.dataDir, 'deadletter', storageAccountOf(target), target.blobContainerName, vaultName, `${s.name.toLowerCase()}.jsonl`);
  }

  /** Azure's dead-letter record: the event plus why and after how many attempts it was given up. */
  async function deadLetter(s: EventSubscription | undefined, row: { event: string; attempts: number; created_at: number }, reason: string, last?: AttemptOutcome) {
    if (!s?.settings.deadLetter) return;
    const file = deadLetterFile(s);
    await fs.promises.mkdir(path.dirname(file), { recursive: true });
    const record = {
      ...JSON.parse(row.event),
      deadLetterReason: reason,
      deliveryAttempts: row.attempts,
      lastDeliveryOutcome: last?.error ?? (last?.ok ? 'Succeeded' : 'None'),
      lastHttpStatusCode: last?.status ?? 0,
      publishTime: new Date(Number(row.created_at)).toISOString(),
      lastDeliveryAttemptTime: new Date(clock.now()).toISOString(),
    };
    await fs.promises.appendFile(file, `${JSON.stringify(record)}\n`, { flag: 'a' });
  }

  /** Claims a row as it was read: unless another node attempted it since (then its attempt count moved on). */
  async function claim(row: DueRow) {
    const result = await db.updateTable('event_deliveries').set({ claimed_until: sql<number>`${dbNow} + ${CLAIM_MS}` })
      .where('seq', '=', row.seq).where('attempts', '=', row.attempts).where('next_attempt_at', '<=', clock.now())
      .where((eb) => eb.or([eb('claimed_until', 'is', null), eb('claimed_until', '<', dbNow)]))
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  async function finish(seq: number) {
    await db.deleteFrom('event_deliveries').where('seq', '=', seq).execute();
  }

  type DueRow = { seq: number; subscription_id: string; event: string; attempts: number; expires_at: number; created_at: number };

  async function attempt(row: DueRow, subscription: EventSubscription | undefined): Promise<boolean> {
    if (!(await claim(row))) return false;
    const now = clock.now();
    if (!subscription) {
      await finish(row.seq);
      return true;
    }
    if (Number(row.expires_at) <= now) {
      await deadLetter(subscription, row, 'TimeToLiveExceeded');
      await finish(row.seq);
      return true;
    }
    const attempts = Number(row.attempts) + 1;
    const outcome = await deliverEvent(subscription.settings.endpointUrl, subscription.settings.eventDeliverySchema, row.event, {
      subscriptionName: subscription.name, deliveryCount: attempts - 1,
    });
    if (outcome.ok) {
      await finish(row.seq);
      return true;
    }
    const refused = outcome.status !== undefined && NOT_RETRIED.has(outcome.status);
    if (refused || attempts >= subscription.settings.maxDeliveryAttempts) {
      await deadLetter(subscription, { ...row, attempts }, refused ? 'DeliveryFailed' : 'MaxDeliveryAttemptsExceeded', outcome);
      await finish(row.seq);
      return true;
    }
    const wait = RETRY_SCHEDULE_MS[Math.min(attempts, RETRY_SCHEDULE_MS.length) - 1];
    await db.updateTable('event_deliveries')
      .set({ attempts, next_attempt_at: clock.now() + wait, claimed_until: null, last_error: outcome.error ?? null })
      .where('seq', '=', row.seq).execute();
    return false;
  }

  async function deliverPass(): Promise<number> {
    let finished = 0;
    for (;;) {
      const due = await db.selectFrom('event_deliveries')
        .select(['seq', 'subscription_id', 'event', 'attempts', 'expires_at', 'created_at'])
        .where('next_attempt_at', '<=', clock.now())
        .where((eb) => eb.or([eb('claimed_until', 'is', null), eb('claimed_until', '<', dbNow)]))
        .orderBy('seq').limit(BATCH).execute();
      if (!due.length) return finished;
      const bySubscription = new Map<string, DueRow[]>();
      for (const row of due) bySubscription.set(row.subscription_id, [...(bySubscription.get(row.subscription_id) ?? []), row]);
      // Subscriptions in parallel (one slow endpoint does not hold the others back), each one's events in order.
      const counts = await Promise.all([...bySubscription].map(async ([id, rows]) => {
        const s = await subscriptions.byId(id);
        let done = 0;
        for (const row of rows) {
          if (await attempt(row, s)) done++;
          // A failed attempt leaves the rest of this subscription's events for their own turns.
          else break;
        }
        return done;
      }));
      const passFinished = counts.reduce((a, b) => a + b, 0);
      finished += passFinished;
      if (due.length < BATCH || passFinished === 0) return finished;
    }
  }

  const outbox: Outbox = {
    async enqueue(executor, vaultId, build) {
      const all = await subscriptions.forVault(executor, vaultId);
      if (!all.length) return 0;
      const event = build(all[0].settings.topic);
      const matching = all.filter((s) => admits(s.settings, event.type, event.subject));
      if (!matching.length) return 0;
      const now = clock.now();
      await executor.insertInto('event_deliveries').values(matching.map((s) => ({
        subscription_id: s.id, event: JSON.stringify(envelope(event, s.settings.eventDeliverySchema)), attempts: 0,
        next_attempt_at: now, expires_at: now + s.settings.eventTimeToLiveInMinutes * 60_000, claimed_until: null, last_error: null, created_at: now,
      }))).execute();
      return matching.length;
    },

    async deliverDue() {
      if (pass) {
        again = true;
        return pass;
      }
      pass = (async () => {
        let total = 0;
        do {
          again = false;
          total += await deliverPass();
        } while (again);
        return total;
      })().finally(() => { pass = undefined; });
      return pass;
    },

    kick() {
      if (closed) return;
      setImmediate(() => { if (!closed) outbox.deliverDue().catch((err) => deps.onError?.(err)); });
    },

    async close() {
      closed = true;
      await pass?.catch(() => undefined);
    },
  };
  return outbox;
}
