import type { Command } from 'commander';
import { action, boolOption, group, parseTags, type ActionEnv } from './command.js';
import { CliError, usageError } from './errors.js';
import { subscriptionPath, withResourceGroup } from './keyvault.js';

/*
 * az monitor (diagnostic settings, Log Analytics workspaces and queries, metrics) and the two destination resources
 * az creates elsewhere (`az storage account`, `az eventhubs namespace`), against Coffer's management API.
 */
const API = {
  workspaces: '2022-10-01',
  diagnosticSettings: '2021-05-01-preview',
  metrics: '2018-01-01',
  storageAccounts: '2023-01-01',
  eventHubs: '2021-11-01',
};

interface ArmResource { id: string; name: string; type: string; location?: string; tags?: Record<string, string>; properties: Record<string, unknown> }

const required = (value: string | undefined, flags: string) => {
  if (!value) throw new CliError(`the following arguments are required: ${flags}`, 2);
  return value;
};

/** A resource by full id, or by name in `--resource-group` (az's id-or-name arguments). */
function resourceId(env: ActionEnv, value: string, resourceGroup: string | undefined, type: string, flag: string) {
  if (value.startsWith('/subscriptions/')) return value;
  if (!resourceGroup) throw usageError(`${flag} is a name: give --resource-group too, or the full resource id`);
  return `${subscriptionPath(env)}/resourceGroups/${encodeURIComponent(resourceGroup)}/providers/${type}/${encodeURIComponent(value)}`;
}

/** The vault a `--resource` names: a full id, or a vault name with --resource-group. */
const vaultResource = (env: ActionEnv, opts: { resource: string; resourceGroup?: string }) =>
  resourceId(env, opts.resource, opts.resourceGroup, 'Microsoft.KeyVault/vaults', '--resource').replace(/\/+$/, '');

/** A resource group's location, which az gives new resources without --location. */
async function groupLocation(env: ActionEnv, resourceGroup: string) {
  const group = await env.context().management<{ location: string }>('GET', `${subscriptionPath(env)}/resourcegroups/${encodeURIComponent(resourceGroup)}?api-version=2022-09-01`);
  return group.location;
}

function parseJsonList(value: string | undefined, flag: string): unknown[] | undefined {
  if (value === undefined) return undefined;
  try {
    const parsed = JSON.parse(value) as unknown;
    if (Array.isArray(parsed)) return parsed;
  } catch {
    // reported below
  }
  throw usageError(`${flag} expects a JSON array, e.g. '[{"categoryGroup":"allLogs","enabled":true}]'`);
}

