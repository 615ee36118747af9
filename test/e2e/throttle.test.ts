import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { SecretClient } from '@azure/keyvault-secrets';
import { startTestServer, type TestServer } from '../support/server.js';

// Azure's budgets scaled by 0.01: 40 secret reads per vault per 10 seconds.
let server: TestServer;
const VAULT = 'throttled';

before(async () => {
  server = await startTestServer({ throttle: 0.01 });
  await server.createVault(VAULT);
  await server.secretClient(VAULT).setSecret('s', 'value');
});
after(async () => server?.close());

async function rawGet(token: string) {
  const res = await fetch(`${server.vaultUrl(VAULT).replace(/\/$/, '')}/secrets/s?api-version=7.5`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.json() };
}

test('a burst over the budget gets 429 Throttled with an honest Retry-After, and the SDK\'s default retry recovers', async () => {
  const token = (await server.adminCredential.getToken(`${server.coffer.endpoints.dataPlaneAudiences[0]}/.default`))!.token;
  const burstStarted = Date.now();
  const results = await Promise.all(Array.from({ length: 60 }, () => rawGet(token)));
  const ok = results.filter((r) => r.status === 200).length;
  const refused = results.filter((r) => r.status === 429);
  // The window may still hold before()'s setSecret (13.3 units): then 26 reads fit in the 40-unit budget, else 40.
  assert.ok(ok === 26 || ok === 40, `admitted ${ok}`);
  assert.equal(refused.length, 60 - ok);
  for (const r of refused) {
    assert.deepEqual(r.body, { error: { code: 'Throttled', message: 'Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached' } });
  }
  // Honest: the window frees when the setSecret of before() (the oldest entry) is 10 s old, within the next 10 s.
  const retryAfter = Number(refused[0].retryAfter);
  assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 10, `Retry-After ${refused[0].retryAfter}`);

  // Refused requests are not counted: keep hammering, then the SDK (default retry policy honours Retry-After) gets
  // through by itself once the budget frees.
  assert.equal((await rawGet(token)).status, 429);
  const sdk = new SecretClient(server.vaultUrl(VAULT), server.adminCredential);
  const got = await sdk.getSecret('s');
  assert.equal(got.value, 'value');
  assert.ok(Date.now() - burstStarted < 12_000, 'recovered within the window');
});

test('Retry-After is exact: a request just before it elapses is still refused, one after it is admitted', async () => {
  const token = (await server.adminCredential.getToken(`${server.coffer.endpoints.dataPlaneAudiences[0]}/.default`))!.token;
  let res = await rawGet(token);
  while (res.status === 200) res = await rawGet(token);
  const retryAfter = Number(res.retryAfter);
  if (retryAfter > 1) {
    await new Promise((r) => setTimeout(r, (retryAfter - 1) * 1000 - 200));
    assert.equal((await rawGet(token)).status, 429);
    await new Promise((r) => setTimeout(r, 1400));
  } else {
    await new Promise((r) => setTimeout(r, retryAfter * 1000 + 100));
  }
  assert.equal((await rawGet(token)).status, 200);
});
