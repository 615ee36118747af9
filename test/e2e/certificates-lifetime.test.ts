import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { CertificateClient, type CertificatePolicy } from '@azure/keyvault-certificates';
import { startTestServer, type TestServer } from '../support/server.js';
import { armClient, assignRole } from '../support/arm.js';
import { ROLE_IDS } from '../../src/gates/authorization/builtin-roles.js';
import { dataPlaneToken, managementToken, rawRequest } from '../support/raw-http.js';

/**
 * What happens around a certificate's lifetime, each through the official CertificateClient or the wire: listing of
 * certificates still waiting for their merge (`includePending`), the EmailContacts outbox under an advanced clock,
 * and a purged vault taking its certificate contacts and issuers with it. This file owns its server: it moves the clock.
 */
const VAULT = 'lifevault';
const POLL = { intervalInMs: 50 };

let server: TestServer;
let certs: CertificateClient;

before(async () => {
  server = await startTestServer();
  await server.createVault(VAULT);
  certs = new CertificateClient(server.vaultUrl(VAULT), server.adminCredential, { retryOptions: { maxRetries: 0 } });
});

after(async () => {
  await server?.close();
});

const selfSigned = (subject: string, extra: Partial<CertificatePolicy> = {}): CertificatePolicy =>
  ({ issuerName: 'Self', subject, validityInMonths: 1, ...extra }) as CertificatePolicy;

async function names(includePending?: boolean) {
  const out: string[] = [];
  for await (const p of certs.listPropertiesOfCertificates({ includePending })) out.push(p.name!);
  return out.sort();
}

test('includePending: a certificate waiting for its merge is listed only when asked (and pages like the rest)', async () => {
  await (await certs.beginCreateCertificate('issued-a', selfSigned('CN=a'), POLL)).pollUntilDone();
  await (await certs.beginCreateCertificate('issued-b', selfSigned('CN=b'), POLL)).pollUntilDone();
  await certs.beginCreateCertificate('waiting-1', { issuerName: 'Unknown', subject: 'CN=waiting-1' }, POLL);
  await certs.beginCreateCertificate('waiting-2', { issuerName: 'Unknown', subject: 'CN=waiting-2' }, POLL);
  // A certificate with an issued version and a new pending request is provisioned: it is always listed.
  await certs.beginCreateCertificate('issued-b', { issuerName: 'Unknown', subject: 'CN=b2' }, POLL);

  assert.deepEqual(await names(), ['issued-a', 'issued-b']);
  assert.deepEqual(await names(false), ['issued-a', 'issued-b']);
  assert.deepEqual(await names(true), ['issued-a', 'issued-b', 'waiting-1', 'waiting-2']);

  // Page by page on the wire (one per page): every name once, the nextLink carrying on across both parts.
  const token = await dataPlaneToken(server);
  let url: string | null = `${server.vaultUrl(VAULT)}/certificates?api-version=7.5&maxresults=1&includePending=true`;
  const seen: string[] = [];
  while (url) {
    const res = await rawRequest(url, { token });
    assert.equal(res.status, 200, res.text);
    for (const item of res.json.value) seen.push(item.id.split('/').pop());
    if (res.json.value.some((i: { id: string }) => i.id.includes('waiting'))) {
      const pending = res.json.value.find((i: { id: string }) => i.id.includes('waiting'));
      assert.equal(pending.x5t, undefined, 'a pending certificate has no thumbprint yet');
      assert.equal(pending.attributes.enabled, true);
    }
    url = res.json.nextLink;
  }
  assert.deepEqual(seen.sort(), ['issued-a', 'issued-b', 'waiting-1', 'waiting-2']);

  const bad = await rawRequest(`${server.vaultUrl(VAULT)}/certificates?api-version=7.5&includePending=maybe`, { token });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.code, 'BadParameter');

  // Once merged or deleted, a pending certificate is no longer "pending" in the list.
  await certs.deleteCertificateOperation('waiting-2');
  assert.deepEqual(await names(true), ['issued-a', 'issued-b', 'waiting-1']);
  await certs.deleteCertificateOperation('waiting-1');
  await certs.deleteCertificateOperation('issued-b');
});

