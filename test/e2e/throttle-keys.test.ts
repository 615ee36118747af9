import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { KeyClient } from '@azure/keyvault-keys';
import { startTestServer, type TestServer } from '../support/server.js';

// Azure's budgets scaled by 0.1: 400 units per vault per 10 s. A key create costs 200 (Azure allows 20 software
// creates per 10 s), and each operation on an RSA-3072 software key costs 4 (1,000 per 10 s against 4,000).
let server: TestServer;

before(async () => {
  server = await startTestServer({ throttle: 0.1 });
});
after(async () => server?.close());

test('key operations are weighed by the key\'s type and size, as in Azure\'s service-limits table', async () => {
  await server.createVault('throttlekeys');
  const client = new KeyClient(server.vaultUrl('throttlekeys'), server.adminCredential, { retryOptions: { maxRetries: 0 } });
  const createdAt = Date.now();
  await client.createRsaKey('k3072', { keySize: 3072 }); // 200 units
  let admitted = 0;
  for (;;) {
    try {
      await client.getKey('k3072');
      admitted++;
    } catch (err: any) {
      assert.equal(err.statusCode, 429);
      assert.equal(err.code, 'Throttled');
      break;
    }
    assert.ok(admitted <= 200, 'never throttled');
  }
  // (400 - 200) / 4 reads of an RSA-3072 key — unless a very slow machine let the create leave the window first.
  if (Date.now() - createdAt < 9000) assert.equal(admitted, 50);
  else assert.ok(admitted >= 50);
});
