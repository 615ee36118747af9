import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ClientSecretCredential } from '@azure/identity';
import { SecretClient } from '@azure/keyvault-secrets';
import { startCoffer } from '../../src/server.js';
import { seedTestCa, startTestServer } from '../support/server.js';
import { armClient } from '../support/arm.js';
import { freshDatabase, postgresSkipReason } from '../support/postgres.js';
import { startWebhook, waitFor } from '../support/webhook.js';

/**
 * Two Coffer nodes on one PostgreSQL database, both publishing into the shared outbox and both delivering (the
 * scheduler's lease holder, and each node's kick after its own writes): every event reaches the webhook exactly once,
 * and a failing webhook gets exactly maxDeliveryAttempts attempts in all. A subscription made through one node is
 * seen by the other's next write, though each caches whether a vault has subscriptions.
 */
test('two nodes deliver every event exactly once, and retry a failing webhook exactly maxDeliveryAttempts times', {
  skip: postgresSkipReason, timeout: 120_000,
}, async () => {
  const storageUrl = await freshDatabase();
  const hook = await startWebhook();
  const first = await startTestServer({ storageUrl, schedulerIntervalMs: 100, nodeId: 'events-node-1' });
  const secondDir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-test-'));
  seedTestCa(secondDir);
  fs.copyFileSync(path.join(first.dataDir, 'root.key'), path.join(secondDir, 'root.key'));
  const second = await startCoffer({
    host: '127.0.0.1', port: 0, dataDir: secondDir, dnsSuffix: 'vault.localhost', seal: 'file', logLevel: 'silent',
    storageUrl, schedulerIntervalMs: 100, nodeId: 'events-node-2',
  });
  try {
    await first.createVault('multievents');
    const vaultId = `/subscriptions/${first.admin.subscriptionId}/resourceGroups/rg-test/providers/Microsoft.KeyVault/vaults/multievents`;
    const arm = armClient(first, first.adminCredential);
    const subscribe = async (name: string, endpoint: string, extra: Record<string, unknown> = {}) => {
      const res = await arm('PUT', `${vaultId}/providers/Microsoft.EventGrid/eventSubscriptions/${name}`, {
        properties: { destination: { endpointType: 'WebHook', properties: { endpointUrl: `${hook.base}${endpoint}` } }, ...extra },
      }, '2022-06-15');
      assert.equal(res.status, 201, JSON.stringify(res.body));
    };
    // Each node's tokens come from its own authority (its issuer); both serve the same tenant from the database.
    const clientOn = (authorityHost: string, vaultUrl: string) => new SecretClient(vaultUrl, new ClientSecretCredential(
      first.admin.tenantId, first.admin.clientId, first.admin.clientSecret, { authorityHost, disableInstanceDiscovery: true }), { retryOptions: { maxRetries: 0 } });
    const clients = [
      clientOn(first.admin.authorityHost, first.vaultUrl('multievents')),
      clientOn(second.endpoints.authorityHost, second.endpoints.vaultUrl('multievents')),
    ];
    // Node 2 writes before there is any subscription, so it knows the vault has none (cached under the cache
    // generation); the subscriptions made through node 1 must still reach node 2's very next writes.
    await clients[1].setSecret('before-subscriptions', 'v');
    await subscribe('all', '/all');
    await subscribe('flaky', '/fail', { retryPolicy: { maxDeliveryAttempts: 2, eventTimeToLiveInMinutes: 60 } });

    const names = Array.from({ length: 20 }, (_, i) => `s${i}`);
    await Promise.all(names.map((name, i) => clients[i % 2].setSecret(name, 'v')));

    const delivered = () => hook.events('/all').filter((e) => e.eventType === 'Microsoft.KeyVault.SecretNewVersionCreated');
    await waitFor('20 events', () => delivered().length >= 20);
    // A few scheduler ticks on both nodes: nothing is delivered twice.
    await new Promise((r) => setTimeout(r, 1000));
    assert.deepEqual(delivered().map((e) => e.subject).sort(), [...names].sort());
    assert.equal(new Set(delivered().map((e) => e.id)).size, 20);

    // The failing webhook: the first attempt at once, the second after Event Grid's 10 s (the shared clock advanced).
    const failed = () => hook.received.filter((r) => r.path === '/fail' && r.headers['aeg-event-type'] === 'Notification');
    await waitFor('20 first attempts', () => failed().length >= 20);
    await arm('POST', '/coffer/admin/clock/advance', { advance: '11s' });
    await waitFor('20 second attempts', () => failed().length >= 40);
    await arm('POST', '/coffer/admin/clock/advance', { advance: '1h' });
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(failed().length, 40, 'exactly maxDeliveryAttempts (2) per event, across both nodes');
  } finally {
    await second.close();
    await first.close();
    await hook.close();
    fs.rmSync(secondDir, { recursive: true, force: true });
  }
});