test('EmailContacts: one outbox message per contact at the trigger, once per version, under an advanced clock', async () => {
  const outbox = path.join(server.dataDir, 'outbox', 'email.jsonl');
  const messages = () => (fs.existsSync(outbox) ? fs.readFileSync(outbox, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : []);
  await certs.setContacts([{ email: 'ops@example.test', name: 'Ops' }, { email: 'pki@example.test' }]);
  const notified = await (await certs.beginCreateCertificate('notified', selfSigned('CN=notified', {
    lifetimeActions: [{ action: 'EmailContacts', daysBeforeExpiry: 10 }],
  }), POLL)).pollUntilDone();
  // AutoRenew at 50% renews (no email); an external issuer's AutoRenew cannot, so its contacts are told instead.
  await (await certs.beginCreateCertificate('renewed', selfSigned('CN=renewed', {
    lifetimeActions: [{ action: 'AutoRenew', lifetimePercentage: 50 }],
  }), POLL)).pollUntilDone();
  await server.coffer.scheduler.runNow();
  assert.deepEqual(messages(), [], 'nothing is due yet');

  const advance = async (by: string) => {
    const res = await rawRequest(`${server.admin.managementEndpoint}/coffer/admin/clock/advance`, {
      method: 'POST', token: await managementToken(server), body: { advance: by },
    });
    assert.equal(res.status, 200);
  };
  await advance('16d'); // past 50% of a month: renewal, but 10 days before expiry is not yet here
  assert.deepEqual(messages(), []);
  await advance('6d'); // now within 10 days of expiry
  const sent = messages();
  assert.equal(sent.length, 2);
  assert.deepEqual(sent.map((m) => m.to).sort(), ['ops@example.test', 'pki@example.test']);
  for (const m of sent) {
    assert.equal(m.kind, 'CertificateNearExpiry');
    assert.equal(m.action, 'EmailContacts');
    assert.equal(m.certificate, 'notified');
    assert.equal(m.vault, VAULT);
    assert.equal(m.version, notified.properties.version);
    assert.equal(m.expires, notified.properties.expiresOn!.toISOString());
    assert.match(m.subject, /notified/);
    assert.doesNotMatch(JSON.stringify(m), /PRIVATE KEY|BEGIN CERTIFICATE/);
  }
  assert.equal(sent.find((m) => m.to === 'ops@example.test').toName, 'Ops');

  // Later passes send nothing more for this version.
  await server.coffer.scheduler.runNow();
  await advance('1d');
  assert.equal(messages().length, 2);
});

test('an imported certificate (issuer Unknown) emails the contacts at 80% of its lifetime by default', async () => {
  const outbox = path.join(server.dataDir, 'outbox', 'email.jsonl');
  const mine = () => fs.readFileSync(outbox, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((m) => m.certificate === 'imported');
  const dir = fs.mkdtempSync(path.join(server.dataDir, 'import-'));
  const f = (n: string) => path.join(dir, n);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('k.pem'), '-out', f('c.pem'),
    '-subj', '/CN=imported', '-days', '400'], { stdio: 'ignore' });
  const imported = await certs.importCertificate('imported', Buffer.from(fs.readFileSync(f('k.pem'), 'utf8') + fs.readFileSync(f('c.pem'), 'utf8')));
  assert.deepEqual(imported.policy?.lifetimeActions, [{ action: 'EmailContacts', lifetimePercentage: 80, daysBeforeExpiry: undefined }]);
  const advance = async (ms: number) => assert.equal((await rawRequest(`${server.admin.managementEndpoint}/coffer/admin/clock/advance`, {
    method: 'POST', token: await managementToken(server), body: { advance: `${Math.ceil(ms / 1000)}s` },
  })).status, 200);
  // The service's clock is already ahead (earlier tests): go to a day before 80% of the lifetime, then past it.
  const nbf = imported.properties.notBefore!.getTime();
  const due = nbf + 0.8 * (imported.properties.expiresOn!.getTime() - nbf);
  await advance(due - 86_400_000 - server.coffer.clock.now());
  await server.coffer.scheduler.runNow();
  assert.deepEqual(mine(), []);
  await advance(2 * 86_400_000);
  assert.deepEqual(mine().map((m) => [m.to, m.action, m.version]).sort(),
    [['ops@example.test', 'EmailContacts', imported.properties.version], ['pki@example.test', 'EmailContacts', imported.properties.version]]);
});

