import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { KeyClient } from '@azure/keyvault-keys';
import { CertificateClient } from '@azure/keyvault-certificates';
import { startTestServer, type TestServer } from '../support/server.js';
import { armClient, createPrincipal } from '../support/arm.js';
import { managementToken, rawRequest } from '../support/raw-http.js';
import { startWebhook, waitFor, type Webhook } from '../support/webhook.js';
import { withEventTables } from '../../src/events/tables.js';

/**
 * Event Grid end to end: a real HTTPS webhook receiver subscribes to a vault in both schemas, passes the validation
 * handshakes, and receives each Key Vault event type — new versions of secrets, keys (incl. rotation) and certificates,
 * near-expiry and expiry under the advanced clock, access-policy changes. A failing receiver gets Event Grid's retries,
 * then a dead-letter record.
 */
const EVENTGRID = '2022-06-15';
const SECRET_VALUE = 'never-in-an-event-7f3a9c';


async function advanceClock(server: TestServer, advance: string) {
  const res = await rawRequest(`${server.admin.managementEndpoint}/coffer/admin/clock/advance`, {
    method: 'POST', token: await managementToken(server), body: { advance },
  });
  assert.equal(res.status, 200, res.text);
}

const vaultId = (server: TestServer, vault: string) =>
  `/subscriptions/${server.admin.subscriptionId}/resourceGroups/rg-test/providers/Microsoft.KeyVault/vaults/${vault}`;

function subscriptionBody(endpointUrl: string, extra: Record<string, unknown> = {}) {
  return { properties: { destination: { endpointType: 'WebHook', properties: { endpointUrl } }, ...extra } };
}

let server: TestServer;
let hook: Webhook;
let arm: ReturnType<typeof armClient>;
const VAULT = 'eventsvault';

before(async () => {
  server = await startTestServer();
  // HTTPS with Coffer's own server certificate (issued by the test CA, for 127.0.0.1), which Coffer trusts through
  // NODE_EXTRA_CA_CERTS like any webhook's; the CLI test covers plain http:// on loopback.
  const tlsFile = (name: string) => fs.readFileSync(path.join(server.dataDir, 'tls', name), 'utf8');
  hook = await startWebhook({ tls: { cert: tlsFile('server.crt'), key: tlsFile('server.key') } });
  arm = armClient(server, server.adminCredential);
  await server.createVault(VAULT);
});
after(async () => {
  await server?.close();
  await hook?.close();
});

const subscriptionPath = (vault: string, name = '') => `${vaultId(server, vault)}/providers/Microsoft.EventGrid/eventSubscriptions${name ? `/${name}` : ''}`;
const ofType = (prefix: string, type: string) => hook.events(prefix).filter((e) => (e.eventType ?? e.type) === `Microsoft.KeyVault.${type}`);

test('subscriptions: validation handshakes in both schemas, then GET/LIST show them provisioned', async () => {
  const eg = await arm('PUT', subscriptionPath(VAULT, 'eg-sub'), subscriptionBody(`${hook.base}/eg?code=hidden`), EVENTGRID);
  assert.equal(eg.status, 201, JSON.stringify(eg.body));
  assert.equal(eg.body.properties.provisioningState, 'Succeeded');
  assert.equal(eg.body.properties.eventDeliverySchema, 'EventGridSchema');
  // The full URL (its query may carry a key) is never returned: only the base.
  assert.equal(eg.body.properties.destination.properties.endpointBaseUrl, `${hook.base}/eg`);
  assert.ok(!JSON.stringify(eg.body).includes('hidden'));
  const validation = hook.received.find((r) => r.path.startsWith('/eg') && r.headers['aeg-event-type'] === 'SubscriptionValidation');
  assert.equal(JSON.parse(validation!.body)[0].eventType, 'Microsoft.EventGrid.SubscriptionValidationEvent');

  const ce = await arm('PUT', subscriptionPath(VAULT, 'ce-sub'), subscriptionBody(`${hook.base}/ce`, { eventDeliverySchema: 'CloudEventSchemaV1_0' }), EVENTGRID);
  assert.equal(ce.status, 201, JSON.stringify(ce.body));
  assert.equal(ce.body.properties.provisioningState, 'Succeeded');
  const options = hook.received.find((r) => r.path === '/ce' && r.method === 'OPTIONS');
  assert.equal(options!.headers['webhook-request-origin'], 'eventgrid.azure.net');

  const shown = await arm('GET', subscriptionPath(VAULT, 'eg-sub'), undefined, EVENTGRID);
  assert.equal(shown.status, 200);
  assert.equal(shown.body.properties.topic, vaultId(server, VAULT));
  assert.deepEqual(shown.body.properties.retryPolicy, { maxDeliveryAttempts: 30, eventTimeToLiveInMinutes: 1440 });
  const list = await arm('GET', subscriptionPath(VAULT), undefined, EVENTGRID);
  assert.deepEqual(list.body.value.map((s: { name: string }) => s.name), ['ce-sub', 'eg-sub']);
});

