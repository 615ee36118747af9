import type { FastifyInstance } from 'fastify';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../storage/schema.js';
import type { Clock } from '../clock.js';
import { armError, type Arm } from '../control-plane/arm.js';
import type { VaultsService } from '../control-plane/vaults.js';
import { EVENT_HUB_RULE, type MonitorResource, type MonitorResources } from './resources.js';
import './tables.js';

/** A vault's log categories and the groups they belong to, as Key Vault publishes them; AllMetrics is its one metric category. */
export const LOG_CATEGORIES = [
  { name: 'AuditEvent', groups: ['audit', 'allLogs'] },
  { name: 'AzurePolicyEvaluationDetails', groups: ['allLogs'] },
];
const METRIC_CATEGORIES = ['AllMetrics'];
/** Azure allows five diagnostic settings per resource. */
const MAX_SETTINGS = 5;
export const DEFAULT_EVENT_HUB = 'insights-logs-auditevent';

export interface LogSetting { category?: string | null; categoryGroup?: string | null; enabled: boolean; retentionPolicy?: { enabled: boolean; days: number } }
export interface MetricSetting { category?: string | null; timeGrain?: string | null; enabled: boolean; retentionPolicy?: { enabled: boolean; days: number } }
export interface DiagnosticSettingProperties {
  storageAccountId?: string | null;
  eventHubAuthorizationRuleId?: string | null;
  eventHubName?: string | null;
  workspaceId?: string | null;
  logAnalyticsDestinationType?: string | null;
  logs?: LogSetting[];
  metrics?: MetricSetting[];
}

/** One destination of one setting: the unit a cursor tracks. */
export interface Route {
  /** `{setting id}|{kind}`, lower-cased: the cursor's key. */
  key: string;
  settingName: string;
  resourceKey: string;
  startSeq: number;
  kind: 'workspace' | 'storageAccount' | 'eventHub';
  /** The destination resource (workspace or storage account), or the namespace for an event hub. */
  target: MonitorResource;
  eventHubName?: string;
}

const retention = { type: 'object', properties: { enabled: { type: 'boolean' }, days: { type: 'integer', minimum: 0 } } } as const;
const nullableString = { type: ['string', 'null'], maxLength: 2048 } as const;
const settingBody = {
  type: 'object',
  required: ['properties'],
  properties: {
    properties: {
      type: 'object',
      properties: {
        storageAccountId: nullableString, eventHubAuthorizationRuleId: nullableString, eventHubName: nullableString, workspaceId: nullableString,
        serviceBusRuleId: nullableString, marketplacePartnerId: nullableString, logAnalyticsDestinationType: nullableString,
        logs: { type: 'array', maxItems: 16, items: { type: 'object', required: ['enabled'], properties: { category: nullableString, categoryGroup: nullableString, enabled: { type: 'boolean' }, retentionPolicy: retention } } },
        metrics: { type: 'array', maxItems: 4, items: { type: 'object', required: ['enabled'], properties: { category: nullableString, timeGrain: nullableString, enabled: { type: 'boolean' }, retentionPolicy: retention } } },
      },
    },
  },
} as const;

const badRequest = (message: string) => armError(400, 'BadRequest', message);
const LOG_ANALYTICS_DESTINATION_TYPES = ['Dedicated', 'AzureDiagnostics'];
const RULE_ID = /^(\/subscriptions\/[^/]+\/resourceGroups\/[^/]+\/providers\/Microsoft\.EventHub\/namespaces\/[^/]+)\/authorizationRules\/([^/]+)$/i;

/** Whether a setting sends the AuditEvent category anywhere (by name or by one of its groups). */
export const routesAuditEvents = (logs: LogSetting[] | undefined) =>
  (logs ?? []).some((l) => l.enabled && (l.category === 'AuditEvent' || l.categoryGroup === 'audit' || l.categoryGroup === 'allLogs'));

