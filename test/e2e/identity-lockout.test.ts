import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { UsernamePasswordCredential } from '@azure/identity';
import { startTestServer, type TestServer } from '../support/server.js';
import { LOCKOUT_SECONDS, LOCKOUT_THRESHOLD } from '../../src/identity/directory.js';
import { managementApi } from './identity-support.js';

/** Password sign-ins lock out after LOCKOUT_THRESHOLD failures in a row (Entra's smart lockout, AADSTS50053). */
let server: TestServer;
let mgmt: ReturnType<typeof managementApi>;


const signIn = async (username: string, password: string) => {
  const res = await fetch(`${server.admin.authorityHost}/${server.admin.tenantId}/oauth2/v2.0/token`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'password', client_id: 'cli', username, password, scope: `${server.admin.managementEndpoint}/.default` }).toString(),
  });
  const body = await res.json();
  return { status: res.status, code: body.error_codes?.[0] as number | undefined, body };
};
const failTimes = async (n: number, username: string) => {
  for (let i = 0; i < n; i++) assert.equal((await signIn(username, `wrong-${i}`)).code, 50126);
};

before(async () => {
  server = await startTestServer();
  mgmt = managementApi(server);
  assert.equal((await mgmt('POST', '/v1.0/users', { displayName: 'Erin', userPrincipalName: 'erin@coffer.test', passwordProfile: { password: 'Erin-password-1' } })).status, 201);
});
after(() => server?.close());

test('the threshold-th failed password locks the user out, even with the right password, until the lockout ends', async () => {
  // A success starts the count afresh.
  await failTimes(LOCKOUT_THRESHOLD - 1, 'erin@coffer.test');
  assert.equal((await signIn('erin@coffer.test', 'Erin-password-1')).status, 200);
  await failTimes(LOCKOUT_THRESHOLD - 1, 'erin@coffer.test');
  assert.equal((await signIn('erin@coffer.test', 'Erin-password-1')).status, 200);

  await failTimes(LOCKOUT_THRESHOLD, 'ERIN@coffer.test');
  const locked = await signIn('erin@coffer.test', 'Erin-password-1');
  assert.equal(locked.status, 400);
  assert.equal(locked.body.error, 'invalid_grant');
  assert.equal(locked.code, 50053);
  assert.match(locked.body.error_description, /^AADSTS50053: The account is locked/);
  assert.equal(locked.body.access_token, undefined);
  const credential = new UsernamePasswordCredential(server.admin.tenantId, 'cli', 'erin@coffer.test', 'Erin-password-1',
    { authorityHost: server.admin.authorityHost, disableInstanceDiscovery: true });
  await assert.rejects(credential.getToken(`${server.admin.managementEndpoint}/.default`), /AADSTS50053/);

  // The lockout ends by itself (the service clock, which `coffer debug clock advance` moves)…
  server.coffer.clock.setOffset(server.coffer.clock.offsetMs() + (LOCKOUT_SECONDS + 1) * 1000);
  assert.equal((await signIn('erin@coffer.test', 'Erin-password-1')).status, 200);
  // …or when the administrator resets the password.
  await failTimes(LOCKOUT_THRESHOLD, 'erin@coffer.test');
  assert.equal((await signIn('erin@coffer.test', 'Erin-password-1')).code, 50053);
  assert.equal((await mgmt('PATCH', '/v1.0/users/erin@coffer.test', { passwordProfile: { password: 'Erin-password-2' } })).status, 204);
  assert.equal((await signIn('erin@coffer.test', 'Erin-password-2')).status, 200);
});

test('an unknown user name never reports a lockout', async () => {
  await failTimes(LOCKOUT_THRESHOLD + 2, 'nobody@coffer.test');
});
