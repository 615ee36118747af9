import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ClientSecretCredential } from '@azure/identity';
import type { BootstrapAdminFile } from '../../src/bootstrap.js';
import { openStorage } from '../../src/storage/engine.js';
import { createVaultAsAdmin, seedTestCa } from '../support/server.js';
import { freshDatabase } from '../support/postgres.js';
import { rawRequest } from '../support/raw-http.js';
import { startChildServer } from '../support/child-server.js';

const NODE_ID = 'audit-kill-node';
const VAULT = 'killvault';
const REQUESTS = 60;

/** `coffer server start` (built) on its own data dir and, when the tests run on PostgreSQL, database. */
const startServer = (dataDir: string, storageUrl: string | undefined) => startChildServer([
  '--data-dir', dataDir, '--port', '0', '--node-id', NODE_ID, '--throttle', 'off', '--log-level', 'warn',
  ...(storageUrl ? ['--storage', storageUrl] : []),
]);

test('kill -9 right after the responses loses no audit record of them, and their routing resumes after restart', { timeout: 120_000 }, async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-audit-kill-'));
  seedTestCa(dataDir);
  const storageUrl = process.env.COFFER_TEST_STORAGE_URL ? await freshDatabase(process.env.COFFER_TEST_STORAGE_URL) : undefined;
  let server = await startServer(dataDir, storageUrl);
  try {
    const admin = JSON.parse(fs.readFileSync(path.join(dataDir, 'bootstrap-admin.json'), 'utf8')) as BootstrapAdminFile;
    const credential = new ClientSecretCredential(admin.tenantId, admin.clientId, admin.clientSecret, { authorityHost: admin.authorityHost, disableInstanceDiscovery: true });
    await createVaultAsAdmin(admin, credential, VAULT);
    const management = (await credential.getToken(`${admin.managementEndpoint}/.default`))!.token;
    const arm = (method: string, resource: string, body: unknown, apiVersion: string) =>
      rawRequest(`${admin.managementEndpoint}${resource}?api-version=${apiVersion}`, { method, token: management, body });
    const rg = `/subscriptions/${admin.subscriptionId}/resourceGroups/rg-test`;
    const workspace = await arm('PUT', `${rg}/providers/Microsoft.OperationalInsights/workspaces/kill-ws`, { location: 'local' }, '2022-10-01');
    assert.equal(workspace.status, 201, workspace.text);
    const setting = await arm('PUT', `${rg}/providers/Microsoft.KeyVault/vaults/${VAULT}/providers/Microsoft.Insights/diagnosticSettings/ws`,
      { properties: { workspaceId: workspace.json.id, logs: [{ categoryGroup: 'audit', enabled: true }] } }, '2021-05-01-preview');
    assert.equal(setting.status, 200, setting.text);

    // Allowed writes and reads, and refused calls (no token, a forged token), all at once: group commit at work.
    const vaultUrl = `https://${VAULT}.vault.localhost:${server.port}`;
    const token = (await credential.getToken('https://vault.localhost/.default'))!.token;
    const responses = await Promise.all(Array.from({ length: REQUESTS }, (_, i) => {
      const kind = i % 4;
      if (kind === 0) return rawRequest(`${vaultUrl}/secrets/s${i}?api-version=7.4`, { method: 'PUT', token, body: { value: `value-${i}` } });
      if (kind === 1) return rawRequest(`${vaultUrl}/secrets/s${i - 1}?api-version=7.4`, { token });
      if (kind === 2) return rawRequest(`${vaultUrl}/secrets?api-version=7.4`, { token: null });
      return rawRequest(`${vaultUrl}/secrets/s${i}?api-version=7.4`, { token: `${token}x` });
    }));
    server.child.kill('SIGKILL');
    await new Promise((r) => server.child.once('exit', r));
    const statuses = new Set(responses.map((r) => r.status));
    assert.ok(statuses.has(200) && statuses.has(401), [...statuses].join(','));
    const requestIds = responses.map((r) => r.headers.get('x-ms-request-id')!);

    // Every response's record is in the audit table after the crash…
    server = await startServer(dataDir, storageUrl);
    const storage = await openStorage({ url: storageUrl, dataDir });
    try {
      const rows = await storage.db.selectFrom('audit_events').select('record').execute();
      const recorded = new Map(rows.map((r) => JSON.parse(r.record)).map((e) => [e.correlationId, e]));
      const missing = requestIds.filter((id) => !recorded.has(id));
      assert.deepEqual(missing, [], `${missing.length} of ${REQUESTS} responses have no audit record`);
      responses.forEach((r, i) => assert.equal(recorded.get(requestIds[i]).properties.httpStatusCode, r.status));
    } finally {
      await storage.close();
    }
    // …and the restarted node (same --node-id) delivers what the crash left undelivered, once each.
    // (The restarted server listens on another port, so tokens come from it anew: the issuer names the port.)
    const restarted = JSON.parse(fs.readFileSync(path.join(dataDir, 'bootstrap-admin.json'), 'utf8')) as BootstrapAdminFile;
    const restartedToken = (await new ClientSecretCredential(restarted.tenantId, restarted.clientId, restarted.clientSecret, {
      authorityHost: restarted.authorityHost, disableInstanceDiscovery: true,
    }).getToken(`${restarted.managementEndpoint}/.default`))!.token;
    const deadline = Date.now() + 20_000;
    let delivered: string[] = [];
    while (Date.now() < deadline) {
      const res = await rawRequest(`${restarted.managementEndpoint}/v1/workspaces/${workspace.json.properties.customerId}/query`, {
        method: 'POST', token: restartedToken, body: { query: "AzureDiagnostics | where Resource == 'KILLVAULT' | project CorrelationId" },
      });
      assert.equal(res.status, 200, res.text);
      delivered = res.json.tables[0].rows.map((r: string[]) => r[0]);
      if (requestIds.every((id) => delivered.includes(id))) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.deepEqual(requestIds.filter((id) => !delivered.includes(id)), [], 'every record reaches the workspace after the restart');
    assert.equal(new Set(delivered).size, delivered.length, 'no record is delivered twice');
  } finally {
    server.child.kill('SIGKILL');
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