/** create|show|list|delete for one ARM resource type under a resource group. */
function resourceCommands(parent: Command, opts: {
  type: string; apiVersion: string; noun: string;
  createOptions?: (cmd: Command) => Command;
  body?: (opts: Record<string, unknown>) => Record<string, unknown>;
}) {
  const collection = (env: ActionEnv, rg?: string) =>
    `${subscriptionPath(env)}${rg ? `/resourceGroups/${encodeURIComponent(rg)}` : ''}/providers/${opts.type}`;
  const one = (env: ActionEnv, rg: string, name: string) => `${collection(env, rg)}/${encodeURIComponent(name)}?api-version=${opts.apiVersion}`;
  type Named = { name: string; resourceGroup: string; location?: string; tags?: string[] } & Record<string, unknown>;
  const create = parent.command('create').description(`Create (or update) a ${opts.noun}`)
    .requiredOption('-n, --name <name>', `name of the ${opts.noun}`)
    .requiredOption('-g, --resource-group <name>', 'resource group')
    .option('-l, --location <location>', 'location (default: the resource group\'s)')
    .option('--tags [tags...]', 'space-separated tags: key[=value] [key[=value] ...]');
  (opts.createOptions?.(create) ?? create).action(action(async (o: Named, env) => {
    const location = o.location ?? await groupLocation(env, o.resourceGroup);
    return withResourceGroup(await env.context().management<ArmResource>('PUT', one(env, o.resourceGroup, o.name), {
      body: { location, tags: parseTags(o.tags), ...opts.body?.(o) },
    }));
  }));
  parent.command('show').description(`Show a ${opts.noun}`)
    .requiredOption('-n, --name <name>', `name of the ${opts.noun}`)
    .requiredOption('-g, --resource-group <name>', 'resource group')
    .action(action(async (o: Named, env) => withResourceGroup(await env.context().management<ArmResource>('GET', one(env, o.resourceGroup, o.name)))));
  parent.command('list').description(`List ${opts.noun}s (in a resource group, or the whole subscription)`)
    .option('-g, --resource-group <name>', 'resource group')
    .action(action(async (o: { resourceGroup?: string }, env) => {
      const { value } = await env.context().management<{ value: ArmResource[] }>('GET', `${collection(env, o.resourceGroup)}?api-version=${opts.apiVersion}`);
      return value.map(withResourceGroup);
    }));
  parent.command('delete').description(`Delete a ${opts.noun}`)
    .requiredOption('-n, --name <name>', `name of the ${opts.noun}`)
    .requiredOption('-g, --resource-group <name>', 'resource group')
    .option('-y, --yes', 'do not prompt for confirmation')
    .option('-f, --force', 'delete at once (Coffer keeps no deleted workspaces)')
    .action(action(async (o: Named, env) => {
      await env.context().management('DELETE', one(env, o.resourceGroup, o.name));
      return undefined;
    }));
}

/** Query rows as az prints them: one object per row, with its table's name. */
function rowsOf(result: { tables: { name: string; columns: { name: string }[]; rows: unknown[][] }[] }) {
  return result.tables.flatMap((t) => t.rows.map((row) => ({ ...Object.fromEntries(t.columns.map((c, i) => [c.name, row[i]])), TableName: t.name })));
}

/** A command on one vault: az's `--resource` (an id, or a name with `-g`). */
const onVault = (cmd: Command) => cmd
  .requiredOption('--resource <id>', 'the vault: its resource id, or its name with --resource-group')
  .option('-g, --resource-group <name>', 'resource group of a --resource given by name');

