import path from 'node:path';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Registry } from 'prom-client';
import type { Storage } from '../storage/engine.js';
import type { Clock } from '../clock.js';
import { createArm } from '../control-plane/arm.js';
import type { Authorizer } from '../gates/authorization/evaluate.js';
import type { VaultsService } from '../control-plane/vaults.js';
import { armError } from '../control-plane/arm.js';
import type { AuditEvent } from '../audit/audit-log.js';
import { createMonitorResources, fullType, monitorResourceRoutes } from './resources.js';
import { createDiagnosticSettings, diagnosticSettingsRoutes } from './diagnostic-settings.js';
import { createAuditRouter } from './router.js';
import { createDeliveryMetrics, eventHubSink, storageAccountSink, workspaceSink, type WebhookOptions } from './sinks.js';
import { parseTimespan, runQuery, toRow } from './workspace-query.js';
import './tables.js';

/** A workspace query reads at most this many records (the newest in its timespan), as Log Analytics caps results. */
const QUERY_SCAN_LIMIT = 50_000;

export interface MonitorOptions {
  /** Where storage accounts' files live (default `{dataDir}/storage-accounts`). */
  storageRoot?: string;
  /** The dead-letter file of event-hub deliveries (default `{dataDir}/monitor/dead-letter.jsonl`). */
  deadLetterFile?: string;
  webhook?: WebhookOptions;
  routerIntervalMs?: number;
  /** false: this node delivers no audit records (the other nodes of the cluster deliver its records). */
  deliver?: boolean;
}

/**
 * Azure Monitor for vaults: diagnostic settings, the destinations they name (workspace, storage account, event hub),
 * the router that delivers durable audit records to them, and the workspace query API.
 */
export function createMonitor(deps: {
  storage: Storage; clock: Clock; dataDir: string; nodeId: string; subscriptionId: string; tenantId: string;
  authorizer: Authorizer; vaults: VaultsService; registry: Registry; options?: MonitorOptions;
  onError: (route: string, err: unknown) => void;
}) {
  const { storage } = deps;
  const resources = createMonitorResources({ db: storage.db, clock: deps.clock, subscriptionId: deps.subscriptionId });
  const settings = createDiagnosticSettings({ db: storage.db, clock: deps.clock, resources });
  const metrics = createDeliveryMetrics(deps.registry);
  const storageRoot = deps.options?.storageRoot ?? path.join(deps.dataDir, 'storage-accounts');
  const deadLetterFile = deps.options?.deadLetterFile ?? path.join(deps.dataDir, 'monitor', 'dead-letter.jsonl');
  const router = createAuditRouter({
    storage, nodeId: deps.nodeId, settings, intervalMs: deps.options?.routerIntervalMs, deliver: deps.options?.deliver, onError: deps.onError,
    sinks: {
      workspace: workspaceSink({ storage, metrics }),
      storageAccount: storageAccountSink({ storage, root: storageRoot, metrics }),
      eventHub: eventHubSink({ storage, deadLetterFile, metrics, options: deps.options?.webhook }),
    },
  });
  const arm = createArm({ subscriptionId: deps.subscriptionId, tenantId: deps.tenantId, authorizer: deps.authorizer });

  async function resourceGroupExists(name: string) {
    const row = await storage.db.selectFrom('resource_groups').select('name')
      .where('subscription_id', '=', deps.subscriptionId).where('name_key', '=', name.toLowerCase()).executeTakeFirst();
    return row?.name;
  }

  return {
    router,
    arm,
    storageRoot,
    deadLetterFile,
    routes(app: FastifyInstance) {
      monitorResourceRoutes(app, { arm, resources, resourceGroupExists });
      diagnosticSettingsRoutes(app, { arm, settings, vaults: deps.vaults });
      // Log Analytics' query API (`api.loganalytics.io/v1/workspaces/{customerId}/query`), on the management host.
      const query = async (req: FastifyRequest, workspaceId: string, text: string, timespan: string | undefined) => {
        const workspace = await resources.byCustomerId(workspaceId) ?? await resources.byId('workspace', workspaceId);
        if (!workspace) throw armError(404, 'WorkspaceNotFoundError', `The workspace '${workspaceId}' could not be found.`);
        await arm.requireAction(req, workspace.id, `${fullType('workspace')}/query/read`);
        const now = deps.clock.now();
        let q = storage.db.selectFrom('workspace_records').select(['record']).where('workspace_key', '=', workspace.id.toLowerCase());
        if (timespan) {
          const [from, to] = parseTimespan(timespan, now);
          q = q.where('time', '>=', from).where('time', '<=', to);
        }
        const rows = await q.orderBy('time', 'desc').orderBy('seq', 'desc').limit(QUERY_SCAN_LIMIT).execute();
        return runQuery(text, rows.reverse().map((r) => toRow(JSON.parse(r.record) as AuditEvent)), now);
      };
      const body = {
        type: 'object', required: ['query'],
        properties: { query: { type: 'string', minLength: 1, maxLength: 10_000 }, timespan: { type: 'string', maxLength: 100 } },
      } as const;
      app.post<{ Params: { workspaceId: string }; Body: { query: string; timespan?: string } }>('/v1/workspaces/:workspaceId/query',
        { config: { plane: 'management', operation: 'WorkspaceQuery' }, schema: { body } },
        async (req) => query(req, req.params.workspaceId, req.body.query, req.body.timespan));
      app.get<{ Params: { workspaceId: string }; Querystring: { query: string; timespan?: string } }>('/v1/workspaces/:workspaceId/query',
        { config: { plane: 'management', operation: 'WorkspaceQuery' }, schema: { querystring: body } },
        async (req) => query(req, req.params.workspaceId, req.query.query, req.query.timespan));
    },
  };
}
export type Monitor = ReturnType<typeof createMonitor>;