export function createDiagnosticSettings(deps: { db: Kysely<Database>; clock: Clock; resources: MonitorResources }) {
  const { db, resources } = deps;
  const settingId = (resourceId: string, name: string) => `${resourceId}/providers/Microsoft.Insights/diagnosticSettings/${name}`;
  const toArm = (resourceId: string, row: Database['diagnostic_settings']) => ({
    id: settingId(resourceId, row.name), type: 'Microsoft.Insights/diagnosticSettings', name: row.name, location: null, kind: null,
    properties: JSON.parse(row.properties) as DiagnosticSettingProperties,
  });

  /** Refuses settings Azure refuses: no destination, unknown categories, destinations that do not exist. */
  async function validate(p: DiagnosticSettingProperties & Record<string, unknown>): Promise<DiagnosticSettingProperties> {
    if (p.serviceBusRuleId || p.marketplacePartnerId) throw badRequest('Coffer supports workspace, storage account and event hub destinations only.');
    if (!p.workspaceId && !p.storageAccountId && !p.eventHubAuthorizationRuleId) {
      throw badRequest('At least one destination must be specified: a storage account, an event hub or a Log Analytics workspace.');
    }
    const logs = (p.logs ?? []).map((l) => {
      if (Boolean(l.category) === Boolean(l.categoryGroup)) throw badRequest('Each log setting names exactly one of category or categoryGroup.');
      if (l.category && !LOG_CATEGORIES.some((c) => c.name === l.category)) throw badRequest(`Category '${l.category}' is not supported.`);
      if (l.categoryGroup && !['audit', 'allLogs'].includes(l.categoryGroup)) throw badRequest(`Category group '${l.categoryGroup}' is not supported.`);
      return { category: l.category ?? null, categoryGroup: l.categoryGroup ?? null, enabled: l.enabled, retentionPolicy: l.retentionPolicy ?? { enabled: false, days: 0 } };
    });
    const metrics = (p.metrics ?? []).map((m) => {
      if (!m.category || !METRIC_CATEGORIES.includes(m.category)) throw badRequest(`Metric category '${m.category ?? ''}' is not supported.`);
      return { category: m.category, timeGrain: m.timeGrain ?? null, enabled: m.enabled, retentionPolicy: m.retentionPolicy ?? { enabled: false, days: 0 } };
    });
    if (!logs.some((l) => l.enabled) && !metrics.some((m) => m.enabled)) throw badRequest('At least one log or metric category must be enabled.');
    if (p.workspaceId && !(await resources.byId('workspace', p.workspaceId))) throw badRequest(`Resource '${p.workspaceId}' was not found.`);
    if (p.storageAccountId && !(await resources.byId('storageAccount', p.storageAccountId))) throw badRequest(`Resource '${p.storageAccountId}' was not found.`);
    if (p.eventHubAuthorizationRuleId) {
      const m = RULE_ID.exec(p.eventHubAuthorizationRuleId);
      if (!m || m[2].toLowerCase() !== EVENT_HUB_RULE.toLowerCase() || !(await resources.byId('eventHubNamespace', m[1]))) {
        throw badRequest(`Resource '${p.eventHubAuthorizationRuleId}' was not found.`);
      }
    }
    if (p.eventHubName && !/^[A-Za-z0-9][\w.-]{0,255}$/.test(p.eventHubName)) throw badRequest(`Event hub name '${p.eventHubName}' is invalid.`);
    // Azure Monitor knows two: the legacy AzureDiagnostics table (the default, null) and Dedicated (resource-specific) tables.
    const destinationType = p.logAnalyticsDestinationType == null ? null
      : LOG_ANALYTICS_DESTINATION_TYPES.find((t) => t.toLowerCase() === p.logAnalyticsDestinationType!.toLowerCase());
    if (destinationType === undefined) {
      throw badRequest(`The logAnalyticsDestinationType is invalid: use ${LOG_ANALYTICS_DESTINATION_TYPES.join(' or ')} (or null for the default, AzureDiagnostics).`);
    }
    return {
      storageAccountId: p.storageAccountId ?? null, eventHubAuthorizationRuleId: p.eventHubAuthorizationRuleId ?? null, eventHubName: p.eventHubName ?? null,
      workspaceId: p.workspaceId ?? null, logAnalyticsDestinationType: destinationType, logs, metrics,
    };
  }

  return {
    settingId,
    async list(resourceId: string) {
      const rows = await db.selectFrom('diagnostic_settings').selectAll().where('resource_key', '=', resourceId.toLowerCase()).orderBy('id_key').execute();
      return rows.map((r) => toArm(resourceId, r));
    },
    async get(resourceId: string, name: string) {
      const row = await db.selectFrom('diagnostic_settings').selectAll().where('id_key', '=', settingId(resourceId, name).toLowerCase()).executeTakeFirst();
      return row && toArm(resourceId, row);
    },
    /** Creates or replaces; records written from now on are routed (a new setting does not replay the past). */
    async put(resourceId: string, name: string, input: DiagnosticSettingProperties & Record<string, unknown>) {
      const properties = await validate(input);
      const idKey = settingId(resourceId, name).toLowerCase();
      const existing = await db.selectFrom('diagnostic_settings').select(['id_key', 'name', 'start_seq']).where('id_key', '=', idKey).executeTakeFirst();
      if (!existing) {
        const count = await db.selectFrom('diagnostic_settings').select((eb) => eb.fn.countAll<number>().as('n')).where('resource_key', '=', resourceId.toLowerCase()).executeTakeFirstOrThrow();
        if (Number(count.n) >= MAX_SETTINGS) throw badRequest(`Resource '${resourceId}' already has ${MAX_SETTINGS} diagnostic settings, the most allowed.`);
      }
      const last = await db.selectFrom('audit_events').select(sql<number | null>`max(seq)`.as('seq')).executeTakeFirstOrThrow();
      const row = {
        id_key: idKey, resource_key: resourceId.toLowerCase(), name: existing?.name ?? name, properties: JSON.stringify(properties),
        start_seq: existing?.start_seq ?? Number(last.seq ?? 0), created_at: deps.clock.now(),
      };
      await db.insertInto('diagnostic_settings').values(row).onConflict((oc) => oc.column('id_key').doUpdateSet({ properties: row.properties })).execute();
      return toArm(resourceId, row);
    },
    async remove(resourceId: string, name: string) {
      const idKey = settingId(resourceId, name).toLowerCase();
      const result = await db.deleteFrom('diagnostic_settings').where('id_key', '=', idKey).executeTakeFirst();
      await db.deleteFrom('audit_cursors').where('route', 'like', `${idKey}|%`).execute();
      return result.numDeletedRows > 0n;
    },
    /** Every destination of every setting that routes audit events: what the router delivers along. */
    async routes(): Promise<Route[]> {
      const out: Route[] = [];
      for (const row of await db.selectFrom('diagnostic_settings').selectAll().execute()) {
        const p = JSON.parse(row.properties) as DiagnosticSettingProperties;
        if (!routesAuditEvents(p.logs)) continue;
        const base = { settingName: row.name, resourceKey: row.resource_key, startSeq: row.start_seq };
        const workspace = p.workspaceId ? await resources.byId('workspace', p.workspaceId) : undefined;
        if (workspace) out.push({ ...base, key: `${row.id_key}|workspace`, kind: 'workspace', target: workspace });
        const account = p.storageAccountId ? await resources.byId('storageAccount', p.storageAccountId) : undefined;
        if (account) out.push({ ...base, key: `${row.id_key}|storageaccount`, kind: 'storageAccount', target: account });
        const ns = p.eventHubAuthorizationRuleId ? RULE_ID.exec(p.eventHubAuthorizationRuleId)?.[1] : undefined;
        const namespace = ns ? await resources.byId('eventHubNamespace', ns) : undefined;
        if (namespace) out.push({ ...base, key: `${row.id_key}|eventhub`, kind: 'eventHub', target: namespace, eventHubName: p.eventHubName ?? DEFAULT_EVENT_HUB });
      }
      return out;
    },
  };
}
export type DiagnosticSettings = ReturnType<typeof createDiagnosticSettings>;

