import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { armError, type Arm } from '../control-plane/arm.js';
import type { VaultsService } from '../control-plane/vaults.js';
import { parseTimespan } from '../monitor/workspace-query.js';

/**
 * Azure Monitor's metrics API for a vault (`{vault}/providers/Microsoft.Insights/metrics`, api-version 2018-01-01),
 * answered from this node's Prometheus counters: one data point per time series, covering the time since the node
 * started (Coffer keeps no metric history; a scraper such as Prometheus does). Dimensions split with `$filter`
 * (`ActivityName eq '*'`, `StatusCode eq '403'`, joined by `and`), as Azure's do.
 */
const DEFINITIONS = {
  ServiceApiHit: { unit: 'Count', aggregation: 'Total', localized: 'Total Service Api Hits', dimensions: ['ActivityType', 'ActivityName'] },
  ServiceApiLatency: { unit: 'MilliSeconds', aggregation: 'Average', localized: 'Overall Service Api Latency', dimensions: ['ActivityType', 'ActivityName'] },
  ServiceApiResult: { unit: 'Count', aggregation: 'Total', localized: 'Total Service Api Results', dimensions: ['ActivityType', 'ActivityName', 'StatusCode', 'StatusCodeClass'] },
  Availability: { unit: 'Percent', aggregation: 'Average', localized: 'Overall Vault Availability', dimensions: [] },
  SaturationShoebox: { unit: 'Percent', aggregation: 'Average', localized: 'Overall Vault Saturation', dimensions: [] },
} as const;
type MetricName = keyof typeof DEFINITIONS;
const AGGREGATIONS = ['Total', 'Count', 'Average', 'Minimum', 'Maximum'] as const;
type Aggregation = (typeof AGGREGATIONS)[number];

/** Prometheus label names for Azure's dimension names. */
const LABEL: Record<string, string> = { ActivityType: 'activityType', ActivityName: 'activityName', StatusCode: 'statusCode', StatusCodeClass: 'statusCodeClass' };

function parseFilter(filter: string | undefined, metric: MetricName) {
  const conditions: { dimension: string; value: string }[] = [];
  for (const part of (filter ?? '').split(/\s+and\s+/i).map((p) => p.trim()).filter(Boolean)) {
    const m = /^(\w+)\s+eq\s+'([^']*)'$/i.exec(part);
    const dimension = m && DEFINITIONS[metric].dimensions.find((d) => d.toLowerCase() === m[1].toLowerCase());
    if (!m || !dimension) {
      throw armError(400, 'BadRequest', `Invalid $filter '${filter}': use "Dimension eq 'value'" (or '*') joined by 'and'; ${metric} has the dimensions ${DEFINITIONS[metric].dimensions.join(', ') || 'none'}.`);
    }
    conditions.push({ dimension, value: m[2] });
  }
  return conditions;
}

interface Series { labels: Record<string, string>; total: number; count: number; min: number; max: number }

/** The node's samples of `metric` for one vault, grouped by the split dimensions and narrowed by the filter. */
async function series(registry: Registry, metric: MetricName, vault: string, filter: { dimension: string; value: string }[]): Promise<Series[]> {
  const samples = (await registry.getSingleMetric(metric)?.get())?.values ?? [];
  const split = filter.filter((f) => f.value === '*').map((f) => f.dimension);
  const groups = new Map<string, Series>();
  const histogram = metric === 'ServiceApiLatency';
  for (const s of samples) {
    const labels = s.labels as Record<string, string | number>;
    if (String(labels.vault).toLowerCase() !== vault.toLowerCase()) continue;
    if (histogram && !('metricName' in s && /_(sum|count)$/.test(String(s.metricName)))) continue;
    if (filter.some((f) => f.value !== '*' && String(labels[LABEL[f.dimension]]).toLowerCase() !== f.value.toLowerCase())) continue;
    const key = split.map((d) => String(labels[LABEL[d]])).join('|');
    const g = groups.get(key) ?? { labels: Object.fromEntries(split.map((d) => [d, String(labels[LABEL[d]])])), total: 0, count: 0, min: Infinity, max: -Infinity };
    if (histogram) {
      if (String((s as { metricName?: string }).metricName).endsWith('_sum')) g.total += s.value;
      else g.count += s.value;
    } else {
      g.total += s.value;
      g.count += 1;
      g.min = Math.min(g.min, s.value);
      g.max = Math.max(g.max, s.value);
    }
    groups.set(key, g);
  }
  if (!groups.size && !split.length) groups.set('', { labels: {}, total: 0, count: 0, min: Infinity, max: -Infinity });
  return [...groups.values()];
}

function aggregate(metric: MetricName, s: Series, aggregation: Aggregation): number | undefined {
  const counter = DEFINITIONS[metric].unit === 'Count';
  const average = s.count ? s.total / s.count : undefined;
  switch (aggregation) {
    case 'Total': return counter || metric === 'ServiceApiLatency' ? s.total : average;
    case 'Count': return metric === 'ServiceApiLatency' ? s.count : counter ? s.total : s.count;
    case 'Average': return counter ? s.total : average;
    case 'Minimum': return Number.isFinite(s.min) ? s.min : average;
    case 'Maximum': return Number.isFinite(s.max) ? s.max : average;
  }
}

