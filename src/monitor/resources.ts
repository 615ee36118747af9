import crypto from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import type { Database } from '../storage/schema.js';
import type { Clock } from '../clock.js';
import { armError, type Arm } from '../control-plane/arm.js';
import './tables.js';

/**
 * The ARM resources diagnostic settings send audit records to, each mapped onto something Coffer can really deliver to:
 * - `Microsoft.OperationalInsights/workspaces`: a Log Analytics-like workspace whose records Coffer stores itself and
 *   answers queries on (`properties.customerId` is the workspace id queries name);
 * - `Microsoft.Storage/storageAccounts`: a directory under the data dir where records are appended as JSON lines,
 *   laid out as Azure lays out its `insights-logs-auditevent` blobs;
 * - `Microsoft.EventHub/namespaces`: an HTTPS endpoint given as `properties.serviceBusEndpoint` (read-only in Azure,
 *   where it is the namespace's own address); records are POSTed to `{serviceBusEndpoint}/{eventHubName}/messages`
 *   as `{"records":[…]}`, the path and body of Event Hubs' REST send. Every namespace has the authorization rule
 *   `RootManageSharedAccessKey`, which is what diagnostic settings name; Coffer sends no SAS token.
 */
export const MONITOR_RESOURCE_TYPES = {
  workspace: { provider: 'Microsoft.OperationalInsights', type: 'workspaces' },
  storageAccount: { provider: 'Microsoft.Storage', type: 'storageAccounts' },
  eventHubNamespace: { provider: 'Microsoft.EventHub', type: 'namespaces' },
} as const;
export type MonitorResourceKind = keyof typeof MONITOR_RESOURCE_TYPES;

export interface MonitorResource {
  id: string;
  kind: MonitorResourceKind;
  name: string;
  resourceGroup: string;
  location: string;
  tags: Record<string, string>;
  properties: Record<string, unknown>;
  createdAt: number;
}

export const fullType = (kind: MonitorResourceKind) => `${MONITOR_RESOURCE_TYPES[kind].provider}/${MONITOR_RESOURCE_TYPES[kind].type}`;

/** Storage account and namespace names as Azure allows them (workspaces: 4–63 of letters, digits and hyphens). */
const NAME_RULES: Record<MonitorResourceKind, { pattern: RegExp; rule: string }> = {
  workspace: { pattern: /^[A-Za-z0-9][A-Za-z0-9-]{2,61}[A-Za-z0-9]$/, rule: '4 to 63 letters, digits and hyphens, starting and ending with a letter or digit' },
  storageAccount: { pattern: /^[a-z0-9]{3,24}$/, rule: '3 to 24 lower-case letters and digits' },
  eventHubNamespace: { pattern: /^[A-Za-z][A-Za-z0-9-]{4,48}[A-Za-z0-9]$/, rule: '6 to 50 letters, digits and hyphens, starting with a letter and ending with a letter or digit' },
};

export const EVENT_HUB_RULE = 'RootManageSharedAccessKey';

