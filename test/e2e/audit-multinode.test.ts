import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ClientSecretCredential } from '@azure/identity';
import { SecretClient } from '@azure/keyvault-secrets';
import { startCoffer, type Coffer } from '../../src/server.js';
import { startTestServer, seedTestCa } from '../support/server.js';
import { armClient } from '../support/arm.js';
import { freshDatabase } from '../support/postgres.js';

const VAULT = 'multiaudit';
const PER_NODE = 30;

/**
 * Three nodes on one PostgreSQL database write audit records concurrently; nodes a and b deliver, node c delivers
 * none (`deliver: false`), so its records are adopted. The workspace must end with every record exactly once.
 */
test('audit routing across nodes on PostgreSQL: every record delivered once, a non-delivering node\'s records adopted', {
  skip: process.env.COFFER_TEST_STORAGE_URL ? false : 'PostgreSQL only (COFFER_TEST_ENGINES=postgres)', timeout: 120_000,
}, async () => {
  const storageUrl = await freshDatabase(process.env.COFFER_TEST_STORAGE_URL!);
  const a = await startTestServer({ storageUrl, nodeId: 'node-a', monitor: { routerIntervalMs: 100 } });
  const others: { coffer: Coffer; dataDir: string }[] = [];
  try {
    for (const [nodeId, deliver] of [['node-b', true], ['node-c', false]] as const) {
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-audit-multi-'));
      seedTestCa(dataDir);
      fs.copyFileSync(path.join(a.dataDir, 'root.key'), path.join(dataDir, 'root.key'));
      const coffer = await startCoffer({
        host: '127.0.0.1', port: 0, dataDir, dnsSuffix: 'vault.localhost', seal: 'file', logLevel: 'silent', storageUrl, nodeId,
        monitor: { routerIntervalMs: 100, deliver },
      });
      others.push({ coffer, dataDir });
    }
    await a.createVault(VAULT);
    const arm = armClient(a, a.adminCredential);
    const rg = `/subscriptions/${a.admin.subscriptionId}/resourceGroups/rg-test`;
    const workspace = await arm('PUT', `${rg}/providers/Microsoft.OperationalInsights/workspaces/multi-ws`, { location: 'local' }, '2022-10-01');
    const setting = await arm('PUT', `${rg}/providers/Microsoft.KeyVault/vaults/${VAULT}/providers/Microsoft.Insights/diagnosticSettings/ws`,
      { properties: { workspaceId: workspace.body.id, logs: [{ categoryGroup: 'allLogs', enabled: true }] } }, '2021-05-01-preview');
    assert.equal(setting.status, 200, JSON.stringify(setting.body));
    await a.secretClient(VAULT).setSecret('shared', 'v');

    // Each node issues its own tokens (the issuer names its port), for the same administrator.
    const clients = [a.coffer, ...others.map((o) => o.coffer)].map((coffer) => {
      const credential = new ClientSecretCredential(a.admin.tenantId, a.admin.clientId, a.admin.clientSecret, {
        authorityHost: `https://localhost:${coffer.port}`, disableInstanceDiscovery: true,
      });
      return new SecretClient(coffer.endpoints.vaultUrl(VAULT), credential, { retryOptions: { maxRetries: 0 } });
    });
    await Promise.all(clients.map(async (client) => {
      for (let i = 0; i < PER_NODE; i++) await client.getSecret('shared');
    }));

    const expected = (await a.coffer.storage.db.selectFrom('audit_events').select(['record', 'origin']).where('resource_key', '=', `${rg}/providers/Microsoft.KeyVault/vaults/${VAULT}`.toLowerCase()).execute())
      .filter((r) => JSON.parse(r.record).operationName === 'SecretGet');
    assert.deepEqual(new Set(expected.map((r) => r.origin)), new Set(['node-a', 'node-b', 'node-c']));
    const deadline = Date.now() + 30_000;
    let delivered: string[] = [];
    for (;;) {
      delivered = (await a.coffer.storage.db.selectFrom('workspace_records').select('record').execute())
        .map((r) => JSON.parse(r.record)).filter((e) => e.operationName === 'SecretGet').map((e) => e.correlationId);
      if (delivered.length >= expected.length || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(new Set(delivered).size, delivered.length, 'no record delivered twice');
    assert.deepEqual(new Set(delivered), new Set(expected.map((r) => JSON.parse(r.record).correlationId)), 'every record delivered');
    assert.ok(expected.length >= 3 * PER_NODE);
  } finally {
    for (const o of others) {
      await o.coffer.close();
      fs.rmSync(o.dataDir, { recursive: true, force: true });
    }
    await a.close();
  }
});