/** The intervals Azure Monitor's metrics API accepts. */
const INTERVALS = ['PT1M', 'PT5M', 'PT15M', 'PT30M', 'PT1H', 'PT6H', 'PT12H', 'P1D', 'FULL'];
// Each parameter once, as a string: a repeated one arrives as an array, which is refused (400) rather than split.
const queryString = { type: 'string', maxLength: 2048 } as const;
const metricsQuery = {
  type: 'object',
  properties: { metricnames: queryString, aggregation: queryString, interval: queryString, timespan: queryString, $filter: queryString, top: queryString, orderby: queryString },
} as const;

export function azureMetricsRoutes(app: FastifyInstance, deps: { arm: Arm; registry: Registry; vaults: VaultsService; startedAt: number; now: () => number }) {
  const { arm } = deps;
  type Query = { metricnames?: string; aggregation?: string; interval?: string; timespan?: string; $filter?: string };
  for (const segment of ['resourceGroups', 'resourcegroups']) {
    for (const provider of ['Microsoft.Insights', 'microsoft.insights']) {
      app.get<{ Params: { subscriptionId: string; resourceGroup: string; vaultName: string }; Querystring: Query }>(
        `/subscriptions/:subscriptionId/${segment}/:resourceGroup/providers/Microsoft.KeyVault/vaults/:vaultName/providers/${provider}/metrics`,
        { ...arm.config('MetricsList'), schema: { querystring: metricsQuery } }, async (req) => {
          arm.checkSubscription(req.params.subscriptionId);
          const vault = await deps.vaults.getByName(req.params.vaultName);
          if (!vault || vault.resourceGroup.toLowerCase() !== req.params.resourceGroup.toLowerCase()) {
            throw armError(404, 'ResourceNotFound', `The Resource 'Microsoft.KeyVault/vaults/${req.params.vaultName}' under resource group '${req.params.resourceGroup}' was not found.`);
          }
          await arm.requireAction(req, vault.resourceId, 'Microsoft.Insights/metrics/read');
          const names = (req.query.metricnames ?? 'ServiceApiHit').split(',').map((n) => n.trim());
          const requested = req.query.aggregation?.split(',').map((a) => AGGREGATIONS.find((x) => x.toLowerCase() === a.trim().toLowerCase()));
          if (requested?.some((a) => !a)) throw armError(400, 'BadRequest', `Invalid aggregation '${req.query.aggregation}': use ${AGGREGATIONS.join(', ')}.`);
          const interval = req.query.interval ?? 'PT1M';
          if (!INTERVALS.includes(interval.toUpperCase())) throw armError(400, 'BadRequest', `Invalid interval '${interval}': use ${INTERVALS.join(', ')}.`);
          if (req.query.timespan !== undefined) {
            try {
              parseTimespan(req.query.timespan, deps.now());
            } catch {
              throw armError(400, 'BadRequest', `Invalid timespan '${req.query.timespan}': use an ISO 8601 interval (start/end or start/duration) or duration.`);
            }
          }
          const now = new Date(deps.now()).toISOString();
          const start = new Date(deps.startedAt).toISOString();
          const value = [];
          for (const requestedName of names) {
            const metric = (Object.keys(DEFINITIONS) as MetricName[]).find((m) => m.toLowerCase() === requestedName.toLowerCase());
            if (!metric) throw armError(400, 'BadRequest', `Failed to find metric configuration for provider: Microsoft.KeyVault, resource Type: vaults, metric: ${requestedName}, Valid metrics: ${Object.keys(DEFINITIONS).join(',')}`);
            const definition = DEFINITIONS[metric];
            const aggregations = (requested as Aggregation[] | undefined) ?? [definition.aggregation];
            const timeseries = (await series(deps.registry, metric, vault.name, parseFilter(req.query.$filter, metric))).map((s) => ({
              metadatavalues: Object.entries(s.labels).map(([name, v]) => ({ name: { value: name.toLowerCase(), localizedValue: name.toLowerCase() }, value: v })),
              data: [{ timeStamp: start, ...Object.fromEntries(aggregations.map((a) => [a.toLowerCase(), aggregate(metric, s, a)])) }],
            }));
            value.push({
              id: `${vault.resourceId}/providers/Microsoft.Insights/metrics/${metric}`, type: 'Microsoft.Insights/metrics',
              name: { value: metric, localizedValue: definition.localized }, displayDescription: definition.localized, unit: definition.unit,
              timeseries, errorCode: 'Success',
            });
          }
          return { cost: 0, timespan: req.query.timespan ?? `${start}/${now}`, interval, value, namespace: 'Microsoft.KeyVault/vaults', resourceregion: vault.location };
        });
    }
  }
}