export function createMonitorResources(deps: { db: Kysely<Database>; clock: Clock; subscriptionId: string }) {
  const { db, subscriptionId } = deps;
  const idOf = (kind: MonitorResourceKind, resourceGroup: string, name: string) =>
    `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/providers/${fullType(kind)}/${name}`;
  const toResource = (row: Database['monitor_resources']): MonitorResource => {
    const kind = (Object.keys(MONITOR_RESOURCE_TYPES) as MonitorResourceKind[]).find((k) => fullType(k) === row.type)!;
    return {
      id: idOf(kind, row.resource_group, row.name), kind, name: row.name, resourceGroup: row.resource_group, location: row.location,
      tags: JSON.parse(row.tags), properties: JSON.parse(row.properties), createdAt: row.created_at,
    };
  };
  const get = async (kind: MonitorResourceKind, resourceGroup: string, name: string) => {
    const row = await db.selectFrom('monitor_resources').selectAll().where('id_key', '=', idOf(kind, resourceGroup, name).toLowerCase()).executeTakeFirst();
    return row && toResource(row);
  };
  return {
    idOf,
    get,
    /** The resource a full ARM id names, if it exists and is of `kind`. */
    async byId(kind: MonitorResourceKind, id: string) {
      const row = await db.selectFrom('monitor_resources').selectAll().where('id_key', '=', id.toLowerCase()).executeTakeFirst();
      const resource = row && toResource(row);
      return resource?.kind === kind ? resource : undefined;
    },
    async byCustomerId(customerId: string) {
      const rows = await db.selectFrom('monitor_resources').selectAll().where('type', '=', fullType('workspace')).execute();
      return rows.map(toResource).find((r) => String(r.properties.customerId).toLowerCase() === customerId.toLowerCase());
    },
    async list(kind: MonitorResourceKind, resourceGroup?: string) {
      let q = db.selectFrom('monitor_resources').selectAll().where('type', '=', fullType(kind));
      if (resourceGroup !== undefined) q = q.where('resource_group', '=', resourceGroup);
      return (await q.orderBy('id_key').execute()).map(toResource).filter((r) => resourceGroup === undefined || r.resourceGroup.toLowerCase() === resourceGroup.toLowerCase());
    },
    /** Creates or updates; server-assigned properties (a workspace's customerId) are kept across updates. */
    async put(kind: MonitorResourceKind, input: { resourceGroup: string; name: string; location: string; tags?: Record<string, string>; properties: Record<string, unknown> }) {
      const { pattern, rule } = NAME_RULES[kind];
      if (!pattern.test(input.name)) throw armError(400, 'InvalidResourceName', `The resource name '${input.name}' is invalid: use ${rule}.`);
      const existing = await get(kind, input.resourceGroup, input.name);
      const properties = { ...input.properties, ...assigned(kind, existing) };
      const row = {
        id_key: idOf(kind, input.resourceGroup, input.name).toLowerCase(), type: fullType(kind), resource_group: existing?.resourceGroup ?? input.resourceGroup,
        name: existing?.name ?? input.name, location: input.location, tags: JSON.stringify(input.tags ?? existing?.tags ?? {}),
        properties: JSON.stringify(properties), created_at: existing?.createdAt ?? deps.clock.now(),
      };
      await db.insertInto('monitor_resources').values(row)
        .onConflict((oc) => oc.column('id_key').doUpdateSet({ location: row.location, tags: row.tags, properties: row.properties })).execute();
      return { resource: (await get(kind, input.resourceGroup, input.name))!, created: !existing };
    },
    async remove(kind: MonitorResourceKind, resourceGroup: string, name: string) {
      const result = await db.deleteFrom('monitor_resources').where('id_key', '=', idOf(kind, resourceGroup, name).toLowerCase()).executeTakeFirst();
      if (kind === 'workspace' && result.numDeletedRows > 0n) {
        await db.deleteFrom('workspace_records').where('workspace_key', '=', idOf(kind, resourceGroup, name).toLowerCase()).execute();
      }
      return result.numDeletedRows > 0n;
    },
  };
}
export type MonitorResources = ReturnType<typeof createMonitorResources>;

function assigned(kind: MonitorResourceKind, existing: MonitorResource | undefined): Record<string, unknown> {
  if (kind !== 'workspace') return { provisioningState: 'Succeeded' };
  return {
    customerId: existing?.properties.customerId ?? crypto.randomUUID(),
    provisioningState: 'Succeeded',
    sku: { name: 'PerGB2018' },
    retentionInDays: 30,
    createdDate: new Date(existing?.createdAt ?? Date.now()).toISOString(),
  };
}

export const toArmResource = (r: MonitorResource) => ({
  id: r.id, name: r.name, type: fullType(r.kind), location: r.location, tags: r.tags,
  ...(r.kind === 'storageAccount' ? { kind: 'StorageV2', sku: { name: 'Standard_LRS', tier: 'Standard' } } : {}),
  ...(r.kind === 'eventHubNamespace' ? { sku: { name: 'Standard', tier: 'Standard', capacity: 1 } } : {}),
  properties: r.properties,
});

const tags = { type: 'object', additionalProperties: { type: 'string' } } as const;
const bodies: Record<MonitorResourceKind, object> = {
  workspace: { type: 'object', required: ['location'], properties: { location: { type: 'string', minLength: 1 }, tags, properties: { type: 'object' } } },
  storageAccount: { type: 'object', required: ['location'], properties: { location: { type: 'string', minLength: 1 }, tags, kind: { type: 'string' }, sku: { type: 'object' }, properties: { type: 'object' } } },
  eventHubNamespace: {
    type: 'object', required: ['location', 'properties'],
    properties: {
      location: { type: 'string', minLength: 1 }, tags, sku: { type: 'object' },
      properties: { type: 'object', required: ['serviceBusEndpoint'], properties: { serviceBusEndpoint: { type: 'string', pattern: '^https://', maxLength: 2048 } } },
    },
  },
};

type ResourceParams = { subscriptionId: string; resourceGroup: string; name: string };
type ResourceBody = { location: string; tags?: Record<string, string>; properties?: Record<string, unknown> };

