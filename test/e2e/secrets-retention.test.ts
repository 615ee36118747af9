import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { SecretClient } from '@azure/keyvault-secrets';
import { startTestServer, type TestServer } from '../support/server.js';
import { managementToken, rawRequest } from '../support/raw-http.js';
import { statusOf } from '../support/sdk-errors.js';

/**
 * Retention: a soft-deleted secret stays recoverable for its vault's retention period, and the background scheduler
 * purges it once the (administrator-advanced) service clock passes its scheduled purge date.
 */
let server: TestServer;
let client: SecretClient;
let shortClient: SecretClient;

before(async () => {
  // A long tick: every purge below is the scheduler's job run by the clock advance, not a lucky background tick.
  server = await startTestServer({ schedulerIntervalMs: 3_600_000 });
  await server.createVault('retentionvault');
  await server.createVault('shortretention', { softDeleteRetentionInDays: 7 });
  client = server.secretClient('retentionvault');
  shortClient = server.secretClient('shortretention');
});
after(() => server.close());

async function advanceClock(advance: string) {
  const res = await rawRequest(`${server.admin.managementEndpoint}/coffer/admin/clock/advance`, {
    method: 'POST', token: await managementToken(server), body: { advance },
  });
  assert.equal(res.status, 200, res.text);
  return res.json as { now: string; offsetMs: number };
}

test('a deleted secret stays recoverable through its retention, then the scheduler purges it', async () => {
  await client.setSecret('doomed', 'short-lived');
  await client.setSecret('rescued', 'saved in time');
  await client.setSecret('bystander', 'still here');
  const deleted = await (await client.beginDeleteSecret('doomed')).pollUntilDone();
  await (await client.beginDeleteSecret('rescued')).pollUntilDone();
  assert.equal(deleted.scheduledPurgeDate!.getTime() - deleted.deletedOn!.getTime(), 90 * 86_400_000);

  // 89 days later: still in the recycle bin, still recoverable.
  await advanceClock('89d');
  assert.equal((await client.getDeletedSecret('doomed')).name, 'doomed');
  await (await client.beginRecoverDeletedSecret('rescued')).pollUntilDone();
  assert.equal((await client.getSecret('rescued')).value, 'saved in time');

  // Two more days: past the scheduled purge date; the advance ran the scheduler, which purged it.
  const { now } = await advanceClock('2d');
  assert.ok(new Date(now) > deleted.scheduledPurgeDate!);
  assert.equal(await statusOf(() => client.getDeletedSecret('doomed')), 404);
  assert.equal(await statusOf(() => client.beginRecoverDeletedSecret('doomed').then((p) => p.pollUntilDone())), 404);
  const binned = [];
  for await (const d of client.listDeletedSecrets()) binned.push(d.name);
  assert.ok(!binned.includes('doomed'));

  // The name is free again; live secrets and the one recovered in time are untouched.
  const reborn = await client.setSecret('doomed', 'second life');
  const versions = [];
  for await (const v of client.listPropertiesOfSecretVersions('doomed')) versions.push(v.version);
  assert.deepEqual(versions, [reborn.properties.version]);
  assert.equal((await client.getSecret('bystander')).value, 'still here');
  assert.equal((await client.getSecret('rescued')).value, 'saved in time');
});

test('a vault with a 7-day retention purges after 7 days, and reports its recovery level', async () => {
  const set = await shortClient.setSecret('weekly', 'v');
  assert.equal(set.properties.recoverableDays, 7);
  assert.equal(set.properties.recoveryLevel, 'CustomizedRecoverable+Purgeable');
  const deleted = await (await shortClient.beginDeleteSecret('weekly')).pollUntilDone();
  assert.equal(deleted.scheduledPurgeDate!.getTime() - deleted.deletedOn!.getTime(), 7 * 86_400_000);
  await advanceClock('6d');
  assert.equal((await shortClient.getDeletedSecret('weekly')).name, 'weekly');
  await advanceClock('1d1h');
  assert.equal(await statusOf(() => shortClient.getDeletedSecret('weekly')), 404);
});

test('only the administrator can advance the clock, and a bad duration is 400', async () => {
  const token = await managementToken(server);
  const url = `${server.admin.managementEndpoint}/coffer/admin/clock/advance`;
  const bad = await rawRequest(url, { method: 'POST', token, body: { advance: 'soon' } });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.code, 'BadParameter');
  const anonymous = await rawRequest(url, { method: 'POST', token: null, body: { advance: '1d' } });
  assert.equal(anonymous.status, 401);
});