test('a secret version is published in both schemas with Azure\'s payload, never its value', async () => {
  const exp = new Date(Date.now() + 40 * 86_400_000);
  const secret = await server.secretClient(VAULT).setSecret('db-password', SECRET_VALUE, { expiresOn: exp });
  const [eg] = await waitFor('SecretNewVersionCreated (Event Grid)', () => { const e = ofType('/eg', 'SecretNewVersionCreated'); return e.length && e; });
  assert.equal(eg.topic, vaultId(server, VAULT));
  assert.equal(eg.subject, 'db-password');
  assert.equal(eg.dataVersion, '1');
  assert.equal(eg.metadataVersion, '1');
  assert.deepEqual(eg.data, {
    Id: `${server.vaultUrl(VAULT)}/secrets/db-password/${secret.properties.version}`, VaultName: VAULT, ObjectType: 'Secret',
    ObjectName: 'db-password', Version: secret.properties.version, NBF: null, EXP: Math.floor(exp.getTime() / 1000),
  });
  const [ce] = await waitFor('SecretNewVersionCreated (CloudEvents)', () => { const e = ofType('/ce', 'SecretNewVersionCreated'); return e.length && e; });
  assert.equal(ce.specversion, '1.0');
  assert.equal(ce.source, vaultId(server, VAULT));
  assert.equal(ce.subject, 'db-password');
  assert.ok(ce.id && ce.time);
  assert.deepEqual(ce.data, eg.data);
  assert.equal(ce.id, eg.id, 'one event, the same id for every subscription');
  const ceRequest = hook.received.find((r) => r.path === '/ce' && r.method === 'POST');
  assert.match(String(ceRequest!.headers['content-type']), /^application\/cloudevents\+json/);
});

test('keys: create and rotation publish KeyNewVersionCreated', async () => {
  const keys = new KeyClient(server.vaultUrl(VAULT), server.adminCredential, { retryOptions: { maxRetries: 0 } });
  const created = await keys.createKey('signing', 'EC');
  const rotated = await keys.rotateKey('signing');
  for (const prefix of ['/eg', '/ce']) {
    const versions = await waitFor(`two KeyNewVersionCreated on ${prefix}`, () => { const e = ofType(prefix, 'KeyNewVersionCreated'); return e.length >= 2 && e; });
    assert.deepEqual(versions.map((e) => e.data.Version), [created.properties.version, rotated.properties.version]);
    assert.equal(versions[0].data.ObjectType, 'Key');
    assert.equal(versions[0].data.Id, `${server.vaultUrl(VAULT)}/keys/signing/${created.properties.version}`);
  }
});

test('certificates: a new version publishes CertificateNewVersionCreated (not its managed key or secret)', async () => {
  const certificates = new CertificateClient(server.vaultUrl(VAULT), server.adminCredential, { retryOptions: { maxRetries: 0 } });
  const poller = await certificates.beginCreateCertificate('web', { issuerName: 'Self', subject: 'CN=web.example' }, { intervalInMs: 100 });
  const certificate = await poller.pollUntilDone();
  for (const prefix of ['/eg', '/ce']) {
    const [event] = await waitFor(`CertificateNewVersionCreated on ${prefix}`, () => { const e = ofType(prefix, 'CertificateNewVersionCreated'); return e.length && e; });
    assert.equal(event.data.ObjectName, 'web');
    assert.equal(event.data.Version, certificate.properties.version);
    assert.equal(typeof event.data.EXP, 'number');
  }
  assert.ok(!hook.events('/eg').some((e) => e.subject === 'web' && e.eventType !== 'Microsoft.KeyVault.CertificateNewVersionCreated'));
});

test('access-policy changes publish VaultAccessPolicyChanged', async () => {
  const res = await arm('PUT', `${vaultId(server, VAULT)}/accessPolicies/add`, {
    properties: { accessPolicies: [{ tenantId: server.admin.tenantId, objectId: server.admin.objectId, permissions: { secrets: ['get'] } }] },
  }, '2025-05-01');
  assert.equal(res.status, 200, JSON.stringify(res.body));
  for (const prefix of ['/eg', '/ce']) {
    const [event] = await waitFor(`VaultAccessPolicyChanged on ${prefix}`, () => { const e = ofType(prefix, 'VaultAccessPolicyChanged'); return e.length && e; });
    assert.equal(event.data.VaultName, VAULT);
    assert.equal(event.data.ObjectType, 'Vault');
    assert.equal(event.subject, VAULT);
  }
});

