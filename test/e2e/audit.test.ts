import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { startTestServer } from '../support/server.js';
import { createPrincipal, secretClientAs } from '../support/arm.js';

test('audit: one durable record per request, with the authorization decision and no secret value', async () => {
  const server = await startTestServer();
  try {
    await server.createVault('auditvault');
    const admin = server.secretClient('auditvault');
    const marker = 'audit-value-marker-8f2c1e';
    await admin.setSecret('audited', marker);
    await admin.getSecret('audited');
    const stranger = await createPrincipal(server, 'audit-stranger');
    await assert.rejects(secretClientAs(server, 'auditvault', stranger.credential).getSecret('audited'), (e: any) => e.statusCode === 403);

    const rows = await server.coffer.storage.db.selectFrom('audit_events').select('record').orderBy('seq').execute();
    const events = rows.map((r) => JSON.parse(r.record));
    const gets = events.filter((e) => e.operationName === 'SecretGet' && e.resultSignature !== 'Unauthorized');
    const allowed = gets.find((e) => e.resultType === 'Success');
    const denied = gets.find((e) => e.resultSignature === 'Forbidden');
    assert.ok(allowed && denied, 'both the allowed and the denied read are recorded');
    assert.equal(allowed.properties.isRbacAuthorized, true);
    assert.equal(denied.properties.isRbacAuthorized, false);
    assert.equal(denied.identity.claim.oid, stranger.objectId);
    assert.equal(denied.identity.claim.appid, stranger.appId);
    assert.equal(denied.properties.httpStatusCode, 403);
    assert.match(denied.resultDescription, /Caller is not authorized/);
    assert.equal(allowed.resultSignature, 'OK');
    assert.equal(allowed.resultDescription, undefined);
    assert.equal(allowed.operationVersion, '2025-07-01');
    assert.equal(allowed.properties.id, `${server.vaultUrl('auditvault')}/secrets/audited`);
    assert.match(allowed.resourceId, /\/providers\/Microsoft\.KeyVault\/vaults\/auditvault$/);
    assert.ok(events.some((e) => e.operationName === 'SecretSet' && e.resultType === 'Success'));
    const challenge = events.find((e) => e.operationName === 'SecretGet' && e.resultSignature === 'Unauthorized');
    assert.ok(challenge, 'the unauthenticated challenge round is audited too');
    assert.match(challenge.resourceId, /\/vaults\/auditvault$/, 'a 401 (before the vault step) still names its vault');
    const vaultPut = events.find((e) => e.operationName === 'VaultPut');
    assert.ok(vaultPut, 'control-plane requests are audited');
    assert.match(vaultPut.resourceId, /\/providers\/Microsoft\.KeyVault\/vaults\/auditvault$/);
    assert.equal(vaultPut.operationVersion, '2025-05-01');
    assert.ok(events.some((e) => e.operationName === 'Authentication' && e.resultType === 'Success'), 'token requests are audited');
    const everything = rows.map((r) => r.record).join('\n');
    assert.ok(!everything.includes(marker), 'no secret value in audit records');
    assert.ok(!everything.includes(server.admin.clientSecret), 'no client secret in audit records');
    assert.ok(!/eyJ[\w-]+\.[\w-]+\./.test(everything), 'no bearer token in audit records');
  } finally {
    await server.close();
  }
});

test('audit: throttled (429) requests are recorded as TooManyRequests, with the message they were answered with', async () => {
  // 0.001 × Azure's 4,000 secret reads per 10 s: a budget of 4.
  const server = await startTestServer({ throttle: 0.001 });
  try {
    await server.createVault('auditthrottle');
    const client = server.secretClient('auditthrottle');
    await client.setSecret('s', 'v');
    let throttled = 0;
    for (let i = 0; i < 12; i++) await client.getSecret('s').catch((e: any) => { if (e.statusCode === 429) throttled++; });
    assert.ok(throttled > 0);
    const rows = await server.coffer.storage.db.selectFrom('audit_events').select('record').execute();
    const records = rows.map((r) => JSON.parse(r.record)).filter((e) => e.resultSignature === 'TooManyRequests');
    assert.equal(records.length, throttled);
    assert.ok(records.every((e) => e.operationName === 'SecretGet' && e.resultType === 'Failure' && e.properties.httpStatusCode === 429 && e.resultDescription));
  } finally {
    await server.close();
  }
});

test('audit: fail closed — a response whose record cannot be written is withheld (503), never sent unaudited', async () => {
  const server = await startTestServer();
  const db = server.coffer.storage.db;
  try {
    await server.createVault('auditfailclosed');
    const client = server.secretClient('auditfailclosed');
    const marker = 'fail-closed-value-3e7a';
    await client.setSecret('s', marker);
    // (The token first: token requests are audited too, so they would be withheld as well.)
    const token = await server.adminCredential.getToken('https://vault.localhost/.default');
    await sql`alter table audit_events rename to audit_events_unavailable`.execute(db);
    for (const auth of [{ authorization: `Bearer ${token!.token}` }, {}] as Record<string, string>[]) {
      const res = await fetch(`${server.vaultUrl('auditfailclosed')}/secrets/s?api-version=7.4`, { headers: auth });
      const text = await res.text();
      assert.equal(res.status, 503);
      assert.equal(JSON.parse(text).error.code, 'ServiceUnavailable');
      assert.ok(!text.includes(marker) && !/sqlite|audit_events|relation/i.test(text), text);
    }
  } finally {
    await sql`alter table audit_events_unavailable rename to audit_events`.execute(db);
    await server.close();
  }
});
