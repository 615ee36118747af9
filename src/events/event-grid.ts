import type { FastifyInstance } from 'fastify';
import type { Clock } from '../clock.js';
import type { Keyring } from '../crypto/envelope.js';
import { createArm } from '../control-plane/arm.js';
import type { VaultsService } from '../control-plane/vaults.js';
import type { Authorizer } from '../gates/authorization/evaluate.js';
import type { Job } from '../scheduler/scheduler.js';
import type { Endpoints } from '../endpoints.js';
import type { Storage } from '../storage/engine.js';
import type { Kysely } from 'kysely';
import type { Database } from '../storage/schema.js';
import type { GenerationCache } from '../storage/generation.js';
import type { VersionWriteHook } from '../objects/store.js';
import { newEvent, type KeyVaultEventData, type ObjectEventKind, type ObjectType } from './events.js';
import { createOutbox } from './outbox.js';
import { createEventSubscriptions } from './subscriptions.js';
import { createExpiryEventsJob } from './expiry-job.js';
import { eventSubscriptionRoutes } from './routes.js';
import { eventsDb, withEventTables, type EventsDb } from './tables.js';

/** What an object version contributes to its events (never its value). */
export interface VersionFacts {
  name: string;
  version: string;
  meta: { nbf?: number; exp?: number };
}

/** The event of a vault change, joined to the change's transaction. */
export interface VaultChangeHook {
  /** Runs in the change's transaction; a throw undoes the change too. */
  inTransaction(trx: Kysely<Database>): Promise<void>;
  /** Runs once that transaction is durable (starts delivering the event). */
  afterCommit(): void;
}

/**
 * The hooks the services call. An event is written by the transaction of the change it reports, so neither exists
 * without the other: each hook is asked before the write and hands the writer the work to join to its transaction —
 * or nothing when the vault has no subscription.
 */
export interface VaultEventHooks {
  objectVersionCreated(vault: { id: string }, objectType: ObjectType): Promise<VersionWriteHook | undefined>;
  accessPolicyChanged(vault: { id: string }): Promise<VaultChangeHook | undefined>;
}

const vaultNameOf = (vaultResourceId: string) => vaultResourceId.slice(vaultResourceId.lastIndexOf('/') + 1);
const COLLECTION_PATH: Record<ObjectType, string> = { Secret: 'secrets', Key: 'keys', Certificate: 'certificates' };

/** How many vaults' "has subscriptions" answers are cached (the cache also starts over whenever the generation moves). */
const CACHED_VAULTS = 10_000;
/**
 * How old the cache generation may be when a write asks whether its vault has subscriptions. Inside a request it was
 * read by the request's first gate moments ago; a scheduled job's write (a renewal, a rotation) reads it again unless
 * a request did within this time, so a subscription made on another node is never missed for longer than that.
 */
const GENERATION_MAX_AGE_MS = 1_000;

/**
 * Event Grid for Coffer: subscriptions, the outbox and its delivery, and the publishing hooks. `cache` is the storage's
 * cache generation (event_subscriptions bumps it): whether a vault has subscriptions is then known without a read.
 */
export function createEventGrid(deps: {
  storage: Storage; clock: Clock; keyring: Keyring; endpoints: Endpoints; dataDir: string; cache: GenerationCache; onError?: (err: unknown) => void;
}) {
  const { clock, endpoints, cache } = deps;
  const db = eventsDb(deps.storage);
  const subscriptions = createEventSubscriptions({ db, clock, keyring: deps.keyring });
  const outbox = createOutbox({ db, storage: deps.storage, clock, subscriptions, dataDir: deps.dataDir, onError: deps.onError });

  /** Enqueues an object event (with `executor`, e.g. the expiry job's transaction); returns how many deliveries. */
  function enqueueObjectEvent(executor: EventsDb, vaultId: string, objectType: ObjectType, kind: ObjectEventKind, v: VersionFacts) {
    const type = `Microsoft.KeyVault.${objectType}${kind}`;
    return outbox.enqueue(executor, vaultId, (topic) => {
      const vaultName = vaultNameOf(topic);
      const data: KeyVaultEventData = {
        Id: `${endpoints.vaultUrl(vaultName)}/${COLLECTION_PATH[objectType]}/${v.name}/${v.version}`,
        VaultName: vaultName, ObjectType: objectType, ObjectName: v.name, Version: v.version,
        NBF: v.meta.nbf ?? null, EXP: v.meta.exp ?? null,
      };
      return newEvent({ type, topic, subject: v.name, time: clock.now(), data });
    });
  }

  const hasSubscriptions = cache.memo((vaultId) => subscriptions.any(vaultId), CACHED_VAULTS);
  /** Whether the vault has subscriptions, as of the cache generation: free while it stands still. */
  async function anySubscriptions(vaultId: string) {
    await cache.refreshUnlessWithin(GENERATION_MAX_AGE_MS);
    return hasSubscriptions(vaultId);
  }

  /**
   * Outbox rows written by the caller's transaction (`enqueue` runs inside it), and their delivery started once that
   * transaction is durable.
   */
  function joinedToTransaction<Args extends unknown[]>(enqueue: (executor: EventsDb, ...args: Args) => Promise<number>) {
    let enqueued = 0;
    return {
      run: async (trx: Kysely<Database>, ...args: Args) => { enqueued = await enqueue(withEventTables(trx), ...args); },
      afterCommit: () => { if (enqueued) outbox.kick(); },
    };
  }

  const hooks: VaultEventHooks = {
    async objectVersionCreated(vault, objectType) {
      if (!(await anySubscriptions(vault.id))) return undefined;
      const joined = joinedToTransaction((executor, version: VersionFacts) =>
        enqueueObjectEvent(executor, vault.id, objectType, 'NewVersionCreated', version));
      return { afterInsert: joined.run, afterCommit: joined.afterCommit };
    },
    async accessPolicyChanged(vault) {
      if (!(await anySubscriptions(vault.id))) return undefined;
      const joined = joinedToTransaction((executor) => outbox.enqueue(executor, vault.id, (topic) => {
        const vaultName = vaultNameOf(topic);
        const data: KeyVaultEventData = { Id: endpoints.vaultUrl(vaultName), VaultName: vaultName, ObjectType: 'Vault', ObjectName: vaultName, Version: null, NBF: null, EXP: null };
        return newEvent({ type: 'Microsoft.KeyVault.VaultAccessPolicyChanged', topic, subject: vaultName, time: clock.now(), data });
      }));
      return { inTransaction: joined.run, afterCommit: joined.afterCommit };
    },
  };

  const eventGrid = {
    subscriptions,
    outbox,
    hooks,
    enqueueObjectEvent,
    /** The expiry scan, then the outbox delivery (so expiry events leave in the same tick). */
    schedule(scheduler: { add(job: Job): void }) {
      scheduler.add(createExpiryEventsJob({ storage: deps.storage, clock, events: eventGrid }));
      scheduler.add({ name: 'deliver-events', run: () => outbox.deliverDue() });
    },
    /** Stops kicking deliveries and waits for the one in flight (before the storage closes). */
    close: () => outbox.close(),
    routes(app: FastifyInstance, routeDeps: { vaults: VaultsService; authorizer: Authorizer; subscriptionId: string; tenantId: string }) {
      const arm = createArm({ subscriptionId: routeDeps.subscriptionId, tenantId: routeDeps.tenantId, authorizer: routeDeps.authorizer });
      eventSubscriptionRoutes(app, { arm, vaults: routeDeps.vaults, subscriptions });
    },
  };
  return eventGrid;
}

export type EventGrid = ReturnType<typeof createEventGrid>;
