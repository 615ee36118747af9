import type { FastifyInstance } from 'fastify';
import type { Clock } from '../clock.js';
import type { Keyring } from '../crypto/envelope.js';
import { createArm } from '../control-plane/arm.js';
import type { VaultsService } from '../control-plane/vaults.js';
import type { Authorizer } from '../gates/authorization/evaluate.js';
import type { Job } from '../scheduler/scheduler.js';
import type { Endpoints } from '../endpoints.js';
import type { Storage } from '../storage/engine.js';
import { groupCommit } from '../storage/group-commit.js';
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

/**
 * The hooks the services call after a change: one call each, awaited, so the event is in the outbox (durable)
 * before the response that reports the change is sent.
 */
export interface VaultEventHooks {
  objectVersionCreated(vault: { id: string }, objectType: ObjectType, version: VersionFacts): Promise<void>;
  accessPolicyChanged(vault: { id: string }): Promise<void>;
}

const vaultNameOf = (vaultResourceId: string) => vaultResourceId.slice(vaultResourceId.lastIndexOf('/') + 1);
const COLLECTION_PATH: Record<ObjectType, string> = { Secret: 'secrets', Key: 'keys', Certificate: 'certificates' };

/** Event Grid for Coffer: subscriptions, the outbox and its delivery, and the publishing hooks. */
export function createEventGrid(deps: { storage: Storage; clock: Clock; keyring: Keyring; endpoints: Endpoints; dataDir: string; onError?: (err: unknown) => void }) {
  const { clock, endpoints } = deps;
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

  const commits = groupCommit(deps.storage);
  /**
   * A vault without subscriptions costs one indexed read; otherwise the outbox rows are written through the storage's
   * group commit (sharing the fsync of concurrent writes) and delivery is kicked off at once.
   */
  async function publish(vaultId: string, enqueue: (executor: EventsDb) => Promise<number>) {
    if (!(await subscriptions.any(vaultId))) return;
    if (await commits.run((trx) => enqueue(withEventTables(trx)))) outbox.kick();
  }

  const hooks: VaultEventHooks = {
    objectVersionCreated: (vault, objectType, version) =>
      publish(vault.id, (executor) => enqueueObjectEvent(executor, vault.id, objectType, 'NewVersionCreated', version)),
    accessPolicyChanged: (vault) => publish(vault.id, (executor) => outbox.enqueue(executor, vault.id, (topic) => {
      const vaultName = vaultNameOf(topic);
      const data: KeyVaultEventData = { Id: endpoints.vaultUrl(vaultName), VaultName: vaultName, ObjectType: 'Vault', ObjectName: vaultName, Version: null, NBF: null, EXP: null };
      return newEvent({ type: 'Microsoft.KeyVault.VaultAccessPolicyChanged', topic, subject: vaultName, time: clock.now(), data });
    })),
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
