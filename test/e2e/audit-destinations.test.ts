import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { startTestServer, type TestServer } from '../support/server.js';
import { armClient, createPrincipal, secretClientAs } from '../support/arm.js';

const VAULT = 'monvault';
const API = '2021-05-01-preview';

/** An HTTPS endpoint (the Coffer's own certificate, so the test CA vouches for it) that keeps every body it is sent. */
async function startWebhook(server: TestServer) {
  const bodies: { path: string; body: string }[] = [];
  const tls = path.join(server.dataDir, 'tls');
  const listener = https.createServer({ cert: fs.readFileSync(path.join(tls, 'server.crt')), key: fs.readFileSync(path.join(tls, 'server.key')) }, (req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (c) => { body += c; }).on('end', () => {
      bodies.push({ path: req.url ?? '', body });
      res.writeHead(201).end();
    });
  });
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  return { url: `https://localhost:${(listener.address() as AddressInfo).port}`, bodies, close: () => new Promise((r) => listener.close(r)) };
}

/** A local port nothing listens on: a dead event hub. */
async function deadEndpoint() {
  const probe = https.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const { port } = probe.address() as AddressInfo;
  await new Promise((r) => probe.close(r));
  return `https://localhost:${port}`;
}

/** A port that accepts connections and never answers (not even the TLS handshake): a hung event hub. */
async function blackHole() {
  const sockets: net.Socket[] = [];
  const listener = net.createServer((socket) => { sockets.push(socket); });
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  return {
    url: `https://localhost:${(listener.address() as AddressInfo).port}`,
    close: () => { sockets.forEach((s) => s.destroy()); return new Promise((r) => listener.close(r)); },
  };
}

async function eventually<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true, recursive: true }).filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
}

