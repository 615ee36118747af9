import fs from 'node:fs';
import path from 'node:path';
import type { Registry } from 'prom-client';
import { Counter, Gauge } from 'prom-client';
import type { Storage } from '../storage/engine.js';
import type { Route } from './diagnostic-settings.js';
import type { AuditRecord, Sink } from './router.js';
import './tables.js';

/** Delivery metrics, labelled by destination (`kind:name`): records held in memory, delivered, and dead-lettered. */
export function createDeliveryMetrics(registry: Registry) {
  return {
    queueDepth: new Gauge({
      name: 'coffer_audit_delivery_queue_depth', help: 'Audit records read for delivery and not yet delivered or dead-lettered, by destination',
      labelNames: ['destination'], registers: [registry],
    }),
    delivered: new Counter({ name: 'coffer_audit_records_delivered_total', help: 'Audit records delivered, by destination', labelNames: ['destination'], registers: [registry] }),
    failures: new Counter({ name: 'coffer_audit_delivery_failures_total', help: 'Failed delivery attempts, by destination', labelNames: ['destination'], registers: [registry] }),
    deadLetters: new Counter({ name: 'coffer_audit_dead_letters_total', help: 'Audit records written to the dead-letter file, by destination', labelNames: ['destination'], registers: [registry] }),
  };
}
export type DeliveryMetrics = ReturnType<typeof createDeliveryMetrics>;

export const destinationLabel = (route: Route) =>
  route.kind === 'eventHub' ? `eventHub:${route.target.name}/${route.eventHubName}` : `${route.kind}:${route.target.name}`;

/** The workspace sink: records and the cursor move in one transaction, so each record lands exactly once. */
export function workspaceSink(deps: { storage: Storage; metrics: DeliveryMetrics }): Sink {
  return {
    async deliver(route, records, advance) {
      const workspaceKey = route.target.id.toLowerCase();
      await deps.storage.db.transaction().execute(async (trx) => {
        if (!(await advance(trx))) return; // another holder delivered this batch
        await trx.insertInto('workspace_records').values(records.map((r) => ({ workspace_key: workspaceKey, time: r.time, record: r.record }))).execute();
      });
      deps.metrics.delivered.inc({ destination: destinationLabel(route) }, records.length);
    },
  };
}

/**
 * A storage account's file for a record, laid out as Azure lays out its blobs:
 * `insights-logs-auditevent/resourceId={RESOURCE ID}/y=…/m=…/d=…/h=…/m=00/PT1H.json`, JSON lines.
 */
export function storageAccountFile(root: string, accountName: string, resourceKey: string, time: number) {
  const d = new Date(time);
  const two = (n: number) => String(n).padStart(2, '0');
  return path.join(root, accountName, 'insights-logs-auditevent', `resourceId=${resourceKey.toUpperCase()}`,
    `y=${d.getUTCFullYear()}`, `m=${two(d.getUTCMonth() + 1)}`, `d=${two(d.getUTCDate())}`, `h=${two(d.getUTCHours())}`, 'm=00', 'PT1H.json');
}

async function appendLines(file: string, lines: string[]) {
  await fs.promises.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const handle = await fs.promises.open(file, 'a', 0o600);
  try {
    await handle.write(lines.map((l) => `${l}\n`).join(''));
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** The storage-account sink: appends (and fsyncs) JSON lines under `root`, then advances the cursor. */
export function storageAccountSink(deps: { storage: Storage; root: string; metrics: DeliveryMetrics }): Sink {
  return {
    async deliver(route, records, advance) {
      const byFile = new Map<string, string[]>();
      for (const r of records) {
        const file = storageAccountFile(deps.root, route.target.name, route.resourceKey, r.time);
        byFile.set(file, [...(byFile.get(file) ?? []), r.record]);
      }
      for (const [file, lines] of byFile) await appendLines(file, lines);
      await advance(deps.storage.db);
      deps.metrics.delivered.inc({ destination: destinationLabel(route) }, records.length);
    },
  };
}

export interface WebhookOptions {
  /** Waits between attempts; attempts = delays + 1. */
  retryDelaysMs?: number[];
  timeoutMs?: number;
}

const sleep = (ms: number, signal: AbortSignal) => new Promise<void>((resolve, reject) => {
  const timer = setTimeout(resolve, ms);
  signal.addEventListener('abort', () => { clearTimeout(timer); reject(signal.reason); }, { once: true });
});

/**
 * The event-hub sink: POSTs `{"records":[…]}` to `{serviceBusEndpoint}/{eventHubName}/messages`, retrying with
 * exponential back-off; a batch that still fails goes to the dead-letter file (JSON lines: the record, where it was
 * going and why it did not arrive) and delivery moves on. Only one batch per destination is in memory at a time —
 * the rest waits in the audit table — so a dead endpoint costs bounded memory and never slows requests.
 */
export function eventHubSink(deps: { storage: Storage; deadLetterFile: string; metrics: DeliveryMetrics; options?: WebhookOptions }): Sink {
  const delays = deps.options?.retryDelaysMs ?? [500, 1_000, 2_000, 4_000, 8_000];
  const timeoutMs = deps.options?.timeoutMs ?? 10_000;
  return {
    async deliver(route, records, advance, signal) {
      const destination = destinationLabel(route);
      const url = `${String(route.target.properties.serviceBusEndpoint)}/${encodeURIComponent(route.eventHubName!)}/messages`;
      const body = `{"records":[${records.map((r) => r.record).join(',')}]}`;
      deps.metrics.queueDepth.inc({ destination }, records.length);
      try {
        let reason = '';
        for (let attempt = 0; attempt <= delays.length; attempt++) {
          if (attempt > 0) await sleep(delays[attempt - 1], signal);
          try {
            const res = await fetch(url, {
              method: 'POST', body, headers: { 'content-type': 'application/json' },
              signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]),
            });
            await res.arrayBuffer().catch(() => undefined);
            if (res.ok) {
              await advance(deps.storage.db);
              deps.metrics.delivered.inc({ destination }, records.length);
              return;
            }
            reason = `HTTP ${res.status}`;
          } catch (err) {
            if (signal.aborted) throw err;
            reason = (err as Error & { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
          }
          deps.metrics.failures.inc({ destination });
        }
        const deadLetteredAt = new Date().toISOString();
        await appendLines(deps.deadLetterFile, records.map((r) =>
          `{"deadLetteredAt":"${deadLetteredAt}","destination":${JSON.stringify(destination)},"endpoint":${JSON.stringify(withoutCredentials(url))},"reason":${JSON.stringify(reason)},"attempts":${delays.length + 1},"record":${r.record}}`));
        deps.metrics.deadLetters.inc({ destination }, records.length);
        await advance(deps.storage.db);
      } finally {
        deps.metrics.queueDepth.dec({ destination }, records.length);
      }
    },
  };
}

/** A URL fit for a log line: no user info, no query (either could carry a credential). */
function withoutCredentials(url: string) {
  const u = new URL(url);
  return `${u.origin}${u.pathname}`;
}

export type { AuditRecord };
