import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import type { AccessToken } from '@azure/identity';
import { SecretClient } from '@azure/keyvault-secrets';
import { startTestServer, type TestServer } from '../support/server.js';
import { armClient, createPrincipal, type TestPrincipal } from '../support/arm.js';

// Locally the whole of 127.0.0.0/8 is loopback: a client binding 127.0.0.5 reaches the server (on 127.0.0.1) from
// that source address, so each address below is a distinct client on the wire — no header involved.
let server: TestServer;
let stranger: TestPrincipal;
const VAULT = 'netrules';

const agentFrom = (localAddress: string) => new https.Agent({ localAddress, keepAlive: false });
const clientFrom = (localAddress: string, vault = VAULT) =>
  new SecretClient(server.vaultUrl(vault), server.adminCredential, { retryOptions: { maxRetries: 0 }, agent: agentFrom(localAddress) });

/** A raw data-plane GET from a given source address, to read the exact error body and headers. */
async function rawGet(localAddress: string, vault: string, path: string, token?: AccessToken | null) {
  const url = new URL(`${server.vaultUrl(vault).replace(/\/$/, '')}${path}?api-version=7.5`);
  return new Promise<{ status: number; headers: Record<string, unknown>; body: any }>((resolve, reject) => {
    https.get(url, { agent: agentFrom(localAddress), headers: token ? { authorization: `Bearer ${token.token}` } : {} }, (res) => {
      let text = '';
      res.on('data', (c) => { text += c; }).on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text ? JSON.parse(text) : undefined }));
    }).on('error', reject);
  });
}

const dataToken = () => server.adminCredential.getToken(`${server.coffer.endpoints.dataPlaneAudiences[0]}/.default`);
const arm = () => armClient(server, server.adminCredential);
const vaultPath = (name: string) => `/subscriptions/${server.admin.subscriptionId}/resourceGroups/rg-test/providers/Microsoft.KeyVault/vaults/${name}`;
async function patchVault(name: string, properties: Record<string, unknown>) {
  const { status, body } = await arm()('PATCH', vaultPath(name), { properties }, '2025-05-01');
  assert.equal(status, 200, JSON.stringify(body));
}

before(async () => {
  server = await startTestServer();
  await server.createVault(VAULT, { networkAcls: { defaultAction: 'Deny', bypass: 'None', ipRules: [{ value: '127.0.0.5' }, { value: '127.0.1.0/24' }] } });
  stranger = await createPrincipal(server, 'network-stranger');
  await clientFrom('127.0.0.5').setSecret('s', 'value');
});
after(async () => server?.close());

test('ipRules admit single addresses and CIDR ranges; every other source address is refused by the firewall', async () => {
  assert.equal((await clientFrom('127.0.0.5').getSecret('s')).value, 'value');
  assert.equal((await clientFrom('127.0.1.77').getSecret('s')).value, 'value');
  await assert.rejects(clientFrom('127.0.0.6').getSecret('s'), (err: any) => err.statusCode === 403 && err.code === 'Forbidden');
  await assert.rejects(clientFrom('127.0.2.1').setSecret('s', 'other'), (err: any) => err.statusCode === 403);
  assert.equal((await clientFrom('127.0.0.5').getSecret('s')).value, 'value', 'a refused write changed nothing');
});

