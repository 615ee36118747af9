import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { forbidden } from '../http/errors.js';

/** Azure's ActivityType dimension: the object family an operation acts on. */
export function activityTypeOf(operation: string) {
  for (const [prefix, type] of [['Secret', 'secret'], ['Key', 'key'], ['Certificate', 'certificate']] as const) {
    if (operation.startsWith(prefix)) return type;
  }
  return 'vault';
}

/**
 * Azure Key Vault's vault metrics in Prometheus form — ServiceApiHit, ServiceApiLatency (milliseconds),
 * ServiceApiResult, Availability and SaturationShoebox, labelled by vault — plus the process metrics. Only data-plane
 * requests are vault metrics, as in Azure; labels carry names and status codes, never values.
 */
export function createMetrics(deps: { saturation(): { vault: string; percent: number }[] }) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const labelNames = ['vault', 'activityType', 'activityName'] as const;
  const hits = new Counter({ name: 'ServiceApiHit', help: 'Number of total service API hits', labelNames, registers: [registry] });
  const latency = new Histogram({
    name: 'ServiceApiLatency', help: 'Overall latency of service API requests, in milliseconds', labelNames,
    buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000], registers: [registry],
  });
  const results = new Counter({
    name: 'ServiceApiResult', help: 'Number of total service API results',
    labelNames: [...labelNames, 'statusCode', 'statusCodeClass'], registers: [registry],
  });
  new Gauge({
    name: 'Availability', help: 'Vault requests availability: percent of responses that were not service errors (5xx), since start',
    labelNames: ['vault'], registers: [registry],
    async collect() {
      this.reset();
      const byVault = new Map<string, { total: number; available: number }>();
      for (const { labels, value } of (await results.get()).values) {
        const tally = byVault.get(String(labels.vault)) ?? { total: 0, available: 0 };
        tally.total += value;
        if (labels.statusCodeClass !== '5xx') tally.available += value;
        byVault.set(String(labels.vault), tally);
      }
      for (const [vault, { total, available }] of byVault) this.set({ vault }, (available / total) * 100);
    },
  });
  new Gauge({
    name: 'SaturationShoebox', help: 'Vault capacity used: percent of the throttling budget spent in the current 10-second window',
    labelNames: ['vault'], registers: [registry],
    collect() {
      this.reset();
      for (const { vault, percent } of deps.saturation()) this.set({ vault }, percent);
    },
  });

  return {
    registry,
    /** Counts every data-plane response (allowed, refused or failed); call before routes are registered. */
    install(app: FastifyInstance) {
      app.addHook('onResponse', async (req, reply) => {
        const ctx = req.coffer;
        if (!ctx || ctx.plane !== 'vault') return;
        const labels = { vault: ctx.vault?.name ?? '', activityType: activityTypeOf(ctx.operation), activityName: ctx.operation };
        hits.inc(labels);
        latency.observe(labels, performance.now() - ctx.startedAt);
        results.inc({ ...labels, statusCode: String(reply.statusCode), statusCodeClass: `${Math.floor(reply.statusCode / 100)}xx` });
      });
    },
    /** GET /metrics on the management host, for the bootstrap administrator only (the identity gate checks the token). */
    routes(app: FastifyInstance, opts: { adminObjectId: string }) {
      app.get('/metrics', { config: { plane: 'management', operation: 'MetricsGet' } }, async (req, reply) => {
        if (req.coffer.caller?.principal.objectId !== opts.adminObjectId) {
          throw forbidden('Only the Coffer administrator may read metrics.', 'AuthorizationFailed');
        }
        return reply.type(registry.contentType).send(await registry.metrics());
      });
    },
    /**
     * `--metrics-port`: the same metrics, unauthenticated, over plain HTTP on loopback only (for a local Prometheus
     * or agent); returns the port it listens on.
     */
    async listen(port: number) {
      const server = http.createServer(async (req, res) => {
        if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
          res.writeHead(404).end();
          return;
        }
        res.writeHead(200, { 'content-type': registry.contentType }).end(await registry.metrics());
      });
      await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve));
      return { port: (server.address() as AddressInfo).port, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
