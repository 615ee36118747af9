import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import type { Database } from '../storage/schema.js';
import type { Clock } from '../clock.js';
import { armError, type Arm } from './arm.js';
import type { VaultsService } from './vaults.js';

export interface ResourceGroup {
  id: string;
  name: string;
  location: string;
  tags: Record<string, string>;
}

export interface ResourceGroupsService {
  /** Creates or updates; `created` tells which. */
  put(input: { name: string; location: string; tags?: Record<string, string> }): Promise<{ group: ResourceGroup; created: boolean }>;
  get(name: string): Promise<ResourceGroup | undefined>;
  list(): Promise<ResourceGroup[]>;
  remove(name: string): Promise<boolean>;
}

/** ARM's resource-group name rule: 1–90 of letters, digits, `_`, `-`, `.`, `(`, `)`, not ending in a period. */
const RESOURCE_GROUP_NAME = /^[-\w.()\p{L}\p{N}]{1,90}$/u;

export function createResourceGroupsService(deps: { db: Kysely<Database>; clock: Clock; subscriptionId: string; vaults: VaultsService }): ResourceGroupsService {
  const { db, subscriptionId } = deps;
  const toGroup = (row: Database['resource_groups']): ResourceGroup => ({
    id: `/subscriptions/${row.subscription_id}/resourceGroups/${row.name}`,
    name: row.name,
    location: row.location,
    tags: JSON.parse(row.tags),
  });
  const get = async (name: string) => {
    const row = await db.selectFrom('resource_groups').selectAll()
      .where('subscription_id', '=', subscriptionId).where('name_key', '=', name.toLowerCase()).executeTakeFirst();
    return row && toGroup(row);
  };
  return {
    get,
    async put({ name, location, tags }) {
      if (!RESOURCE_GROUP_NAME.test(name) || name.endsWith('.')) {
        throw armError(400, 'InvalidResourceGroup',
          `The provided resource group name '${name}' has these invalid characters. The name can only be a letter, digit, '-', '.', '(', ')' or '_', up to 90 characters, and cannot end with a period.`);
      }
      const existing = await get(name);
      if (existing) {
        // ARM keeps a group's location; a different one is a conflict.
        if (existing.location.toLowerCase() !== location.toLowerCase()) {
          throw armError(409, 'InvalidResourceGroupLocation',
            `Invalid resource group location '${location}'. The Resource group already exists in location '${existing.location}'.`);
        }
        await db.updateTable('resource_groups').set({ tags: JSON.stringify(tags ?? existing.tags) })
          .where('subscription_id', '=', subscriptionId).where('name_key', '=', name.toLowerCase()).execute();
        return { group: (await get(name))!, created: false };
      }
      await db.insertInto('resource_groups').values({
        subscription_id: subscriptionId, name_key: name.toLowerCase(), name, location, tags: JSON.stringify(tags ?? {}), created_at: deps.clock.now(),
      }).onConflict((oc) => oc.doNothing()).execute();
      return { group: (await get(name))!, created: true };
    },
    async list() {
      const rows = await db.selectFrom('resource_groups').selectAll().where('subscription_id', '=', subscriptionId).orderBy('name_key').execute();
      return rows.map(toGroup);
    },
    async remove(name) {
      const group = await get(name);
      if (!group) return false;
      // Deleting a group deletes its vaults — softly, as deleting each vault would.
      for (const vault of await deps.vaults.list({ subscriptionId, resourceGroup: group.name })) await deps.vaults.softDelete(vault.name);
      await db.deleteFrom('resource_groups').where('subscription_id', '=', subscriptionId).where('name_key', '=', name.toLowerCase()).execute();
      return true;
    },
  };
}

const toArm = (g: ResourceGroup) => ({
  id: g.id, name: g.name, type: 'Microsoft.Resources/resourceGroups', location: g.location, tags: g.tags,
  properties: { provisioningState: 'Succeeded' },
});

const groupBody = {
  type: 'object',
  required: ['location'],
  properties: {
    location: { type: 'string', minLength: 1 },
    tags: { type: 'object', additionalProperties: { type: 'string' } },
  },
} as const;

type GroupParams = { subscriptionId: string; resourceGroup: string };

/** Microsoft.Resources resource groups (both spellings of the segment: the SDKs send `resourcegroups`). */
export function resourceGroupRoutes(app: FastifyInstance, deps: { arm: Arm; resourceGroups: ResourceGroupsService }) {
  const { arm, resourceGroups } = deps;
  const notFound = (name: string) => armError(404, 'ResourceGroupNotFound', `Resource group '${name}' could not be found.`);
  for (const segment of ['resourceGroups', 'resourcegroups']) {
    const url = `/subscriptions/:subscriptionId/${segment}/:resourceGroup`;
    app.put<{ Params: GroupParams; Body: { location: string; tags?: Record<string, string> } }>(url,
      { ...arm.config('ResourceGroupPut'), schema: { body: groupBody } }, async (req, reply) => {
        arm.checkSubscription(req.params.subscriptionId);
        await arm.requireAction(req, `/subscriptions/${arm.subscriptionId}/resourceGroups/${req.params.resourceGroup}`, 'Microsoft.Resources/subscriptions/resourceGroups/write');
        const { group, created } = await resourceGroups.put({ name: req.params.resourceGroup, location: req.body.location, tags: req.body.tags });
        reply.code(created ? 201 : 200);
        return toArm(group);
      });
    app.get<{ Params: GroupParams }>(url, arm.config('ResourceGroupGet'), async (req) => {
      arm.checkSubscription(req.params.subscriptionId);
      const group = await resourceGroups.get(req.params.resourceGroup);
      if (!group) throw notFound(req.params.resourceGroup);
      await arm.requireAction(req, group.id, 'Microsoft.Resources/subscriptions/resourceGroups/read');
      return toArm(group);
    });
    app.delete<{ Params: GroupParams }>(url, arm.config('ResourceGroupDelete'), async (req, reply) => {
      arm.checkSubscription(req.params.subscriptionId);
      const group = await resourceGroups.get(req.params.resourceGroup);
      if (!group) throw notFound(req.params.resourceGroup);
      await arm.requireAction(req, group.id, 'Microsoft.Resources/subscriptions/resourceGroups/delete');
      await resourceGroups.remove(group.name);
      reply.code(200);
      return '';
    });
    app.get<{ Params: { subscriptionId: string } }>(`/subscriptions/:subscriptionId/${segment}`, arm.config('ResourceGroupList'), async (req) => {
      arm.checkSubscription(req.params.subscriptionId);
      const visible = [];
      for (const g of await resourceGroups.list()) {
        if (await arm.holds(req, g.id, 'Microsoft.Resources/subscriptions/resourceGroups/read')) visible.push(toArm(g));
      }
      return { value: visible };
    });
  }
}