test('near-expiry 30 days before exp and expiry at exp, once per version, under the advanced clock', async () => {
  // db-password expires in 40 days: nothing yet.
  assert.equal(ofType('/eg', 'SecretNearExpiry').length, 0);
  await advanceClock(server, '11d');
  for (const prefix of ['/eg', '/ce']) {
    const [near] = await waitFor(`SecretNearExpiry on ${prefix}`, () => { const e = ofType(prefix, 'SecretNearExpiry'); return e.length && e; });
    assert.equal(near.data.ObjectName, 'db-password');
  }
  await advanceClock(server, '1d');
  await advanceClock(server, '30d');
  for (const prefix of ['/eg', '/ce']) {
    const [expired] = await waitFor(`SecretExpired on ${prefix}`, () => { const e = ofType(prefix, 'SecretExpired'); return e.length && e; });
    assert.equal(expired.data.ObjectName, 'db-password');
  }
  await advanceClock(server, '1d');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(ofType('/eg', 'SecretNearExpiry').filter((e) => e.subject === 'db-password').length, 1);
  assert.equal(ofType('/eg', 'SecretExpired').filter((e) => e.subject === 'db-password').length, 1);
  // The self-signed certificate (12 months) and the keys have no near exp yet; a key with one does.
  const keys = new KeyClient(server.vaultUrl(VAULT), server.adminCredential, { retryOptions: { maxRetries: 0 } });
  await keys.createKey('short-lived', 'EC', { expiresOn: new Date(Date.now() + (43 + 10) * 86_400_000) });
  await advanceClock(server, '1d');
  await waitFor('KeyNearExpiry', () => ofType('/ce', 'KeyNearExpiry').find((e) => e.data.ObjectName === 'short-lived'));
});

test('the scheduler\'s key rotation and certificate renewal publish their new versions', async () => {
  const keys = new KeyClient(server.vaultUrl(VAULT), server.adminCredential, { retryOptions: { maxRetries: 0 } });
  const certificates = new CertificateClient(server.vaultUrl(VAULT), server.adminCredential, { retryOptions: { maxRetries: 0 } });
  const key = await keys.createKey('by-policy', 'EC');
  await keys.updateKeyRotationPolicy('by-policy', { expiresIn: 'P90D', lifetimeActions: [{ action: 'Rotate', timeAfterCreate: 'P30D' }] });
  const cert = await (await certificates.beginCreateCertificate('renewing', {
    issuerName: 'Self', subject: 'CN=renewing', validityInMonths: 1, lifetimeActions: [{ action: 'AutoRenew', lifetimePercentage: 50 }],
  }, { intervalInMs: 100 })).pollUntilDone();
  await advanceClock(server, '31d');
  const rotated = await waitFor('the rotation\'s KeyNewVersionCreated', () =>
    ofType('/eg', 'KeyNewVersionCreated').find((e) => e.subject === 'by-policy' && e.data.Version !== key.properties.version));
  assert.equal(rotated.data.Version, (await keys.getKey('by-policy')).properties.version);
  const renewed = await waitFor('the renewal\'s CertificateNewVersionCreated', () =>
    ofType('/ce', 'CertificateNewVersionCreated').find((e) => e.subject === 'renewing' && e.data.Version !== cert.properties.version));
  assert.equal(renewed.data.Version, (await certificates.getCertificate('renewing')).properties.version);
});

test('certificates and keys: NearExpiry and Expired too', async () => {
  const certificates = new CertificateClient(server.vaultUrl(VAULT), server.adminCredential, { retryOptions: { maxRetries: 0 } });
  const cert = await (await certificates.beginCreateCertificate('short-cert', {
    issuerName: 'Self', subject: 'CN=short', validityInMonths: 1, lifetimeActions: [{ action: 'EmailContacts', lifetimePercentage: 90 }],
  }, { intervalInMs: 100 })).pollUntilDone();
  await advanceClock(server, '3d');
  const near = await waitFor('CertificateNearExpiry', () => ofType('/eg', 'CertificateNearExpiry').find((e) => e.subject === 'short-cert'));
  assert.equal(near.data.Version, cert.properties.version);
  assert.equal(near.data.EXP, Math.floor(cert.properties.expiresOn!.getTime() / 1000));
  await advanceClock(server, '31d');
  await waitFor('CertificateExpired', () => ofType('/ce', 'CertificateExpired').find((e) => e.subject === 'short-cert'));
  // short-lived (created above with exp 53 days after the real now) is past its exp by now.
  await waitFor('KeyExpired', () => ofType('/eg', 'KeyExpired').find((e) => e.subject === 'short-lived'));
});

