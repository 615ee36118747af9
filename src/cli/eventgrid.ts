import { Option, type Command } from 'commander';
import { action, group, parsePositiveInt } from './command.js';
import { CliError, usageError } from './errors.js';
import { withResourceGroup } from './keyvault.js';

/** The Microsoft.EventGrid api-version Coffer serves (az 2.45's azure-mgmt-eventgrid sends 2022-06-15). */
const EVENTGRID_API_VERSION = '2022-06-15';
const SCHEMAS: Record<string, string> = { eventgridschema: 'EventGridSchema', cloudeventschemav1_0: 'CloudEventSchemaV1_0' };
const CONTAINER_ID = /^(\/subscriptions\/[^/]+\/resourceGroups\/[^/]+\/providers\/Microsoft\.Storage\/storageAccounts\/[^/]+)\/blobServices\/default\/containers\/([^/]+)$/i;

interface ArmEventSubscription {
  id: string;
  name: string;
  type: string;
  properties: {
    topic: string;
    provisioningState: string;
    destination: { endpointType: string; properties: Record<string, unknown> };
    filter: Record<string, unknown>;
    labels: string[] | null;
    eventDeliverySchema: string;
    retryPolicy: { maxDeliveryAttempts: number; eventTimeToLiveInMinutes: number };
    deadLetterDestination?: { endpointType: string; properties: { resourceId: string; blobContainerName: string } };
    expirationTimeUtc?: string | null;
  };
  systemData?: unknown;
}

/** An event subscription as az 2.45 prints azure-mgmt-eventgrid's model: properties (and the destination's) flattened. */
export const eventSubscriptionOutput = (s: ArmEventSubscription) => {
  const p = s.properties;
  return withResourceGroup({
    deadLetterDestination: p.deadLetterDestination ? { endpointType: p.deadLetterDestination.endpointType, ...p.deadLetterDestination.properties } : null,
    deadLetterWithResourceIdentity: null,
    deliveryWithResourceIdentity: null,
    destination: {
      azureActiveDirectoryApplicationIdOrUri: null, azureActiveDirectoryTenantId: null, deliveryAttributeMappings: null,
      endpointBaseUrl: null, endpointType: p.destination.endpointType, endpointUrl: null, maxEventsPerBatch: null,
      minimumTlsVersionAllowed: null, preferredBatchSizeInKilobytes: null, ...p.destination.properties,
    },
    eventDeliverySchema: p.eventDeliverySchema,
    expirationTimeUtc: p.expirationTimeUtc ?? null,
    filter: { advancedFilters: null, enableAdvancedFilteringOnArrays: null, ...p.filter },
    id: s.id,
    labels: p.labels,
    name: s.name,
    provisioningState: p.provisioningState,
    retryPolicy: p.retryPolicy,
    systemData: s.systemData ?? null,
    topic: p.topic,
    type: s.type,
  });
};

const subscriptionsPath = (sourceResourceId: string) => `${sourceResourceId.replace(/\/$/, '')}/providers/Microsoft.EventGrid/eventSubscriptions`;
const withVersion = (path: string) => `${path}?api-version=${EVENTGRID_API_VERSION}`;

function checkSource(id: string) {
  if (!/^\/subscriptions\/[^/]+\/resourceGroups\/[^/]+\/providers\/Microsoft\.KeyVault\/vaults\/[^/]+\/?$/i.test(id)) {
    throw new CliError(`argument --source-resource-id: '${id}' is not a Key Vault resource id (/subscriptions/…/resourceGroups/…/providers/Microsoft.KeyVault/vaults/NAME).`, 2);
  }
  return id;
}

/** az's --deadletter-endpoint: a blob container's resource id, which Event Grid splits into account id and container. */
function deadLetterDestination(endpoint: string) {
  const m = CONTAINER_ID.exec(endpoint);
  if (!m) throw usageError('--deadletter-endpoint must be a storage blob container resource id (…/storageAccounts/NAME/blobServices/default/containers/NAME)');
  return { endpointType: 'StorageBlob', properties: { resourceId: m[1], blobContainerName: m[2] } };
}

