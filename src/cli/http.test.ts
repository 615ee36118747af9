import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../../test/support/server.js';
import { challengeResource, createHttpClient, createTokenProvider, createVaultClient, listAll } from './http.js';
import { CliError } from './errors.js';

let server: TestServer;
before(async () => {
  server = await startTestServer();
  await server.createVault('http-vault');
});
after(() => server?.close());

const clients = () => {
  const http = createHttpClient({ caCertPath: `${server.dataDir}/tls/ca.crt` });
  return { http, tokens: createTokenProvider(http, server.admin) };
};

test('challengeResource reads Key Vault\'s WWW-Authenticate', () => {
  assert.equal(challengeResource('Bearer authorization="https://localhost:8443/t", resource="https://vault.localhost:8443"'), 'https://vault.localhost:8443');
  assert.equal(challengeResource(undefined), undefined);
});

test('a data-plane token for the wrong resource is replaced by one for the 401 challenge\'s resource', async () => {
  const { http, tokens } = clients();
  // A management token is valid but has the wrong audience for the vault: the challenge names the right one.
  const vault = createVaultClient(http, tokens, server.vaultUrl('http-vault'), server.admin.managementEndpoint, '7.4');
  const set = await vault<{ id: string }>('PUT', '/secrets/from-challenge', { body: { value: 'v' } });
  assert.match(set.id, /\/secrets\/from-challenge\//);
  const again = await vault<{ value: string }>('GET', '/secrets/from-challenge');
  assert.equal(again.value, 'v');
});

test('listAll follows nextLink pages and caps at max; links to other hosts are refused', async () => {
  const { http, tokens } = clients();
  const vault = createVaultClient(http, tokens, server.vaultUrl('http-vault'), server.coffer.endpoints.dataPlaneResource, '7.4');
  for (let i = 0; i < 4; i++) await vault('PUT', `/secrets/page-${i}`, { body: { value: String(i) } });
  const all = await listAll<{ id: string }>(vault, '/secrets');
  assert.ok(all.length >= 5);
  assert.equal((await listAll(vault, '/secrets', 3)).length, 3);
  // Pages of two: the walk crosses absolute nextLinks and still sees every secret.
  assert.deepEqual((await listAll<{ id: string }>(vault, '/secrets?maxresults=2')).map((s) => s.id), all.map((s) => s.id));
  await assert.rejects(vault('GET', 'https://elsewhere.localhost/secrets'), (e: unknown) => e instanceof CliError && /another host/.test(e.message));
  await assert.rejects(vault('GET', '/secrets/missing-one'), (e: unknown) => e instanceof CliError && e.exitCode === 3 && /^\(SecretNotFound\)/.test(e.message));
});

test('bad client credentials: the OAuth error, exit 1, without the secret', async () => {
  const http = createHttpClient({});
  const tokens = createTokenProvider(http, { ...server.admin, clientSecret: 'wrong-secret-value' });
  await assert.rejects(tokens(server.admin.managementEndpoint), (e: unknown) =>
    e instanceof CliError && e.exitCode === 1 && /^\(invalid_client\) AADSTS7000215/.test(e.message) && !e.message.includes('wrong-secret-value'));
});