test('audit records of allowed and denied calls reach a workspace, a storage account and an event hub; a dead event hub dead-letters without slowing requests', { timeout: 120_000 }, async () => {
  const server = await startTestServer({ monitor: { routerIntervalMs: 100, webhook: { retryDelaysMs: [100, 200], timeoutMs: 2_000 } } });
  const webhook = await startWebhook(server);
  const hung = await blackHole();
  try {
    await server.createVault(VAULT);
    const arm = armClient(server, server.adminCredential);
    const sub = `/subscriptions/${server.admin.subscriptionId}`;
    const rg = `${sub}/resourceGroups/rg-test`;
    const vaultId = `${rg}/providers/Microsoft.KeyVault/vaults/${VAULT}`;

    const workspace = await arm('PUT', `${rg}/providers/Microsoft.OperationalInsights/workspaces/audit-ws`, { location: 'local' }, '2022-10-01');
    assert.equal(workspace.status, 201, JSON.stringify(workspace.body));
    const customerId = workspace.body.properties.customerId as string;
    assert.match(customerId, /^[0-9a-f-]{36}$/);
    assert.equal((await arm('PUT', `${rg}/providers/Microsoft.Storage/storageAccounts/auditfiles`, { location: 'local', kind: 'StorageV2', sku: { name: 'Standard_LRS' } }, '2023-01-01')).status, 201);
    assert.equal((await arm('PUT', `${rg}/providers/Microsoft.EventHub/namespaces/siem-hub`, { location: 'local', properties: { serviceBusEndpoint: webhook.url } }, '2021-11-01')).status, 201);
    assert.equal((await arm('PUT', `${rg}/providers/Microsoft.EventHub/namespaces/dead-hub`, { location: 'local', properties: { serviceBusEndpoint: await deadEndpoint() } }, '2021-11-01')).status, 201);

    // Bad settings are Azure-shaped 400s that create nothing.
    const settings = `${vaultId}/providers/Microsoft.Insights/diagnosticSettings`;
    const noDestination = await arm('PUT', `${settings}/bad`, { properties: { logs: [{ categoryGroup: 'allLogs', enabled: true }] } }, API);
    assert.equal(noDestination.status, 400);
    assert.equal(noDestination.body.error.code, 'BadRequest');
    const unknownWorkspace = await arm('PUT', `${settings}/bad`, { properties: { workspaceId: `${workspace.body.id}x`, logs: [{ categoryGroup: 'allLogs', enabled: true }] } }, API);
    assert.equal(unknownWorkspace.status, 400);
    const badCategory = await arm('PUT', `${settings}/bad`, { properties: { workspaceId: workspace.body.id, logs: [{ category: 'Nope', enabled: true }] } }, API);
    assert.equal(badCategory.status, 400);
    assert.deepEqual((await arm('GET', settings, undefined, API)).body.value, []);

    const categories = await arm('GET', `${vaultId}/providers/Microsoft.Insights/diagnosticSettingsCategories`, undefined, API);
    assert.deepEqual(categories.body.value.map((c: any) => [c.name, c.properties.categoryType]), [['AuditEvent', 'Logs'], ['AzurePolicyEvaluationDetails', 'Logs'], ['AllMetrics', 'Metrics']]);

    const all = await arm('PUT', `${settings}/to-everything`, {
      properties: {
        workspaceId: workspace.body.id,
        storageAccountId: `${rg}/providers/Microsoft.Storage/storageAccounts/auditfiles`,
        eventHubAuthorizationRuleId: `${rg}/providers/Microsoft.EventHub/namespaces/siem-hub/authorizationRules/RootManageSharedAccessKey`,
        eventHubName: 'keyvault-audit',
        logs: [{ categoryGroup: 'allLogs', enabled: true }],
        metrics: [{ category: 'AllMetrics', enabled: true }],
      },
    }, API);
    assert.equal(all.status, 200, JSON.stringify(all.body));
    assert.equal(all.body.type, 'Microsoft.Insights/diagnosticSettings');
    assert.equal(all.body.properties.logs[0].categoryGroup, 'allLogs');
    const dead = await arm('PUT', `${settings}/to-dead-hub`, {
      properties: {
        eventHubAuthorizationRuleId: `${rg}/providers/Microsoft.EventHub/namespaces/dead-hub/authorizationRules/RootManageSharedAccessKey`,
        logs: [{ category: 'AuditEvent', enabled: true }],
      },
    }, API);
    assert.equal(dead.status, 200, JSON.stringify(dead.body));
    assert.equal((await arm('PUT', `${rg}/providers/Microsoft.EventHub/namespaces/hung-hub`, { location: 'local', properties: { serviceBusEndpoint: hung.url } }, '2021-11-01')).status, 201);
    const hungSetting = await arm('PUT', `${settings}/to-hung-hub`, {
      properties: {
        eventHubAuthorizationRuleId: `${rg}/providers/Microsoft.EventHub/namespaces/hung-hub/authorizationRules/RootManageSharedAccessKey`,
        logs: [{ categoryGroup: 'audit', enabled: true }],
      },
    }, API);
    assert.equal(hungSetting.status, 200, JSON.stringify(hungSetting.body));
    assert.deepEqual((await arm('GET', settings, undefined, API)).body.value.map((s: any) => s.name), ['to-dead-hub', 'to-everything', 'to-hung-hub']);

    // Allowed and denied calls, with a value, a client secret and tokens that must appear in no destination.
    const marker = 'destination-marker-5d1f0a';
    const admin = server.secretClient(VAULT);
    await admin.setSecret('audited', marker);
    const stranger = await createPrincipal(server, 'monitor-stranger');
    await assert.rejects(secretClientAs(server, VAULT, stranger.credential).getSecret('audited'), (e: any) => e.statusCode === 403);
    // With a dead hub and a hung one retrying, requests take no longer than usual: delivery is off the request path.
    const latencies: number[] = [];
    for (let i = 0; i < 20; i++) {
      const started = performance.now();
      assert.equal((await admin.getSecret('audited')).value, marker);
      latencies.push(performance.now() - started);
    }
    latencies.sort((a, b) => a - b);
    assert.ok(latencies[18] < 500, `a dead event hub slowed requests: p95 ${latencies[18].toFixed(0)} ms`);

    // The workspace: queryable by operation, result, caller and object, and by time.
    const query = async (text: string, timespan?: string) => {
      const res = await arm('POST', `/v1/workspaces/${customerId}/query`, { query: text, ...(timespan ? { timespan } : {}) });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const [{ columns, rows }] = res.body.tables;
      return rows.map((r: unknown[]) => Object.fromEntries(columns.map((c: { name: string }, i: number) => [c.name, r[i]])));
    };
    const denied = await eventually('the denied read in the workspace', async () => {
      const rows = await query(`AzureDiagnostics | where OperationName == 'SecretGet' and ResultSignature == 'Forbidden' | project identity_claim_oid_g, id_s, httpStatusCode_d, isRbacAuthorized_b`);
      return rows.length ? rows : undefined;
    });
    assert.deepEqual(denied, [{ identity_claim_oid_g: stranger.objectId, id_s: `${server.vaultUrl(VAULT)}/secrets/audited`, httpStatusCode_d: 403, isRbacAuthorized_b: false }]);
    const successes = await eventually('20 successful reads in the workspace', async () => {
      const [{ count_ }] = await query(`AzureDiagnostics | where OperationName == 'SecretGet' and ResultType == 'Success' | where identity_claim_appid_g == '${server.admin.clientId}' | summarize count()`, 'PT1H');
      return count_ >= 20 ? count_ : undefined;
    });
    assert.equal(successes, 20, 'each record lands exactly once in the workspace');
    assert.deepEqual(await query(`AzureDiagnostics | where OperationName == 'SecretGet' | where TimeGenerated < ago(1h) | count`), [{ Count: 0 }]);
    const byResult = await query(`AzureDiagnostics | where id_s endswith 'x'`).catch(() => 'refused');
    assert.equal(byResult, 'refused', 'an unsupported operator is refused');
    const unsupported = await arm('POST', `/v1/workspaces/${customerId}/query`, { query: `AzureDiagnostics | join kind=inner (X) on Y` });
    assert.equal(unsupported.status, 400);
    assert.equal(unsupported.body.error.code, 'BadArgumentError');
    const strangerQuery = await armClient(server, stranger.credential)('POST', `/v1/workspaces/${customerId}/query`, { query: 'AzureDiagnostics' });
    assert.equal(strangerQuery.status, 403, 'reading a workspace needs a role on it');

    // The storage account: Azure's blob layout, as JSON lines.
    const lines = await eventually('the denied read in the storage account', async () => {
      const all = filesUnder(path.join(server.dataDir, 'storage-accounts', 'auditfiles')).flatMap((f) => fs.readFileSync(f, 'utf8').trim().split('\n')).map((l) => JSON.parse(l));
      return all.some((e) => e.resultSignature === 'Forbidden') && all.filter((e) => e.operationName === 'SecretGet' && e.resultType === 'Success').length >= 20 ? all : undefined;
    });
    assert.ok(lines.every((e) => e.category === 'AuditEvent' && e.resourceId.toLowerCase() === vaultId.toLowerCase()));
    assert.match(filesUnder(path.join(server.dataDir, 'storage-accounts', 'auditfiles'))[0],
      /insights-logs-auditevent\/resourceId=\/SUBSCRIPTIONS\/.*\/VAULTS\/MONVAULT\/y=\d{4}\/m=\d{2}\/d=\d{2}\/h=\d{2}\/m=00\/PT1H\.json$/);

    // The event hub: Event Hubs' REST send path, `{"records":[…]}` bodies.
    const hubRecords = await eventually('the denied read at the event hub', async () => {
      const all = webhook.bodies.flatMap((b) => JSON.parse(b.body).records);
      return all.some((e: any) => e.resultSignature === 'Forbidden') ? all : undefined;
    });
    assert.ok(webhook.bodies.every((b) => b.path === '/keyvault-audit/messages'));
    assert.ok(hubRecords.some((e: any) => e.operationName === 'SecretSet'));

    // The dead hub: retried, then dead-lettered with the reason; counted in /metrics.
    const deadLetterFile = path.join(server.dataDir, 'monitor', 'dead-letter.jsonl');
    const deadLetters = await eventually('dead letters', async () => {
      if (!fs.existsSync(deadLetterFile)) return undefined;
      const all = fs.readFileSync(deadLetterFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
      return all.some((d) => d.record.resultSignature === 'Forbidden') ? all : undefined;
    });
    const refused = deadLetters.filter((d) => d.destination === 'eventHub:dead-hub/insights-logs-auditevent');
    assert.ok(refused.length && refused.every((d) => d.attempts === 3 && d.reason === 'ECONNREFUSED'), JSON.stringify(deadLetters[0]));
    // The hung hub: each attempt times out (2 s here), then its records are dead-lettered too.
    await eventually('dead letters of the hung hub', async () => {
      const all = fs.readFileSync(deadLetterFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
      return all.some((d) => d.destination === 'eventHub:hung-hub/insights-logs-auditevent' && d.reason === 'TimeoutError' && d.record.resultSignature === 'Forbidden') ? true : undefined;
    }, 30_000);
    const token = await server.adminCredential.getToken(`${server.admin.managementEndpoint}/.default`);
    // (The counter moves just after the file is written: scrape until it has caught up.)
    const scrape = await eventually('the dead-letter counter', async () => {
      const text = await (await fetch(`${server.admin.managementEndpoint}/metrics`, { headers: { authorization: `Bearer ${token!.token}` } })).text();
      const deadCount = /coffer_audit_dead_letters_total\{destination="eventHub:dead-hub\/insights-logs-auditevent"\} (\d+)/.exec(text);
      const idle = /coffer_audit_delivery_queue_depth\{destination="eventHub:siem-hub\/keyvault-audit"\} 0/.test(text);
      return deadCount && Number(deadCount[1]) >= deadLetters.length && idle ? text : undefined;
    });
    assert.match(scrape, /coffer_audit_records_delivered_total\{destination="eventHub:siem-hub\/keyvault-audit"\} [1-9]/);

    // No value, client secret or token anywhere a record went.
    const dump = [
      (await server.coffer.storage.db.selectFrom('workspace_records').select('record').execute()).map((r) => r.record).join('\n'),
      ...filesUnder(path.join(server.dataDir, 'storage-accounts')).map((f) => fs.readFileSync(f, 'utf8')),
      ...webhook.bodies.map((b) => b.body),
      fs.readFileSync(deadLetterFile, 'utf8'),
    ].join('\n');
    assert.ok(dump.includes('SecretGet') && dump.length > 10_000);
    assert.ok(!dump.includes(marker), 'no secret value in any destination');
    assert.ok(!dump.includes(server.admin.clientSecret), 'no client secret in any destination');
    assert.ok(!/eyJ[\w-]+\.[\w-]+\./.test(dump), 'no bearer token in any destination');

    // Deleting a setting stops its routing.
    assert.equal((await arm('DELETE', `${settings}/to-dead-hub`, undefined, API)).status, 200);
    assert.equal((await arm('GET', `${settings}/to-dead-hub`, undefined, API)).status, 404);
  } finally {
    await server.close();
    await webhook.close();
    await hung.close();
  }
});

test('vault metrics through the metrics API match the requests made', { timeout: 60_000 }, async () => {
  const server = await startTestServer();
  try {
    await server.createVault('metricsvault');
    const client = server.secretClient('metricsvault');
    await client.setSecret('m', 'v');
    for (let i = 0; i < 3; i++) await client.getSecret('m');
    const vaultId = `/subscriptions/${server.admin.subscriptionId}/resourceGroups/rg-test/providers/Microsoft.KeyVault/vaults/metricsvault`;
    const arm = armClient(server, server.adminCredential);
    const res = await arm('GET', `${vaultId}/providers/Microsoft.Insights/metrics?metricnames=ServiceApiHit,ServiceApiResult&$filter=${encodeURIComponent("ActivityName eq '*'")}`, undefined, '2018-01-01');
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const [hits, results] = res.body.value;
    assert.equal(hits.name.value, 'ServiceApiHit');
    assert.equal(hits.unit, 'Count');
    const byName = Object.fromEntries(hits.timeseries.map((t: any) => [t.metadatavalues[0].value, t.data[0].total]));
    assert.equal(byName.SecretGet, 3);
    assert.equal(byName.SecretSet, 1);
    assert.ok(results.timeseries.length > 0);
    const bad = await arm('GET', `${vaultId}/providers/Microsoft.Insights/metrics?metricnames=Nope`, undefined, '2018-01-01');
    assert.equal(bad.status, 400);
  } finally {
    await server.close();
  }
});
