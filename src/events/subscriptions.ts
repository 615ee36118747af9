import crypto from 'node:crypto';
import type { Clock } from '../clock.js';
import type { Keyring } from '../crypto/envelope.js';
import { KeyVaultError } from '../http/errors.js';
import { DELIVERY_SCHEMAS, EVENT_TYPES, type DeliverySchema } from './events.js';
import type { EventsDb } from './tables.js';
import { EndpointError, checkEndpointUrl, endpointBaseUrl, validateEndpoint } from './webhook.js';

/** Microsoft.EventGrid event subscriptions on a vault, stored once their webhook passed the validation handshake. */
export const EVENTGRID_API_VERSION = '2022-06-15';
const NAME = /^[A-Za-z0-9-]{3,64}$/;
/** Azure's defaults and bounds for retryPolicy. */
export const RETRY_DEFAULTS = { maxDeliveryAttempts: 30, eventTimeToLiveInMinutes: 1440 };

export interface DeadLetterTarget {
  /** The storage account's ARM id; Coffer maps it (and the container) to a directory under the data dir. */
  resourceId: string;
  blobContainerName: string;
}

export interface SubscriptionSettings {
  topic: string;
  endpointUrl: string;
  includedEventTypes: string[] | null;
  subjectBeginsWith: string;
  subjectEndsWith: string;
  isSubjectCaseSensitive: boolean;
  eventDeliverySchema: DeliverySchema;
  maxDeliveryAttempts: number;
  eventTimeToLiveInMinutes: number;
  deadLetter: DeadLetterTarget | null;
  labels: string[] | null;
}

export interface EventSubscription {
  id: string;
  vaultId: string;
  name: string;
  settings: SubscriptionSettings;
  created: number;
  updated: number;
}

/** The ARM request body (2022-06-15), as far as Coffer interprets it. */
export interface EventSubscriptionBody {
  properties?: {
    destination?: { endpointType?: string; properties?: { endpointUrl?: string } };
    filter?: { includedEventTypes?: string[] | null; subjectBeginsWith?: string; subjectEndsWith?: string; isSubjectCaseSensitive?: boolean };
    eventDeliverySchema?: string;
    retryPolicy?: { maxDeliveryAttempts?: number; eventTimeToLiveInMinutes?: number };
    deadLetterDestination?: { endpointType?: string; properties?: { resourceId?: string; blobContainerName?: string } } | null;
    labels?: string[] | null;
  };
}

const invalid = (message: string) => new KeyVaultError(400, 'InvalidRequest', message);
const STORAGE_ACCOUNT = /^\/subscriptions\/[^/]+\/resourceGroups\/[^/]+\/providers\/Microsoft\.Storage\/storageAccounts\/([a-z0-9]{3,24})$/i;
const CONTAINER = /^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$/;

/** The storage account name of a dead-letter target (validated on PUT, so it is safe as a directory name). */
export const storageAccountOf = (target: DeadLetterTarget) => STORAGE_ACCOUNT.exec(target.resourceId)![1].toLowerCase();

/** Whether a subscription's filter admits an event. */
export function admits(settings: SubscriptionSettings, type: string, subject: string) {
  if (settings.includedEventTypes && !settings.includedEventTypes.some((t) => t.toLowerCase() === type.toLowerCase())) return false;
  const fold = (s: string) => (settings.isSubjectCaseSensitive ? s : s.toLowerCase());
  return fold(subject).startsWith(fold(settings.subjectBeginsWith)) && fold(subject).endsWith(fold(settings.subjectEndsWith));
}

/** The ARM resource, with the endpoint URL reduced to its base (Azure never returns a webhook's full URL). */
export const toArmEventSubscription = (s: EventSubscription) => ({
  id: `${s.settings.topic}/providers/Microsoft.EventGrid/eventSubscriptions/${s.name}`,
  name: s.name,
  type: 'Microsoft.EventGrid/eventSubscriptions',
  properties: {
    topic: s.settings.topic,
    provisioningState: 'Succeeded',
    destination: { endpointType: 'WebHook', properties: { endpointBaseUrl: endpointBaseUrl(s.settings.endpointUrl), maxEventsPerBatch: 1, preferredBatchSizeInKilobytes: 64 } },
    filter: {
      includedEventTypes: s.settings.includedEventTypes,
      subjectBeginsWith: s.settings.subjectBeginsWith,
      subjectEndsWith: s.settings.subjectEndsWith,
      isSubjectCaseSensitive: s.settings.isSubjectCaseSensitive,
      enableAdvancedFilteringOnArrays: false,
    },
    labels: s.settings.labels,
    eventDeliverySchema: s.settings.eventDeliverySchema,
    retryPolicy: { maxDeliveryAttempts: s.settings.maxDeliveryAttempts, eventTimeToLiveInMinutes: s.settings.eventTimeToLiveInMinutes },
    ...(s.settings.deadLetter ? { deadLetterDestination: { endpointType: 'StorageBlob', properties: s.settings.deadLetter } } : {}),
  },
  systemData: null,
});

