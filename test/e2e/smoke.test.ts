import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer } from '../support/server.js';

test('smoke: SDK sets and gets a secret through the challenge', async () => {
  const server = await startTestServer();
  try {
    await server.createVault('smokevault');
    const client = server.secretClient('smokevault');
    const set = await client.setSecret('db-password', 'hunter2');
    assert.equal(set.value, 'hunter2');
    const got = await client.getSecret('db-password');
    assert.equal(got.value, 'hunter2');
    assert.equal(got.properties.version, set.properties.version);
  } finally {
    await server.close();
  }
});