/** PUT/GET/DELETE and lists (per resource group and per subscription) for the three destination resource types. */
export function monitorResourceRoutes(app: FastifyInstance, deps: { arm: Arm; resources: MonitorResources; resourceGroupExists(name: string): Promise<string | undefined> }) {
  const { arm, resources } = deps;
  for (const kind of Object.keys(MONITOR_RESOURCE_TYPES) as MonitorResourceKind[]) {
    const type = fullType(kind);
    const op = `${MONITOR_RESOURCE_TYPES[kind].type.replace(/s$/, '').replace(/^./, (c) => c.toUpperCase())}`;
    const notFound = (p: ResourceParams) => armError(404, 'ResourceNotFound', `The Resource '${type}/${p.name}' under resource group '${p.resourceGroup}' was not found.`);
    const group = async (p: { subscriptionId: string; resourceGroup: string }) => {
      arm.checkSubscription(p.subscriptionId);
      const name = await deps.resourceGroupExists(p.resourceGroup);
      if (!name) throw armError(404, 'ResourceGroupNotFound', `Resource group '${p.resourceGroup}' could not be found.`);
      return name;
    };
    for (const segment of ['resourceGroups', 'resourcegroups']) {
      const collection = `/subscriptions/:subscriptionId/${segment}/:resourceGroup/providers/${type}`;
      app.put<{ Params: ResourceParams; Body: ResourceBody }>(`${collection}/:name`, { ...arm.config(`${op}Put`), schema: { body: bodies[kind] } }, async (req, reply) => {
        const resourceGroup = await group(req.params);
        await arm.requireAction(req, resources.idOf(kind, resourceGroup, req.params.name), `${type}/write`);
        const endpoint = kind === 'eventHubNamespace' ? (req.body.properties as { serviceBusEndpoint: string }).serviceBusEndpoint.replace(/\/+$/, '') : undefined;
        // The schema only checks the scheme. An endpoint that is no URL would fail every delivery; one with a query,
        // fragment or user info carries what looks like a key, which Coffer would store and show in plain text (it sends
        // no SAS token). Both are refused, without echoing the value.
        const url = endpoint !== undefined && URL.canParse(endpoint) ? new URL(endpoint) : undefined;
        if (endpoint !== undefined && (!url || url.search || url.hash || url.username || url.password)) {
          throw armError(400, 'InvalidRequestBody', 'The serviceBusEndpoint must be an https URL without a query, fragment or credentials (Coffer sends no SAS token).');
        }
        const properties = endpoint === undefined ? {} : { serviceBusEndpoint: endpoint };
        const { resource, created } = await resources.put(kind, { resourceGroup, name: req.params.name, location: req.body.location, tags: req.body.tags, properties });
        reply.code(created ? 201 : 200);
        return toArmResource(resource);
      });
      app.get<{ Params: ResourceParams }>(`${collection}/:name`, arm.config(`${op}Get`), async (req) => {
        const resourceGroup = await group(req.params);
        const resource = await resources.get(kind, resourceGroup, req.params.name);
        if (!resource) throw notFound(req.params);
        await arm.requireAction(req, resource.id, `${type}/read`);
        return toArmResource(resource);
      });
      app.delete<{ Params: ResourceParams }>(`${collection}/:name`, arm.config(`${op}Delete`), async (req, reply) => {
        const resourceGroup = await group(req.params);
        const resource = await resources.get(kind, resourceGroup, req.params.name);
        if (!resource) return reply.code(204).send();
        await arm.requireAction(req, resource.id, `${type}/delete`);
        await resources.remove(kind, resourceGroup, resource.name);
        return reply.code(200).send();
      });
      app.get<{ Params: { subscriptionId: string; resourceGroup: string } }>(collection, arm.config(`${op}List`), async (req) => {
        const resourceGroup = await group(req.params);
        const value = [];
        for (const r of await resources.list(kind, resourceGroup)) if (await arm.holds(req, r.id, `${type}/read`)) value.push(toArmResource(r));
        return { value };
      });
      if (kind === 'eventHubNamespace') {
        // Every namespace has Azure's default rule; it is what `--event-hub-rule` names.
        const ruleOf = (r: MonitorResource) => ({
          id: `${r.id}/authorizationRules/${EVENT_HUB_RULE}`, name: EVENT_HUB_RULE, type: 'Microsoft.EventHub/Namespaces/AuthorizationRules',
          location: r.location, properties: { rights: ['Listen', 'Manage', 'Send'] },
        });
        app.get<{ Params: ResourceParams }>(`${collection}/:name/authorizationRules`, arm.config('EventHubAuthorizationRuleList'), async (req) => {
          const resource = await resources.get(kind, await group(req.params), req.params.name);
          if (!resource) throw notFound(req.params);
          await arm.requireAction(req, resource.id, `${type}/read`);
          return { value: [ruleOf(resource)] };
        });
      }
    }
    app.get<{ Params: { subscriptionId: string } }>(`/subscriptions/:subscriptionId/providers/${type}`, arm.config(`${op}List`), async (req) => {
      arm.checkSubscription(req.params.subscriptionId);
      const value = [];
      for (const r of await resources.list(kind)) if (await arm.holds(req, r.id, `${type}/read`)) value.push(toArmResource(r));
      return { value };
    });
  }
}