test('a certificate that cannot be renewed does not hold up the renewal of the others', async () => {
  const policy = selfSigned('CN=renews', { lifetimeActions: [{ action: 'AutoRenew', lifetimePercentage: 50 }] });
  const broken = await (await certs.beginCreateCertificate('a-broken', policy, POLL)).pollUntilDone();
  const healthy = await (await certs.beginCreateCertificate('z-healthy', policy, POLL)).pollUntilDone();
  // A policy update may name a subject no certificate can carry; only issuance finds out.
  await certs.updateCertificatePolicy('a-broken', { ...policy, subject: 'not a distinguished name' });
  const res = await rawRequest(`${server.admin.managementEndpoint}/coffer/admin/clock/advance`, {
    method: 'POST', token: await managementToken(server), body: { advance: '20d' },
  });
  assert.equal(res.status, 200);
  assert.equal((await certs.getCertificate('a-broken')).properties.version, broken.properties.version);
  assert.notEqual((await certs.getCertificate('z-healthy')).properties.version, healthy.properties.version);
});

test('a purged vault takes its certificate contacts and issuers with it', async () => {
  const name = 'purgedvault';
  await server.createVault(name);
  const client = new CertificateClient(server.vaultUrl(name), server.adminCredential, { retryOptions: { maxRetries: 0 } });
  await client.setContacts([{ email: 'gone@example.test' }]);
  await client.createIssuer('acme', 'Test', { accountId: 'acct', password: 'issuer-pass' });
  const db = server.coffer.storage.db;
  const vaultId = (await db.selectFrom('vaults').select('id').where('name_key', '=', name).executeTakeFirstOrThrow()).id;
  const rows = async () => [
    ...(await db.selectFrom('certificate_contacts').select('vault_id').where('vault_id', '=', vaultId).execute()),
    ...(await db.selectFrom('certificate_issuers').select('vault_id').where('vault_id', '=', vaultId).execute()),
  ].length;
  assert.equal(await rows(), 2);

  const arm = armClient(server, server.adminCredential);
  const sub = `/subscriptions/${server.admin.subscriptionId}`;
  assert.equal((await arm('DELETE', `${sub}/resourceGroups/rg-test/providers/Microsoft.KeyVault/vaults/${name}`, undefined, '2025-05-01')).status, 200);
  assert.equal(await rows(), 2, 'a soft-deleted vault keeps them (it can be recovered)');
  const purged = await arm('POST', `${sub}/providers/Microsoft.KeyVault/locations/local/deletedVaults/${name}/purge`, undefined, '2025-05-01');
  assert.ok([200, 202].includes(purged.status), JSON.stringify(purged.body));
  assert.equal(await rows(), 0);

  // A vault created again under the name starts with neither (nor with the purged vault's role assignments).
  const vaultScope = `${sub}/resourceGroups/rg-test/providers/Microsoft.KeyVault/vaults/${name}`;
  assert.equal((await arm('PUT', vaultScope, {
    location: 'local', properties: { tenantId: server.admin.tenantId, sku: { family: 'A', name: 'standard' } },
  }, '2025-05-01')).status, 200);
  await assignRole(server, vaultScope, ROLE_IDS.keyVaultAdministrator, server.admin.objectId);
  await assert.rejects(client.getContacts(), (e: { statusCode?: number }) => e.statusCode === 404);
  assert.deepEqual(await (async () => { const out = []; for await (const i of client.listPropertiesOfIssuers()) out.push(i); return out; })(), []);
});