type VaultParams = { subscriptionId: string; resourceGroup: string; vaultName: string };

/** `{vault}/providers/Microsoft.Insights/diagnosticSettings[/{name}]` and `…/diagnosticSettingsCategories[/{name}]`. */
export function diagnosticSettingsRoutes(app: FastifyInstance, deps: { arm: Arm; settings: DiagnosticSettings; vaults: VaultsService }) {
  const { arm, settings } = deps;
  const vault = async (p: VaultParams) => {
    arm.checkSubscription(p.subscriptionId);
    const v = await deps.vaults.getByName(p.vaultName);
    if (!v || v.resourceGroup.toLowerCase() !== p.resourceGroup.toLowerCase()) {
      throw armError(404, 'ResourceNotFound', `The Resource 'Microsoft.KeyVault/vaults/${p.vaultName}' under resource group '${p.resourceGroup}' was not found.`);
    }
    return v;
  };
  const notFound = (name: string) => armError(404, 'ResourceNotFound', `The diagnostic setting '${name}' doesn't exist.`);
  const category = (resourceId: string, name: string, categoryType: 'Logs' | 'Metrics', categoryGroups: string[]) => ({
    id: `${resourceId}/providers/Microsoft.Insights/diagnosticSettingsCategories/${name}`, type: 'Microsoft.Insights/diagnosticSettingsCategories', name,
    properties: { categoryType, categoryGroups },
  });
  const categories = (resourceId: string) => [
    ...LOG_CATEGORIES.map((c) => category(resourceId, c.name, 'Logs', c.groups)),
    ...METRIC_CATEGORIES.map((c) => category(resourceId, c, 'Metrics', [])),
  ];

  for (const segment of ['resourceGroups', 'resourcegroups']) {
    const base = `/subscriptions/:subscriptionId/${segment}/:resourceGroup/providers/Microsoft.KeyVault/vaults/:vaultName/providers`;
    for (const provider of ['Microsoft.Insights', 'microsoft.insights']) {
      const url = `${base}/${provider}/diagnosticSettings`;
      type Named = { Params: VaultParams & { name: string } };
      app.put<Named & { Body: { properties: DiagnosticSettingProperties & Record<string, unknown> } }>(`${url}/:name`,
        { ...arm.config('DiagnosticSettingPut'), schema: { body: settingBody } }, async (req) => {
          const v = await vault(req.params);
          await arm.requireAction(req, v.resourceId, 'Microsoft.Insights/diagnosticSettings/write');
          if (!/^[^*#&+:<>?@%{}\\/]{1,260}$/.test(req.params.name)) throw badRequest(`The diagnostic setting name '${req.params.name}' is invalid.`);
          return settings.put(v.resourceId, req.params.name, req.body.properties);
        });
      app.get<Named>(`${url}/:name`, arm.config('DiagnosticSettingGet'), async (req) => {
        const v = await vault(req.params);
        await arm.requireAction(req, v.resourceId, 'Microsoft.Insights/diagnosticSettings/read');
        return (await settings.get(v.resourceId, req.params.name)) ?? Promise.reject(notFound(req.params.name));
      });
      app.delete<Named>(`${url}/:name`, arm.config('DiagnosticSettingDelete'), async (req, reply) => {
        const v = await vault(req.params);
        await arm.requireAction(req, v.resourceId, 'Microsoft.Insights/diagnosticSettings/delete');
        return reply.code((await settings.remove(v.resourceId, req.params.name)) ? 200 : 204).send();
      });
      app.get<{ Params: VaultParams }>(url, arm.config('DiagnosticSettingList'), async (req) => {
        const v = await vault(req.params);
        await arm.requireAction(req, v.resourceId, 'Microsoft.Insights/diagnosticSettings/read');
        return { value: await settings.list(v.resourceId) };
      });
      app.get<{ Params: VaultParams }>(`${base}/${provider}/diagnosticSettingsCategories`, arm.config('DiagnosticSettingCategoryList'), async (req) => {
        const v = await vault(req.params);
        await arm.requireAction(req, v.resourceId, 'Microsoft.Insights/diagnosticSettingsCategories/read');
        return { value: categories(v.resourceId) };
      });
      app.get<{ Params: VaultParams & { name: string } }>(`${base}/${provider}/diagnosticSettingsCategories/:name`, arm.config('DiagnosticSettingCategoryGet'), async (req) => {
        const v = await vault(req.params);
        await arm.requireAction(req, v.resourceId, 'Microsoft.Insights/diagnosticSettingsCategories/read');
        const found = categories(v.resourceId).find((c) => c.name.toLowerCase() === req.params.name.toLowerCase());
        if (!found) throw armError(404, 'ResourceNotFound', `The diagnostic settings category '${req.params.name}' doesn't exist.`);
        return found;
      });
    }
  }
}
