import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loggedUrl } from './app.js';

test('request logs show neither query strings nor the IMDS binding secret', () => {
  const binding = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
  const logged = loggedUrl(`/coffer/imds/${binding}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault`);
  assert.equal(logged, '/coffer/imds/REDACTED/metadata/identity/oauth2/token');
  assert.ok(!logged.includes(binding));
  assert.equal(loggedUrl('/secrets/db?api-version=7.5'), '/secrets/db');
});
