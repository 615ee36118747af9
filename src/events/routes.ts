import type { FastifyInstance } from 'fastify';
import { armError, type Arm } from '../control-plane/arm.js';
import type { VaultsService } from '../control-plane/vaults.js';
import { toArmEventSubscription, type EventSubscriptionBody, type EventSubscriptions } from './subscriptions.js';

type VaultParams = { subscriptionId: string; resourceGroup: string; vaultName: string };
type SubscriptionParams = VaultParams & { name: string };

const stringList = { type: ['array', 'null'], items: { type: 'string' }, maxItems: 25 } as const;
const putBody = {
  type: 'object',
  required: ['properties'],
  properties: {
    properties: {
      type: 'object',
      properties: {
        destination: {
          type: 'object',
          properties: { endpointType: { type: 'string' }, properties: { type: 'object', properties: { endpointUrl: { type: 'string', maxLength: 2048 } } } },
        },
        filter: {
          type: 'object',
          properties: {
            includedEventTypes: stringList,
            subjectBeginsWith: { type: 'string', maxLength: 1024 },
            subjectEndsWith: { type: 'string', maxLength: 1024 },
            isSubjectCaseSensitive: { type: 'boolean' },
          },
        },
        eventDeliverySchema: { type: 'string' },
        retryPolicy: { type: 'object', properties: { maxDeliveryAttempts: { type: 'integer' }, eventTimeToLiveInMinutes: { type: 'integer' } } },
        deadLetterDestination: {
          type: ['object', 'null'],
          properties: {
            endpointType: { type: 'string' },
            properties: { type: 'object', properties: { resourceId: { type: 'string', maxLength: 1024 }, blobContainerName: { type: 'string', maxLength: 63 } } },
          },
        },
        labels: stringList,
      },
    },
  },
} as const;

/**
 * Microsoft.EventGrid/eventSubscriptions (2022-06-15) as extension resources of a vault:
 * `{vaultId}/providers/Microsoft.EventGrid/eventSubscriptions/{name}`.
 */
export function eventSubscriptionRoutes(app: FastifyInstance, deps: { arm: Arm; vaults: VaultsService; subscriptions: EventSubscriptions }) {
  const { arm, vaults, subscriptions } = deps;
  const base = '/subscriptions/:subscriptionId/resourceGroups/:resourceGroup/providers/Microsoft.KeyVault/vaults/:vaultName/providers/Microsoft.EventGrid/eventSubscriptions';

  const liveVault = async (p: VaultParams) => {
    arm.checkSubscription(p.subscriptionId);
    const vault = await vaults.getByName(p.vaultName);
    if (!vault || vault.resourceGroup.toLowerCase() !== p.resourceGroup.toLowerCase()) {
      throw armError(404, 'ResourceNotFound', `The Resource 'Microsoft.KeyVault/vaults/${p.vaultName}' under resource group '${p.resourceGroup}' was not found.`);
    }
    return vault;
  };
  const notFound = (name: string) => armError(404, 'ResourceNotFound', `The Resource 'Microsoft.EventGrid/eventSubscriptions/${name}' was not found.`);

  app.put<{ Params: SubscriptionParams; Body: EventSubscriptionBody }>(`${base}/:name`,
    { ...arm.config('EventSubscriptionPut'), schema: { body: putBody } }, async (req, reply) => {
      const vault = await liveVault(req.params);
      await arm.requireAction(req, vault.resourceId, 'Microsoft.EventGrid/eventSubscriptions/write');
      const { subscription, created } = await subscriptions.put(vault, req.params.name, req.body);
      // The handshake is done before answering, so the resource is already provisioned: pollers end at once.
      reply.code(created ? 201 : 200);
      return toArmEventSubscription(subscription);
    });

  app.get<{ Params: SubscriptionParams }>(`${base}/:name`, arm.config('EventSubscriptionGet'), async (req) => {
    const vault = await liveVault(req.params);
    await arm.requireAction(req, vault.resourceId, 'Microsoft.EventGrid/eventSubscriptions/read');
    const subscription = await subscriptions.get(vault.id, req.params.name);
    if (!subscription) throw notFound(req.params.name);
    return toArmEventSubscription(subscription);
  });

  // The full endpoint URL (its query may carry a key) is only ever returned here, to a caller holding getFullUrl.
  app.post<{ Params: SubscriptionParams }>(`${base}/:name/getFullUrl`, arm.config('EventSubscriptionGetFullUrl'), async (req) => {
    const vault = await liveVault(req.params);
    await arm.requireAction(req, vault.resourceId, 'Microsoft.EventGrid/eventSubscriptions/getFullUrl/action');
    const subscription = await subscriptions.get(vault.id, req.params.name);
    if (!subscription) throw notFound(req.params.name);
    return { endpointUrl: subscription.settings.endpointUrl };
  });

  app.get<{ Params: VaultParams }>(base, arm.config('EventSubscriptionList'), async (req) => {
    const vault = await liveVault(req.params);
    await arm.requireAction(req, vault.resourceId, 'Microsoft.EventGrid/eventSubscriptions/read');
    return { value: (await subscriptions.list(vault.id)).map(toArmEventSubscription) };
  });

  app.delete<{ Params: SubscriptionParams }>(`${base}/:name`, arm.config('EventSubscriptionDelete'), async (req, reply) => {
    const vault = await liveVault(req.params);
    await arm.requireAction(req, vault.resourceId, 'Microsoft.EventGrid/eventSubscriptions/delete');
    // ARM answers 204 for deleting what is not there.
    return reply.code((await subscriptions.delete(vault.id, req.params.name)) ? 200 : 204).send();
  });
}