function settingsFrom(body: EventSubscriptionBody, topic: string, prior?: SubscriptionSettings): SubscriptionSettings {
  const p = body.properties ?? {};
  const destination = p.destination;
  if (destination?.endpointType !== undefined && destination.endpointType.toLowerCase() !== 'webhook') {
    throw invalid(`The destination endpointType '${destination.endpointType}' is not supported by Coffer; use WebHook.`);
  }
  const endpointUrl = destination?.properties?.endpointUrl ?? prior?.endpointUrl;
  if (!endpointUrl) throw invalid('The destination endpointUrl is required.');
  const schema = p.eventDeliverySchema ?? prior?.eventDeliverySchema ?? 'EventGridSchema';
  const eventDeliverySchema = DELIVERY_SCHEMAS.find((s) => s.toLowerCase() === schema.toLowerCase());
  if (!eventDeliverySchema) throw invalid(`The eventDeliverySchema '${schema}' is not supported; use ${DELIVERY_SCHEMAS.join(' or ')}.`);
  // A filter Coffer would not apply is refused rather than ignored: the subscriber would get events it meant to exclude.
  const advanced = (p.filter as { advancedFilters?: unknown } | undefined)?.advancedFilters;
  if (Array.isArray(advanced) ? advanced.length > 0 : advanced != null) {
    throw invalid('Advanced filters are not supported by Coffer; filter on includedEventTypes, subjectBeginsWith and subjectEndsWith.');
  }
  // Likewise an expiry Coffer would not enforce: the subscription would go on delivering after the time asked for.
  if ((p as { expirationTimeUtc?: unknown }).expirationTimeUtc != null) throw invalid('expirationTimeUtc is not supported by Coffer; delete the subscription when it is no longer wanted.');
  const included = p.filter?.includedEventTypes ?? null;
  for (const t of included ?? []) {
    if (!EVENT_TYPES.some((known) => known.toLowerCase() === t.toLowerCase())) {
      throw invalid(`The event type '${t}' is not supported for topic type Microsoft.KeyVault.vaults. Supported event types: ${EVENT_TYPES.join(', ')}.`);
    }
  }
  const retry = { ...RETRY_DEFAULTS, ...p.retryPolicy };
  if (!Number.isInteger(retry.maxDeliveryAttempts) || retry.maxDeliveryAttempts < 1 || retry.maxDeliveryAttempts > 30) {
    throw invalid('The retryPolicy maxDeliveryAttempts must be between 1 and 30.');
  }
  if (!Number.isInteger(retry.eventTimeToLiveInMinutes) || retry.eventTimeToLiveInMinutes < 1 || retry.eventTimeToLiveInMinutes > 1440) {
    throw invalid('The retryPolicy eventTimeToLiveInMinutes must be between 1 and 1440.');
  }
  let deadLetter: DeadLetterTarget | null = null;
  const dl = p.deadLetterDestination;
  if (dl) {
    if (dl.endpointType !== undefined && dl.endpointType !== 'StorageBlob') throw invalid(`The deadLetterDestination endpointType '${dl.endpointType}' is not supported; use StorageBlob.`);
    const resourceId = dl.properties?.resourceId ?? '';
    const blobContainerName = dl.properties?.blobContainerName ?? '';
    if (!STORAGE_ACCOUNT.test(resourceId)) throw invalid(`The deadLetterDestination resourceId '${resourceId}' is not a storage account resource id.`);
    if (!CONTAINER.test(blobContainerName)) throw invalid(`The deadLetterDestination blobContainerName '${blobContainerName}' is not a valid container name.`);
    deadLetter = { resourceId, blobContainerName };
  }
  try {
    checkEndpointUrl(endpointUrl);
  } catch (err) {
    if (err instanceof EndpointError) throw invalid(err.message);
    throw err;
  }
  return {
    topic, endpointUrl, includedEventTypes: included && included.length ? included : null,
    subjectBeginsWith: p.filter?.subjectBeginsWith ?? '', subjectEndsWith: p.filter?.subjectEndsWith ?? '',
    isSubjectCaseSensitive: p.filter?.isSubjectCaseSensitive ?? false, eventDeliverySchema,
    maxDeliveryAttempts: retry.maxDeliveryAttempts, eventTimeToLiveInMinutes: retry.eventTimeToLiveInMinutes,
    deadLetter, labels: p.labels ?? null,
  };
}

/** The keyring purpose under which webhook endpoint URLs are sealed at rest. */
const ENDPOINT_PURPOSE = 'event-subscription-endpoint';