test('filters: includedEventTypes admits only the types listed', async () => {
  const res = await arm('PUT', subscriptionPath(VAULT, 'only-keys'), subscriptionBody(`${hook.base}/only-keys`, {
    filter: { includedEventTypes: ['Microsoft.KeyVault.KeyNewVersionCreated'] },
  }), EVENTGRID);
  assert.equal(res.status, 201);
  await server.secretClient(VAULT).setSecret('filtered-out', 'x');
  const keys = new KeyClient(server.vaultUrl(VAULT), server.adminCredential, { retryOptions: { maxRetries: 0 } });
  await keys.createKey('filtered-in', 'EC');
  await waitFor('the key event', () => hook.events('/only-keys').find((e) => e.subject === 'filtered-in'));
  assert.ok(!hook.events('/only-keys').some((e) => e.subject === 'filtered-out'));
});

test('bad subscriptions are Azure-shaped 400s that store nothing', async () => {
  const silent = await arm('PUT', subscriptionPath(VAULT, 'silent'), subscriptionBody(`${hook.base}/silent`), EVENTGRID);
  assert.equal(silent.status, 400);
  assert.equal(silent.body.error.code, 'Url validation');
  assert.match(silent.body.error.message, /Webhook validation handshake failed/);
  const silentCe = await arm('PUT', subscriptionPath(VAULT, 'silent-ce'), subscriptionBody(`${hook.base}/silent`, { eventDeliverySchema: 'CloudEventSchemaV1_0' }), EVENTGRID);
  assert.equal(silentCe.status, 400);
  const remoteHttp = await arm('PUT', subscriptionPath(VAULT, 'remote'), subscriptionBody('http://example.com/hook'), EVENTGRID);
  assert.equal(remoteHttp.status, 400);
  assert.match(remoteHttp.body.error.message, /https/);
  const badType = await arm('PUT', subscriptionPath(VAULT, 'badtype'), subscriptionBody(`${hook.base}/eg`, { filter: { includedEventTypes: ['Microsoft.Storage.BlobCreated'] } }), EVENTGRID);
  assert.equal(badType.status, 400);
  const badRetry = await arm('PUT', subscriptionPath(VAULT, 'badretry'), subscriptionBody(`${hook.base}/eg`, { retryPolicy: { maxDeliveryAttempts: 31 } }), EVENTGRID);
  assert.equal(badRetry.status, 400);
  const badName = await arm('PUT', subscriptionPath(VAULT, 'no_underscores'), subscriptionBody(`${hook.base}/eg`), EVENTGRID);
  assert.equal(badName.status, 400);
  for (const name of ['silent', 'silent-ce', 'remote', 'badtype', 'badretry']) {
    assert.equal((await arm('GET', subscriptionPath(VAULT, name), undefined, EVENTGRID)).status, 404, name);
  }
});

test('only callers holding Microsoft.EventGrid/eventSubscriptions/* at the vault manage its subscriptions', async () => {
  const stranger = await createPrincipal(server, 'events-stranger');
  const strangerArm = armClient(server, stranger.credential);
  const put = await strangerArm('PUT', subscriptionPath(VAULT, 'sneaky'), subscriptionBody(`${hook.base}/eg`), EVENTGRID);
  assert.equal(put.status, 403);
  assert.equal(put.body.error.code, 'AuthorizationFailed');
  assert.match(put.body.error.message, /Microsoft\.EventGrid\/eventSubscriptions\/write/);
  assert.equal((await strangerArm('GET', subscriptionPath(VAULT), undefined, EVENTGRID)).status, 403);
  assert.equal((await strangerArm('POST', `${subscriptionPath(VAULT, 'eg-sub')}/getFullUrl`, undefined, EVENTGRID)).status, 403);
  assert.equal((await strangerArm('DELETE', subscriptionPath(VAULT, 'eg-sub'), undefined, EVENTGRID)).status, 403);
  assert.equal((await arm('GET', subscriptionPath(VAULT, 'eg-sub'), undefined, EVENTGRID)).status, 200);
  assert.equal((await arm('GET', subscriptionPath(VAULT, 'sneaky'), undefined, EVENTGRID)).status, 404);
});

test('no secret value appears in any delivered request', () => {
  for (const r of hook.received) assert.ok(!r.body.includes(SECRET_VALUE), `${r.method} ${r.path} carried the value`);
});

