import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startTestServer, type TestServer } from '../support/server.js';
import { cliRunner } from '../support/cli.js';
import { armClient } from '../support/arm.js';

/**
 * `coffer monitor …` (and the destinations' `storage account` / `eventhubs namespace`) end to end: the built CLI, as
 * the bootstrap administrator, against a real Coffer — a workspace, a diagnostic setting routing the vault's audit
 * records to it, secret reads through the CLI, and a query that finds them; categories and metrics in az's shapes.
 */
let server: TestServer;
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-monitor-cli-'));
const { ok, json, fails } = cliRunner(scratch, () => ({ COFFER_CONFIG_DIR: path.join(scratch, 'no-login'), COFFER_DATA_DIR: server.dataDir }));
const VAULT = 'monclivault';
const RG = 'rg-monitor';

before(async () => {
  server = await startTestServer({ monitor: { routerIntervalMs: 100 } });
});

after(async () => {
  await server?.close();
  fs.rmSync(scratch, { recursive: true, force: true });
});

test('workspace, diagnostic settings, query, categories and metrics through the CLI', { timeout: 120_000 }, async () => {
  await ok(['group', 'create', '-n', RG, '-l', 'local']);
  const vault = await json(['keyvault', 'create', '-n', VAULT, '-g', RG, '--enable-rbac-authorization', 'false']);
  const vaultId = vault.id as string;

  const workspace = await json(['monitor', 'log-analytics', 'workspace', 'create', '-g', RG, '-n', 'cli-ws']);
  assert.equal(workspace.type, 'Microsoft.OperationalInsights/workspaces');
  assert.equal(workspace.location, 'local', 'the resource group\'s location by default');
  assert.equal(workspace.resourceGroup, RG);
  assert.deepEqual((await json(['monitor', 'log-analytics', 'workspace', 'show', '-g', RG, '-n', 'cli-ws'])).properties.customerId, workspace.properties.customerId);
  assert.deepEqual((await json(['monitor', 'log-analytics', 'workspace', 'list', '-g', RG])).map((w: any) => w.name), ['cli-ws']);
  await json(['storage', 'account', 'create', '-g', RG, '-n', 'clifiles']);
  await fails(['eventhubs', 'namespace', 'create', '-g', RG, '-n', 'cli-hub'], 2, /--endpoint/);

  const categories = await json(['monitor', 'diagnostic-settings', 'categories', 'list', '--resource', vaultId]);
  assert.deepEqual(categories.map((c: any) => c.name), ['AuditEvent', 'AzurePolicyEvaluationDetails', 'AllMetrics']);
  assert.deepEqual(categories[0].properties.categoryGroups, ['audit', 'allLogs']);

  await fails(['monitor', 'diagnostic-settings', 'create', '-n', 'none', '--resource', vaultId, '--logs', '[{"categoryGroup":"allLogs","enabled":true}]'], 2, /at least one of --workspace/);
  await fails(['monitor', 'diagnostic-settings', 'create', '-n', 'bad', '--resource', vaultId, '--workspace', workspace.id, '--logs', '{not json'], 2, /JSON array/);
  await fails(['monitor', 'diagnostic-settings', 'create', '-n', 'bad', '--resource', vaultId, '--workspace', workspace.id, '--logs', '[{"category":"Nope","enabled":true}]'], 1, /\(BadRequest\) Category 'Nope'/);
  const setting = await json(['monitor', 'diagnostic-settings', 'create', '-n', 'to-ws', '--resource', VAULT, '-g', RG, '--workspace', 'cli-ws',
    '--storage-account', 'clifiles', '--logs', '[{"categoryGroup":"audit","enabled":true}]', '--metrics', '[{"category":"AllMetrics","enabled":true}]']);
  assert.equal(setting.name, 'to-ws');
  assert.equal(setting.properties.workspaceId, workspace.id);
  assert.equal(setting.properties.logAnalyticsDestinationType, null, 'the default: the AzureDiagnostics table');

  // logAnalyticsDestinationType: Dedicated or AzureDiagnostics (or null), nothing else, and a refused PUT changes nothing.
  const dedicated = await json(['monitor', 'diagnostic-settings', 'create', '-n', 'dedicated', '--resource', vaultId, '--workspace', workspace.id,
    '--logs', '[{"categoryGroup":"audit","enabled":true}]', '--export-to-resource-specific', 'true']);
  assert.equal(dedicated.properties.logAnalyticsDestinationType, 'Dedicated');
  await fails(['monitor', 'diagnostic-settings', 'create', '-n', 'dedicated', '--resource', vaultId, '--storage-account', 'clifiles', '-g', RG,
    '--logs', '[{"categoryGroup":"audit","enabled":true}]', '--export-to-resource-specific'], 2, /--export-to-resource-specific needs --workspace/);
  const arm = armClient(server, server.adminCredential);
  const dedicatedPath = `${vaultId}/providers/Microsoft.Insights/diagnosticSettings/dedicated`;
  const withType = (type: unknown) => ({ properties: { workspaceId: workspace.id, logAnalyticsDestinationType: type, logs: [{ categoryGroup: 'audit', enabled: true }] } });
  for (const bad of ['Bogus', 'AzureDiagnosticsX', '']) {
    const refused = await arm('PUT', dedicatedPath, withType(bad), '2021-05-01-preview');
    assert.equal(refused.status, 400, bad);
    assert.equal(refused.body.error.code, 'BadRequest');
    assert.match(refused.body.error.message, /logAnalyticsDestinationType is invalid: use Dedicated or AzureDiagnostics/);
  }
  assert.equal((await arm('GET', dedicatedPath, undefined, '2021-05-01-preview')).body.properties.logAnalyticsDestinationType, 'Dedicated');
  assert.equal((await arm('PUT', dedicatedPath, withType('AzureDiagnostics'), '2021-05-01-preview')).body.properties.logAnalyticsDestinationType, 'AzureDiagnostics');
  assert.equal((await arm('PUT', dedicatedPath, withType(null), '2021-05-01-preview')).body.properties.logAnalyticsDestinationType, null);
  await ok(['monitor', 'diagnostic-settings', 'delete', '-n', 'dedicated', '--resource', vaultId]);
  assert.deepEqual((await json(['monitor', 'diagnostic-settings', 'list', '--resource', vaultId])).map((s: any) => s.name), ['to-ws']);
  assert.equal((await json(['monitor', 'diagnostic-settings', 'show', '-n', 'to-ws', '--resource', vaultId])).properties.logs[0].categoryGroup, 'audit');

  await ok(['keyvault', 'secret', 'set', '--vault-name', VAULT, '-n', 'watched', '--value', 'cli-secret-value-91ab']);
  await ok(['keyvault', 'secret', 'show', '--vault-name', VAULT, '-n', 'watched']);
  await fails(['keyvault', 'secret', 'show', '--vault-name', VAULT, '-n', 'absent'], 3, /SecretNotFound/);

  const customerId = workspace.properties.customerId as string;
  const query = (q: string, ...extra: string[]) => json(['monitor', 'log-analytics', 'query', '-w', customerId, '--analytics-query', q, ...extra]);
  let rows: any[] = [];
  for (let i = 0; i < 100 && rows.length < 2; i++) {
    rows = await query("AzureDiagnostics | where OperationName == 'SecretGet' | project TimeGenerated, ResultType, ResultSignature, id_s | sort by TimeGenerated asc", '--timespan', 'PT1H');
    if (rows.length < 2) await new Promise((r) => setTimeout(r, 200));
  }
  const vaultUrl = server.vaultUrl(VAULT);
  assert.deepEqual(rows.map((r) => [r.ResultType, r.ResultSignature, r.id_s, r.TableName]), [
    ['Success', 'OK', `${vaultUrl}/secrets/watched`, 'PrimaryResult'],
    ['Failure', 'NotFound', `${vaultUrl}/secrets/absent`, 'PrimaryResult'],
  ]);
  const byOperation = await query("AzureDiagnostics | where identity_claim_appid_g == '" + server.admin.clientId + "' | summarize count() by OperationName");
  assert.ok(byOperation.some((r: any) => r.OperationName === 'SecretSet' && r.count_ === 1), JSON.stringify(byOperation));
  await fails(['monitor', 'log-analytics', 'query', '-w', customerId, '--analytics-query', 'SigninLogs | take 1'], 1, /BadArgumentError/);
  await fails(['monitor', 'log-analytics', 'query', '-w', customerId, '--analytics-query', 'AzureDiagnostics', '--timespan', 'yesterday'], 1, /ISO 8601/);
  // An interval that ends before it starts is Log Analytics' 400, not an empty table.
  const rowsNow = new Date().toISOString();
  await fails(['monitor', 'log-analytics', 'query', '-w', customerId, '--analytics-query', 'AzureDiagnostics', '--timespan', `${rowsNow}/2020-01-01T00:00:00Z`], 1, /\(BadArgumentError\) .*ends before it starts/);

  const metrics = await json(['monitor', 'metrics', 'list', '--resource', vaultId, '--metric', 'ServiceApiHit', '--dimension', 'ActivityName', '--interval', 'PT1H']);
  assert.equal(metrics.interval, 'PT1H');
  assert.equal(metrics.namespace, 'Microsoft.KeyVault/vaults');
  const hits = Object.fromEntries(metrics.value[0].timeseries.map((t: any) => [t.metadatavalues[0].value, t.data[0].total]));
  assert.equal(hits.SecretGet, 2);
  assert.equal(hits.SecretSet, 1);

  await ok(['monitor', 'diagnostic-settings', 'delete', '-n', 'to-ws', '--resource', vaultId]);
  assert.deepEqual(await json(['monitor', 'diagnostic-settings', 'list', '--resource', vaultId]), []);
  await ok(['monitor', 'log-analytics', 'workspace', 'delete', '-g', RG, '-n', 'cli-ws', '--yes']);
  await fails(['monitor', 'log-analytics', 'workspace', 'show', '-g', RG, '-n', 'cli-ws'], 3, /ResourceNotFound/);
});
