import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startTestServer, type TestServer } from '../support/server.js';
import { cliRunner } from '../support/cli.js';
import { startWebhook, waitFor, type Webhook } from '../support/webhook.js';

/**
 * `coffer eventgrid event-subscription create|show|list|delete` end to end: the built CLI, as the bootstrap
 * administrator, against a real Coffer and a real webhook receiver.
 */
let server: TestServer;
let hook: Webhook;
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-cli-events-test-'));
const { ok, json, fails } = cliRunner(scratch, () => ({ COFFER_CONFIG_DIR: path.join(scratch, 'no-login'), COFFER_DATA_DIR: server.dataDir }));
const VAULT = 'clieventsvault';
const vaultId = () => `/subscriptions/${server.admin.subscriptionId}/resourceGroups/rg-test/providers/Microsoft.KeyVault/vaults/${VAULT}`;

before(async () => {
  server = await startTestServer();
  hook = await startWebhook();
  await server.createVault(VAULT);
});

after(async () => {
  await server?.close();
  await hook?.close();
  fs.rmSync(scratch, { recursive: true, force: true });
});

test('create, show, update, list and delete an event subscription (az 2.45 shapes)', async () => {
  const deadLetterContainer = `/subscriptions/${server.admin.subscriptionId}/resourceGroups/rg-test/providers/Microsoft.Storage/storageAccounts/cliletters/blobServices/default/containers/dead`;
  const created = await json(['eventgrid', 'event-subscription', 'create', '--source-resource-id', vaultId(), '--name', 'cli-sub',
    '--endpoint', `${hook.base}/cli?key=hidden`, '--included-event-types', 'Microsoft.KeyVault.SecretNewVersionCreated', 'Microsoft.KeyVault.SecretNearExpiry',
    '--event-delivery-schema', 'cloudeventschemav1_0', '--max-delivery-attempts', '5', '--event-ttl', '60', '--deadletter-endpoint', deadLetterContainer]);
  assert.equal(created.id, `${vaultId()}/providers/Microsoft.EventGrid/eventSubscriptions/cli-sub`);
  assert.equal(created.name, 'cli-sub');
  assert.equal(created.type, 'Microsoft.EventGrid/eventSubscriptions');
  assert.equal(created.resourceGroup, 'rg-test');
  assert.equal(created.provisioningState, 'Succeeded');
  assert.equal(created.topic, vaultId());
  assert.equal(created.eventDeliverySchema, 'CloudEventSchemaV1_0');
  assert.equal(created.destination.endpointType, 'WebHook');
  assert.equal(created.destination.endpointBaseUrl, `${hook.base}/cli`);
  assert.equal(created.destination.endpointUrl, null);
  assert.deepEqual(created.filter.includedEventTypes, ['Microsoft.KeyVault.SecretNewVersionCreated', 'Microsoft.KeyVault.SecretNearExpiry']);
  assert.deepEqual(created.retryPolicy, { maxDeliveryAttempts: 5, eventTimeToLiveInMinutes: 60 });
  assert.deepEqual(created.deadLetterDestination, {
    endpointType: 'StorageBlob', resourceId: deadLetterContainer.replace(/\/blobServices\/.*$/, ''), blobContainerName: 'dead',
  });
  assert.ok(hook.received.some((r) => r.path.startsWith('/cli') && r.method === 'OPTIONS'), 'the CloudEvents handshake happened');

  assert.deepEqual(await json(['eventgrid', 'event-subscription', 'show', '--source-resource-id', vaultId(), '-n', 'cli-sub']), created);
  const full = await json(['eventgrid', 'event-subscription', 'show', '--source-resource-id', vaultId(), '-n', 'cli-sub', '--include-full-endpoint-url']);
  assert.equal(full.destination.endpointUrl, `${hook.base}/cli?key=hidden`);
  assert.deepEqual(await json(['eventgrid', 'event-subscription', 'list', '--source-resource-id', vaultId()]), [created]);

  const updated = await json(['eventgrid', 'event-subscription', 'update', '--source-resource-id', vaultId(), '-n', 'cli-sub',
    '--included-event-types', 'Microsoft.KeyVault.SecretNewVersionCreated', '--labels', 'team-a']);
  assert.deepEqual(updated.filter.includedEventTypes, ['Microsoft.KeyVault.SecretNewVersionCreated']);
  assert.deepEqual(updated.labels, ['team-a']);
  assert.deepEqual({ ...updated, filter: created.filter, labels: created.labels }, created, 'everything else kept');
  const kept = await json(['eventgrid', 'event-subscription', 'show', '--source-resource-id', vaultId(), '-n', 'cli-sub', '--include-full-endpoint-url']);
  assert.equal(kept.destination.endpointUrl, `${hook.base}/cli?key=hidden`);

  await ok(['keyvault', 'secret', 'set', '--vault-name', VAULT, '-n', 'from-cli', '--value', 'cli-value-not-in-events']);
  const event = await waitFor('the CloudEvent', () => hook.events('/cli').find((e) => e.subject === 'from-cli'));
  assert.equal(event.type, 'Microsoft.KeyVault.SecretNewVersionCreated');
  assert.equal(event.specversion, '1.0');
  assert.ok(!JSON.stringify(hook.received).includes('cli-value-not-in-events'));

  const deleted = await ok(['eventgrid', 'event-subscription', 'delete', '--source-resource-id', vaultId(), '--name', 'cli-sub']);
  assert.equal(deleted.stdout, '');
  assert.deepEqual(await json(['eventgrid', 'event-subscription', 'list', '--source-resource-id', vaultId()]), []);
  await fails(['eventgrid', 'event-subscription', 'show', '--source-resource-id', vaultId(), '--name', 'cli-sub'], 3, /ResourceNotFound|not found/i);
});

test('bad arguments: az-style usage errors and Azure-shaped service errors', async () => {
  await fails(['eventgrid', 'event-subscription', 'create', '--source-resource-id', vaultId(), '--name', 'x1', '--endpoint', `${hook.base}/eg`,
    '--event-delivery-schema', 'custominputschema'], 2, /--event-delivery-schema/);
  await fails(['eventgrid', 'event-subscription', 'create', '--source-resource-id', vaultId(), '--name', 'x2', '--endpoint', `${hook.base}/eg`,
    '--deadletter-endpoint', 'not-a-container'], 2, /deadletter-endpoint/);
  await fails(['eventgrid', 'event-subscription', 'create', '--source-resource-id', '/subscriptions/x', '--name', 'x3', '--endpoint', `${hook.base}/eg`], 2, /source-resource-id/);
  await fails(['eventgrid', 'event-subscription', 'create', '--source-resource-id', vaultId(), '--name', 'bad-4', '--endpoint', `${hook.base}/silent`], 1, /Webhook validation handshake failed/);
  await fails(['eventgrid', 'event-subscription', 'create', '--source-resource-id', vaultId(), '--name', 'bad-5', '--endpoint', 'http://example.com/hook'], 1, /https/);
  assert.deepEqual(await json(['eventgrid', 'event-subscription', 'list', '--source-resource-id', vaultId()]), []);
});