export function registerMonitorCommands(program: Command) {
  const monitor = group(program, 'monitor', 'Monitor vaults: diagnostic settings, Log Analytics workspaces and queries, metrics');

  const logAnalytics = group(monitor, 'log-analytics', 'Log Analytics-like workspaces stored by Coffer, and queries over them');
  resourceCommands(group(logAnalytics, 'workspace', 'Manage workspaces'), {
    type: 'Microsoft.OperationalInsights/workspaces', apiVersion: API.workspaces, noun: 'workspace',
    createOptions: (cmd) => cmd.option('--retention-time <days>', 'accepted for az compatibility; Coffer keeps records until the workspace is deleted')
      .option('--sku <sku>', 'accepted for az compatibility (PerGB2018)'),
  });
  logAnalytics.command('query')
    .description('Query a workspace in Coffer\'s KQL subset (see docs/MONITORING.md), e.g. "AzureDiagnostics | where OperationName == \'SecretGet\'"')
    .requiredOption('-w, --workspace <id>', 'the workspace id (its customerId GUID) or its ARM id')
    .requiredOption('--analytics-query <query>', 'the query')
    .option('-t, --timespan <timespan>', 'ISO 8601 timespan: PT1H, P1D, start/end or start/duration')
    .action(action(async (o: { workspace: string; analyticsQuery: string; timespan?: string }, env) => {
      const result = await env.context().management<Parameters<typeof rowsOf>[0]>('POST', `/v1/workspaces/${encodeURIComponent(o.workspace)}/query`, {
        body: { query: o.analyticsQuery, ...(o.timespan ? { timespan: o.timespan } : {}) },
      });
      return rowsOf(result);
    }));

  const diagnostic = group(monitor, 'diagnostic-settings', 'Route a vault\'s audit logs to a workspace, a storage account or an event hub');
  const settingsPath = (env: ActionEnv, o: { resource: string; resourceGroup?: string }, name?: string) =>
    `${vaultResource(env, o)}/providers/Microsoft.Insights/diagnosticSettings${name === undefined ? '' : `/${encodeURIComponent(name)}`}?api-version=${API.diagnosticSettings}`;
  type SettingOpts = {
    name: string; resource: string; resourceGroup?: string; workspace?: string; storageAccount?: string; eventHub?: string; eventHubRule?: string;
    logs?: string; metrics?: string; exportToResourceSpecific?: boolean;
  };
  diagnostic.command('create')
    .description('Create (or replace) a diagnostic setting on a vault')
    .requiredOption('-n, --name <name>', 'name of the setting')
    .requiredOption('--resource <id>', 'the vault: its resource id, or its name with --resource-group')
    .option('-g, --resource-group <name>', 'resource group of a --resource, --workspace or --storage-account given by name')
    .option('--workspace <id>', 'Log Analytics workspace: resource id or name')
    .option('--storage-account <id>', 'storage account: resource id or name')
    .option('--event-hub <name>', 'event hub name (default: insights-logs-auditevent)')
    .option('--event-hub-rule <id>', 'event hub namespace authorization rule id (…/authorizationRules/RootManageSharedAccessKey)')
    .option('--logs <json>', 'JSON array, e.g. \'[{"categoryGroup":"allLogs","enabled":true}]\'')
    .option('--metrics <json>', 'JSON array, e.g. \'[{"category":"AllMetrics","enabled":true}]\'')
    .addOption(boolOption('--export-to-resource-specific [bool]', 'send logs to the workspace\'s resource-specific (Dedicated) tables instead of AzureDiagnostics'))
    .action(action(async (o: SettingOpts, env) => {
      if (!o.workspace && !o.storageAccount && !o.eventHubRule) throw usageError('give at least one of --workspace, --storage-account, --event-hub-rule');
      if (o.exportToResourceSpecific && !o.workspace) throw usageError('--export-to-resource-specific needs --workspace');
      if (o.eventHub && !o.eventHubRule) throw usageError('--event-hub needs --event-hub-rule');
      const properties = {
        ...(o.workspace ? { workspaceId: resourceId(env, o.workspace, o.resourceGroup, 'Microsoft.OperationalInsights/workspaces', '--workspace') } : {}),
        // As az: Dedicated when asked for, else the default (null, the AzureDiagnostics table).
        ...(o.exportToResourceSpecific ? { logAnalyticsDestinationType: 'Dedicated' } : {}),
        ...(o.storageAccount ? { storageAccountId: resourceId(env, o.storageAccount, o.resourceGroup, 'Microsoft.Storage/storageAccounts', '--storage-account') } : {}),
        ...(o.eventHubRule ? { eventHubAuthorizationRuleId: o.eventHubRule, ...(o.eventHub ? { eventHubName: o.eventHub } : {}) } : {}),
        logs: parseJsonList(o.logs, '--logs') ?? [],
        metrics: parseJsonList(o.metrics, '--metrics') ?? [],
      };
      return env.context().management('PUT', settingsPath(env, o, o.name), { body: { properties } });
    }));
  onVault(diagnostic.command('show').description('Show a diagnostic setting'))
    .requiredOption('-n, --name <name>', 'name of the setting')
    .action(action(async (o: SettingOpts, env) => env.context().management('GET', settingsPath(env, o, o.name))));
  onVault(diagnostic.command('list').description('List a vault\'s diagnostic settings'))
    .action(action(async (o: SettingOpts, env) => (await env.context().management<{ value: unknown[] }>('GET', settingsPath(env, o))).value));
  onVault(diagnostic.command('delete').description('Delete a diagnostic setting'))
    .requiredOption('-n, --name <name>', 'name of the setting')
    .action(action(async (o: SettingOpts, env) => {
      await env.context().management('DELETE', settingsPath(env, o, o.name));
      return undefined;
    }));
  const categories = group(diagnostic, 'categories', 'The log and metric categories a vault offers');
  const categoriesPath = (env: ActionEnv, o: { resource: string; resourceGroup?: string }, name?: string) =>
    `${vaultResource(env, o)}/providers/Microsoft.Insights/diagnosticSettingsCategories${name === undefined ? '' : `/${encodeURIComponent(name)}`}?api-version=${API.diagnosticSettings}`;
  onVault(categories.command('list').description('List the diagnostic categories of a vault'))
    .action(action(async (o: SettingOpts, env) => (await env.context().management<{ value: unknown[] }>('GET', categoriesPath(env, o))).value));
  onVault(categories.command('show').description('Show one diagnostic category of a vault'))
    .requiredOption('-n, --name <name>', 'the category')
    .action(action(async (o: SettingOpts, env) => env.context().management('GET', categoriesPath(env, o, o.name))));

  const metrics = group(monitor, 'metrics', 'Vault metrics (this node\'s counters since it started)');
  onVault(metrics.command('list').description('List the metric values of a vault'))
    .option('--metrics <names...>', 'metric names: ServiceApiHit, ServiceApiLatency, ServiceApiResult, Availability, SaturationShoebox')
    .option('--metric <names...>', 'same as --metrics')
    .option('--interval <interval>', 'ISO 8601 interval of the data points (reported; Coffer has one point since the node started)', 'PT1M')
    .option('--aggregation <types...>', 'Total, Count, Average, Minimum, Maximum')
    .option('--filter <filter>', "dimension filter, e.g. \"ActivityName eq '*'\" to split by operation")
    .option('--dimension <names...>', 'dimensions to split by (adds "Name eq \'*\'" to the filter)')
    .action(action(async (o: { resource: string; resourceGroup?: string; metrics?: string[]; metric?: string[]; interval: string; aggregation?: string[]; filter?: string; dimension?: string[] }, env) => {
      const names = [...(o.metrics ?? []), ...(o.metric ?? [])];
      const filter = [o.filter, ...(o.dimension ?? []).map((d) => `${d} eq '*'`)].filter(Boolean).join(' and ');
      const query = new URLSearchParams({
        'api-version': API.metrics, interval: o.interval,
        ...(names.length ? { metricnames: names.join(',') } : {}),
        ...(o.aggregation ? { aggregation: o.aggregation.join(',') } : {}),
        ...(filter ? { $filter: filter } : {}),
      });
      return env.context().management('GET', `${vaultResource(env, o)}/providers/Microsoft.Insights/metrics?${query}`);
    }));

  // The destinations, as az creates them (storage accounts and event-hub namespaces; see docs/MONITORING.md).
  resourceCommands(group(group(program, 'storage', 'Storage accounts (audit log files under the server\'s data dir)'), 'account', 'Manage storage accounts'), {
    type: 'Microsoft.Storage/storageAccounts', apiVersion: API.storageAccounts, noun: 'storage account',
    createOptions: (cmd) => cmd.option('--sku <sku>', 'accepted for az compatibility (Standard_LRS)').option('--kind <kind>', 'accepted for az compatibility (StorageV2)'),
    body: () => ({ kind: 'StorageV2', sku: { name: 'Standard_LRS' } }),
  });
  resourceCommands(group(group(program, 'eventhubs', 'Event Hubs namespaces (an HTTPS endpoint audit records are posted to)'), 'namespace', 'Manage event hub namespaces'), {
    type: 'Microsoft.EventHub/namespaces', apiVersion: API.eventHubs, noun: 'event hub namespace',
    createOptions: (cmd) => cmd.option('--endpoint <url>', 'Coffer: the HTTPS URL records are posted to, as {url}/{event hub}/messages (required)'),
    body: (o) => ({ properties: { serviceBusEndpoint: required(o.endpoint as string | undefined, '--endpoint') } }),
  });
}