export function createEventSubscriptions(deps: { db: EventsDb; clock: Clock; keyring: Keyring }) {
  const { db, clock, keyring } = deps;
  type Row = { id: string; vault_id: string; name: string; document: string; created_at: number; updated_at: number };
  type StoredDocument = Omit<SubscriptionSettings, 'endpointUrl'> & { endpointUrl?: string; sealedEndpointUrl?: string };
  // The endpoint URL's query often holds the webhook's key (hence getFullUrl), so it is sealed like any secret value,
  // bound to its subscription's id. Rows written before sealing hold it in plain text and are read as they are.
  const toDocument = (id: string, { endpointUrl, ...rest }: SubscriptionSettings) => JSON.stringify({
    ...rest, sealedEndpointUrl: keyring.sealSystem(ENDPOINT_PURPOSE, id, Buffer.from(endpointUrl, 'utf8')).toString('base64'),
  } satisfies StoredDocument);
  const toSubscription = (r: Row): EventSubscription => {
    const { sealedEndpointUrl, ...stored } = JSON.parse(r.document) as StoredDocument;
    const endpointUrl = sealedEndpointUrl === undefined ? stored.endpointUrl!
      : keyring.openSystem(ENDPOINT_PURPOSE, r.id, Buffer.from(sealedEndpointUrl, 'base64')).toString('utf8');
    return { id: r.id, vaultId: r.vault_id, name: r.name, settings: { ...stored, endpointUrl }, created: Number(r.created_at), updated: Number(r.updated_at) };
  };
  const columns = ['id', 'vault_id', 'name', 'document', 'created_at', 'updated_at'] as const;

  const get = async (vaultId: string, name: string) => {
    const row = await db.selectFrom('event_subscriptions').select(columns)
      .where('vault_id', '=', vaultId).where('name_key', '=', name.toLowerCase()).executeTakeFirst();
    return row && toSubscription(row);
  };

  return {
    get,

    async byId(id: string) {
      const row = await db.selectFrom('event_subscriptions').select(columns).where('id', '=', id).executeTakeFirst();
      return row && toSubscription(row);
    },

    async list(vaultId: string) {
      const rows = await db.selectFrom('event_subscriptions').select(columns).where('vault_id', '=', vaultId).orderBy('name_key').execute();
      return rows.map(toSubscription);
    },

    /** Whether the vault has any subscription (the cheap check every change makes before publishing). */
    async any(vaultId: string) {
      return (await db.selectFrom('event_subscriptions').select('id').where('vault_id', '=', vaultId).limit(1).executeTakeFirst()) !== undefined;
    },

    /** The vault's subscriptions, read with `executor` (a transaction that is about to enqueue events for them). */
    async forVault(executor: EventsDb, vaultId: string) {
      const rows = await executor.selectFrom('event_subscriptions').select(columns).where('vault_id', '=', vaultId).execute();
      return rows.map(toSubscription);
    },

    /**
     * Creates or replaces a subscription. A new endpoint (or schema) must pass the validation handshake first; when it
     * fails nothing is stored, so a stored subscription is always provisioned (Succeeded).
     */
    async put(vault: { id: string; resourceId: string }, name: string, body: EventSubscriptionBody) {
      if (!NAME.test(name)) {
        throw invalid(`Event subscription name '${name}' is invalid: it must be 3 to 64 characters long and contain only letters, digits and hyphens.`);
      }
      const existing = await get(vault.id, name);
      const settings = settingsFrom(body, vault.resourceId, existing?.settings);
      const revalidate = !existing || existing.settings.endpointUrl !== settings.endpointUrl || existing.settings.eventDeliverySchema !== settings.eventDeliverySchema;
      if (revalidate) {
        try {
          await validateEndpoint(settings.endpointUrl, settings.eventDeliverySchema, name, vault.resourceId);
        } catch (err) {
          if (err instanceof EndpointError) throw new KeyVaultError(400, 'Url validation', err.message);
          throw err;
        }
      }
      const now = clock.now();
      if (existing) {
        await db.updateTable('event_subscriptions').set({ document: toDocument(existing.id, settings), updated_at: now }).where('id', '=', existing.id).execute();
        return { subscription: { ...existing, settings, updated: now }, created: false };
      }
      const id = crypto.randomUUID();
      const inserted = await db.insertInto('event_subscriptions').values({
        id, vault_id: vault.id, name, name_key: name.toLowerCase(), document: toDocument(id, settings), created_at: now, updated_at: now,
      }).onConflict((oc) => oc.doNothing()).executeTakeFirst();
      if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 0) {
        throw new KeyVaultError(409, 'Conflict', `Event subscription '${name}' was created by a concurrent request; retry to update it.`);
      }
      return { subscription: { id, vaultId: vault.id, name, settings, created: now, updated: now }, created: true };
    },

    /** Deletes the subscription and (by cascade) its undelivered events. */
    async delete(vaultId: string, name: string) {
      const result = await db.deleteFrom('event_subscriptions').where('vault_id', '=', vaultId).where('name_key', '=', name.toLowerCase()).executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    },
  };
}

export type EventSubscriptions = ReturnType<typeof createEventSubscriptions>;