test('delete removes a subscription: no more events for it', async () => {
  const del = await arm('DELETE', subscriptionPath(VAULT, 'only-keys'), undefined, EVENTGRID);
  assert.equal(del.status, 200);
  assert.equal((await arm('DELETE', subscriptionPath(VAULT, 'only-keys'), undefined, EVENTGRID)).status, 204);
  const before = hook.events('/only-keys').length;
  const keys = new KeyClient(server.vaultUrl(VAULT), server.adminCredential, { retryOptions: { maxRetries: 0 } });
  await keys.createKey('after-delete', 'EC');
  await waitFor('the key event elsewhere', () => ofType('/eg', 'KeyNewVersionCreated').find((e) => e.subject === 'after-delete'));
  assert.equal(hook.events('/only-keys').length, before);
});

test('purging a vault removes its subscriptions', async () => {
  await server.createVault('purgedevents');
  assert.equal((await arm('PUT', subscriptionPath('purgedevents', 'doomed'), subscriptionBody(`${hook.base}/eg`), EVENTGRID)).status, 201);
  const vaultPath = `/subscriptions/${server.admin.subscriptionId}/resourceGroups/rg-test/providers/Microsoft.KeyVault/vaults/purgedevents`;
  assert.equal((await arm('DELETE', vaultPath, undefined, '2025-05-01')).status, 200);
  const purge = await arm('POST', `/subscriptions/${server.admin.subscriptionId}/providers/Microsoft.KeyVault/locations/local/deletedVaults/purgedevents/purge`, undefined, '2025-05-01');
  assert.equal(purge.status, 200, JSON.stringify(purge.body));
  await advanceClock(server, '2m');
  const left = await withEventTables(server.coffer.storage.db).selectFrom('event_subscriptions').select('name').where('name', '=', 'doomed').execute();
  assert.deepEqual(left, []);
});

test('a failing webhook gets retries with back-off, then a dead-letter record', async () => {
  // Its own Coffer: the clock advances drive the retry schedule.
  const other = await startTestServer();
  try {
    await other.createVault('deadvault');
    const otherArm = armClient(other, other.adminCredential);
    const storageAccount = `/subscriptions/${other.admin.subscriptionId}/resourceGroups/rg-test/providers/Microsoft.Storage/storageAccounts/deadletters`;
    const put = await otherArm('PUT', `${vaultId(other, 'deadvault')}/providers/Microsoft.EventGrid/eventSubscriptions/flaky`, subscriptionBody(`${hook.base}/fail`, {
      retryPolicy: { maxDeliveryAttempts: 3, eventTimeToLiveInMinutes: 60 },
      deadLetterDestination: { endpointType: 'StorageBlob', properties: { resourceId: storageAccount, blobContainerName: 'events' } },
    }), EVENTGRID);
    assert.equal(put.status, 201, JSON.stringify(put.body));
    const attempts = () => hook.received.filter((r) => r.path === '/fail' && r.headers['aeg-event-type'] === 'Notification');
    await other.secretClient('deadvault').setSecret('unlucky', SECRET_VALUE);
    await waitFor('the first attempt', () => attempts().length === 1);
    // Event Grid waits 10 s, then 30 s: nothing is retried early.
    await advanceClock(other, '5s');
    assert.equal(attempts().length, 1);
    await advanceClock(other, '6s');
    await waitFor('the second attempt', () => attempts().length === 2);
    await advanceClock(other, '31s');
    await waitFor('the third attempt', () => attempts().length === 3);
    assert.deepEqual(attempts().map((r) => r.headers['aeg-delivery-count']), ['0', '1', '2']);
    const file = path.join(other.dataDir, 'deadletter', 'deadletters', 'events', 'deadvault', 'flaky.jsonl');
    const record = await waitFor('the dead-letter record', () => fs.existsSync(file) && fs.readFileSync(file, 'utf8').trim());
    const [dead] = record.split('\n').map((l) => JSON.parse(l));
    assert.equal(dead.eventType, 'Microsoft.KeyVault.SecretNewVersionCreated');
    assert.equal(dead.subject, 'unlucky');
    assert.equal(dead.deadLetterReason, 'MaxDeliveryAttemptsExceeded');
    assert.equal(dead.deliveryAttempts, 3);
    assert.equal(dead.lastHttpStatusCode, 500);
    assert.ok(!record.includes(SECRET_VALUE));
    // Given up: no fourth attempt.
    await advanceClock(other, '1h');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(attempts().length, 3);
  } finally {
    await other.close();
  }
});