interface CreateOptions {
  sourceResourceId: string; name: string; endpoint: string; endpointType: string; includedEventTypes?: string[];
  subjectBeginsWith?: string; subjectEndsWith?: string; subjectCaseSensitive?: boolean; eventDeliverySchema: string;
  maxDeliveryAttempts?: string; eventTtl?: string; deadletterEndpoint?: string; labels?: string[];
}

export function registerEventGridCommands(program: Command) {
  const eventgrid = group(program, 'eventgrid', 'Manage Event Grid event subscriptions on vaults');
  const subscriptions = group(eventgrid, 'event-subscription', 'Manage event subscriptions (webhooks receiving Key Vault events)');
  const source = () => new Option('--source-resource-id <id>', 'the vault\'s resource id').makeOptionMandatory();
  const name = () => new Option('-n, --name <name>', 'name of the event subscription').makeOptionMandatory();

  subscriptions.command('create')
    .description('Create an event subscription (Coffer performs the webhook validation handshake first)')
    .addOption(source())
    .addOption(name())
    .requiredOption('--endpoint <url>', 'the webhook URL (https://, or http:// on a loopback address)')
    .addOption(new Option('--endpoint-type <type>', 'type of destination endpoint').choices(['webhook']).default('webhook'))
    .option('--included-event-types <types...>', 'space-separated event types, e.g. Microsoft.KeyVault.SecretNearExpiry')
    .option('--subject-begins-with <prefix>', 'an optional subject prefix')
    .option('--subject-ends-with <suffix>', 'an optional subject suffix')
    .option('--subject-case-sensitive', 'compare subjects case-sensitively')
    .addOption(new Option('--event-delivery-schema <schema>', 'the schema events are delivered in')
      .argParser((v: string) => { if (!SCHEMAS[v.toLowerCase()]) throw new CliError(`argument --event-delivery-schema: invalid choice: '${v}' (choose from 'eventgridschema', 'cloudeventschemav1_0')`, 2); return v; })
      .default('eventgridschema'))
    .option('--max-delivery-attempts <n>', 'maximum delivery attempts, 1-30 (default 30)')
    .option('--event-ttl <minutes>', 'event time to live in minutes, 1-1440 (default 1440)')
    .option('--deadletter-endpoint <containerId>', 'blob container resource id for dead-lettered events (Coffer writes them under its data dir)')
    .option('--labels <labels...>', 'space-separated labels')
    .action(action(async (opts: CreateOptions, env) => {
      const retryPolicy = {
        ...(opts.maxDeliveryAttempts !== undefined ? { maxDeliveryAttempts: parsePositiveInt(opts.maxDeliveryAttempts, '--max-delivery-attempts') } : {}),
        ...(opts.eventTtl !== undefined ? { eventTimeToLiveInMinutes: parsePositiveInt(opts.eventTtl, '--event-ttl') } : {}),
      };
      const body = {
        properties: {
          destination: { endpointType: 'WebHook', properties: { endpointUrl: opts.endpoint } },
          filter: {
            includedEventTypes: opts.includedEventTypes ?? null,
            ...(opts.subjectBeginsWith !== undefined ? { subjectBeginsWith: opts.subjectBeginsWith } : {}),
            ...(opts.subjectEndsWith !== undefined ? { subjectEndsWith: opts.subjectEndsWith } : {}),
            isSubjectCaseSensitive: opts.subjectCaseSensitive === true,
          },
          eventDeliverySchema: SCHEMAS[opts.eventDeliverySchema.toLowerCase()],
          ...(Object.keys(retryPolicy).length ? { retryPolicy } : {}),
          ...(opts.deadletterEndpoint ? { deadLetterDestination: deadLetterDestination(opts.deadletterEndpoint) } : {}),
          ...(opts.labels ? { labels: opts.labels } : {}),
        },
      };
      const path = `${subscriptionsPath(checkSource(opts.sourceResourceId))}/${encodeURIComponent(opts.name)}`;
      return eventSubscriptionOutput(await env.context().management<ArmEventSubscription>('PUT', withVersion(path), { body }));
    }));

  subscriptions.command('update')
    .description('Update an event subscription (what is not given keeps its value; a new endpoint is validated first)')
    .addOption(source())
    .addOption(name())
    .option('--endpoint <url>', 'a new webhook URL')
    .option('--included-event-types <types...>', 'space-separated event types')
    .option('--subject-begins-with <prefix>', 'an optional subject prefix')
    .option('--subject-ends-with <suffix>', 'an optional subject suffix')
    .option('--deadletter-endpoint <containerId>', 'blob container resource id for dead-lettered events')
    .option('--labels <labels...>', 'space-separated labels')
    .action(action(async (opts: Omit<CreateOptions, 'endpoint' | 'endpointType' | 'eventDeliverySchema'> & { endpoint?: string }, env) => {
      const path = withVersion(`${subscriptionsPath(checkSource(opts.sourceResourceId))}/${encodeURIComponent(opts.name)}`);
      const management = env.context().management;
      const { properties: p } = await management<ArmEventSubscription>('GET', path);
      const body = {
        properties: {
          // Without a new endpoint, the service keeps the stored URL (GET never returns it).
          destination: { endpointType: 'WebHook', properties: opts.endpoint ? { endpointUrl: opts.endpoint } : {} },
          filter: {
            ...p.filter,
            ...(opts.includedEventTypes ? { includedEventTypes: opts.includedEventTypes } : {}),
            ...(opts.subjectBeginsWith !== undefined ? { subjectBeginsWith: opts.subjectBeginsWith } : {}),
            ...(opts.subjectEndsWith !== undefined ? { subjectEndsWith: opts.subjectEndsWith } : {}),
          },
          eventDeliverySchema: p.eventDeliverySchema,
          retryPolicy: p.retryPolicy,
          deadLetterDestination: opts.deadletterEndpoint ? deadLetterDestination(opts.deadletterEndpoint) : p.deadLetterDestination ?? null,
          labels: opts.labels ?? p.labels,
        },
      };
      return eventSubscriptionOutput(await management<ArmEventSubscription>('PUT', path, { body }));
    }));

  subscriptions.command('show')
    .description('Get the details of an event subscription')
    .addOption(source())
    .addOption(name())
    .option('--include-full-endpoint-url', 'include the full endpoint URL (with its query) in the output')
    .action(action(async (opts: { sourceResourceId: string; name: string; includeFullEndpointUrl?: boolean }, env) => {
      const path = `${subscriptionsPath(checkSource(opts.sourceResourceId))}/${encodeURIComponent(opts.name)}`;
      const shown = eventSubscriptionOutput(await env.context().management<ArmEventSubscription>('GET', withVersion(path)));
      if (!opts.includeFullEndpointUrl) return shown;
      const { endpointUrl } = await env.context().management<{ endpointUrl: string }>('POST', withVersion(`${path}/getFullUrl`));
      return { ...shown, destination: { ...shown.destination, endpointUrl } };
    }));

  subscriptions.command('list')
    .description('List the event subscriptions of a vault')
    .addOption(source())
    .action(action(async (opts: { sourceResourceId: string }, env) => {
      const { value } = await env.context().management<{ value: ArmEventSubscription[] }>('GET', withVersion(subscriptionsPath(checkSource(opts.sourceResourceId))));
      return value.map(eventSubscriptionOutput);
    }));

  subscriptions.command('delete')
    .description('Delete an event subscription (its undelivered events are dropped)')
    .addOption(source())
    .addOption(name())
    .action(action(async (opts: { sourceResourceId: string; name: string }, env) => {
      await env.context().management('DELETE', withVersion(`${subscriptionsPath(checkSource(opts.sourceResourceId))}/${encodeURIComponent(opts.name)}`));
      return undefined;
    }));

  return eventgrid;
}