test('a firewall denial is Azure-shaped: ForbiddenByFirewall, the real client address, the caller and the vault', async () => {
  const token = await dataToken();
  const res = await rawGet('127.0.0.9', VAULT, '/secrets/s', token);
  assert.equal(res.status, 403);
  assert.equal(res.body.error.code, 'Forbidden');
  assert.equal(res.body.error.innererror.code, 'ForbiddenByFirewall');
  const lines = res.body.error.message.split('\r\n');
  assert.equal(lines[0], 'Client address is not authorized and caller is not a trusted service.');
  assert.equal(lines[1], 'Client address: 127.0.0.9');
  assert.match(lines[2], new RegExp(`^Caller: appid=${server.admin.clientId};oid=${server.admin.objectId};iss=https://`));
  assert.equal(lines[3], `Vault: ${VAULT};location=local`);
  assert.match(String(res.headers['x-ms-keyvault-network-info']), /addr=127\.0\.0\.9;/);
  assert.ok(!JSON.stringify(res.body).includes(token!.token));

  // The denial is audited with the address that was refused.
  const records = (await server.coffer.storage.db.selectFrom('audit_events').select('record').execute()).map((r) => JSON.parse(r.record));
  const denial = records.find((r) => r.callerIpAddress === '127.0.0.9' && String(r.properties?.requestUri).includes('/secrets/s'));
  assert.ok(denial, 'an audit record for the denial');
  assert.equal(denial.callerIpAddress, '127.0.0.9');
  assert.equal(denial.properties.httpStatusCode, 403);
});

test('a forged forwarding header changes nothing: the socket address decides', async () => {
  const token = await dataToken();
  const url = new URL(`${server.vaultUrl(VAULT).replace(/\/$/, '')}/secrets/s?api-version=7.5`);
  const status = await new Promise<number>((resolve, reject) => {
    https.get(url, { agent: agentFrom('127.0.0.9'), headers: { authorization: `Bearer ${token!.token}`, 'x-forwarded-for': '127.0.0.5', 'x-real-ip': '127.0.0.5' } },
      (res) => { res.resume(); resolve(res.statusCode!); }).on('error', reject);
  });
  assert.equal(status, 403);
});

test('order of gates: unauthenticated is 401 and unauthorised is 403 ForbiddenByRbac, both before the firewall', async () => {
  const anonymous = await rawGet('127.0.0.9', VAULT, '/secrets/s');
  assert.equal(anonymous.status, 401);
  const strangerToken = await stranger.credential.getToken(`${server.coffer.endpoints.dataPlaneAudiences[0]}/.default`);
  const unauthorised = await rawGet('127.0.0.9', VAULT, '/secrets/s', strangerToken);
  assert.equal(unauthorised.status, 403);
  assert.equal(unauthorised.body.error.innererror.code, 'ForbiddenByRbac');
});

test('defaultAction Allow admits every address; rule changes take effect on the next request', async () => {
  await server.createVault('netopen', { networkAcls: { defaultAction: 'Allow', ipRules: [] } });
  await clientFrom('127.0.0.42', 'netopen').setSecret('o', 'v');
  await patchVault('netopen', { networkAcls: { defaultAction: 'Deny', bypass: 'AzureServices', ipRules: [{ value: '127.0.0.43' }] } });
  await assert.rejects(clientFrom('127.0.0.42', 'netopen').getSecret('o'), (err: any) => err.statusCode === 403);
  assert.equal((await clientFrom('127.0.0.43', 'netopen').getSecret('o')).value, 'v');
  // bypass AzureServices admits trusted services only; an ordinary principal is still refused.
  await patchVault('netopen', { networkAcls: { defaultAction: 'Allow' } });
  assert.equal((await clientFrom('127.0.0.42', 'netopen').getSecret('o')).value, 'v');
});

test('publicNetworkAccess Disabled refuses every public request, whatever the ipRules', async () => {
  await server.createVault('netprivate', { networkAcls: { defaultAction: 'Allow' } });
  await patchVault('netprivate', { publicNetworkAccess: 'Disabled' });
  const res = await rawGet('127.0.0.5', 'netprivate', '/secrets/x', await dataToken());
  assert.equal(res.status, 403);
  assert.equal(res.body.error.innererror.code, 'ForbiddenByConnection');
  const lines = res.body.error.message.split('\r\n');
  assert.equal(lines[0], 'Public network access is disabled and request is not from a trusted service nor via an approved private link.');
  assert.equal(lines[2], 'Vault: netprivate;location=local');
  await patchVault('netprivate', { publicNetworkAccess: 'Enabled' });
  assert.equal((await rawGet('127.0.0.5', 'netprivate', '/secrets/x', await dataToken())).status, 404);
});
