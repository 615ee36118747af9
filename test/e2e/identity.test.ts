import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import {
  ClientAssertionCredential, ClientCertificateCredential, ClientSecretCredential, ManagedIdentityCredential, UsernamePasswordCredential,
} from '@azure/identity';
import { startTestServer, type TestServer } from '../support/server.js';
import { selfSignedCertificate, startTestServerWithSecret, type TestServerWithSecret } from './identity-support.js';

const VAULT = 'idvault';
let server: TestServer;
let mgmt: TestServerWithSecret['mgmt'];
let grantSecretsUser: TestServerWithSecret['grantSecretsUser'];
let readWith: TestServerWithSecret['readWith'];
const options = () => ({ authorityHost: server.admin.authorityHost, disableInstanceDiscovery: true });

before(async () => {
  ({ server, mgmt, grantSecretsUser, readWith } = await startTestServerWithSecret(VAULT));
});
after(() => server?.close());

test('ClientSecretCredential: a new app password reads a secret; removing the password voids its tokens at once', async () => {
  const created = await mgmt('POST', '/v1.0/applications', { displayName: 'secret-app' });
  assert.equal(created.status, 201);
  const pwd = await mgmt('POST', `/v1.0/applications/${created.body.id}/addPassword`, { passwordCredential: { displayName: 'ci' } });
  assert.match(pwd.body.secretText, /^.{3}8Q~/);
  await grantSecretsUser(created.body.id);
  const credential = new ClientSecretCredential(server.admin.tenantId, created.body.appId, pwd.body.secretText, options());
  assert.equal((await readWith(credential)).value, 's3cr3t-value');

  const token = (await credential.getToken(`${server.admin.managementEndpoint}/.default`))!.token;
  assert.equal((await mgmt('GET', '/v1.0/me', undefined, token)).body.appId, created.body.appId);
  assert.equal((await mgmt('POST', `/v1.0/applications/${created.body.id}/removePassword`, { keyId: pwd.body.keyId })).status, 204);
  const refused = await mgmt('GET', '/v1.0/me', undefined, token);
  assert.equal(refused.status, 401);
  assert.equal(refused.body.error.code, 'AuthenticationFailed');
  // Only the administrator manages the directory.
  const fresh = await mgmt('POST', `/v1.0/applications/${created.body.id}/addPassword`, {});
  const other = new ClientSecretCredential(server.admin.tenantId, created.body.appId, fresh.body.secretText, options());
  const otherToken = (await other.getToken(`${server.admin.managementEndpoint}/.default`))!.token;
  assert.equal((await mgmt('GET', '/v1.0/users', undefined, otherToken)).status, 403);
});

test('ClientCertificateCredential: an assertion signed by the app certificate reads a secret; a foreign certificate is refused', async () => {
  const app = (await mgmt('POST', '/v1.0/applications', { displayName: 'cert-app' })).body;
  const good = await selfSignedCertificate('cert-app');
  const foreign = await selfSignedCertificate('cert-app');
  const patched = await mgmt('PATCH', `/v1.0/applications/${app.id}`, { keyCredentials: [{ type: 'AsymmetricX509Cert', usage: 'Verify', key: good.derBase64 }] });
  assert.equal(patched.status, 204, JSON.stringify(patched.body));
  await grantSecretsUser(app.id);
  const credential = new ClientCertificateCredential(server.admin.tenantId, app.appId, { certificate: good.pem }, options());
  assert.equal((await readWith(credential)).value, 's3cr3t-value');
  const impostor = new ClientCertificateCredential(server.admin.tenantId, app.appId, { certificate: foreign.pem }, options());
  await assert.rejects(readWith(impostor), /invalid|key was not found/i);
});

test('UsernamePasswordCredential: a user in a nested group granted the role reads a secret; disabling the user voids its token', async () => {
  const user = await mgmt('POST', '/v1.0/users', {
    accountEnabled: true, displayName: 'Alice', userPrincipalName: 'alice@coffer.test', passwordProfile: { password: 'Correct-Horse-9' },
  });
  assert.equal(user.status, 201, JSON.stringify(user.body));
  const outer = (await mgmt('POST', '/v1.0/groups', { displayName: 'Readers', mailNickname: 'readers' })).body;
  const inner = (await mgmt('POST', '/v1.0/groups', { displayName: 'Team', mailNickname: 'team' })).body;
  const odata = (id: string) => ({ '@odata.id': `https://graph.microsoft.com/v1.0/directoryObjects/${id}` });
  assert.equal((await mgmt('POST', `/v1.0/groups/${outer.id}/members/$ref`, odata(inner.id))).status, 204);
  assert.equal((await mgmt('POST', `/v1.0/groups/${inner.id}/members/$ref`, odata(user.body.id))).status, 204);
  assert.deepEqual((await mgmt('POST', `/v1.0/directoryObjects/${user.body.id}/checkMemberGroups`, { groupIds: [outer.id] })).body.value, [outer.id]);
  await grantSecretsUser(outer.id);

  const clientId = crypto.randomUUID();
  const credential = new UsernamePasswordCredential(server.admin.tenantId, clientId, 'alice@coffer.test', 'Correct-Horse-9', options());
  assert.equal((await readWith(credential)).value, 's3cr3t-value');
  const token = (await credential.getToken(`${server.admin.managementEndpoint}/.default`))!.token;
  const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
  assert.equal(claims.upn, 'alice@coffer.test');
  assert.equal(claims.idtyp, 'user');

  const wrong = new UsernamePasswordCredential(server.admin.tenantId, clientId, 'alice@coffer.test', 'nope-nope-nope', options());
  await assert.rejects(readWith(wrong), /invalid username or password/i);

  assert.equal((await mgmt('PATCH', `/v1.0/users/${user.body.id}`, { accountEnabled: false })).status, 204);
  assert.equal((await mgmt('GET', '/v1.0/me', undefined, token)).status, 401);
});

test('refresh_token and the v1 endpoint', async () => {
  const tokenUrl = `${server.admin.authorityHost}/${server.admin.tenantId}/oauth2`;
  await mgmt('POST', '/v1.0/users', { displayName: 'Bob', userPrincipalName: 'bob@coffer.test', passwordProfile: { password: 'Bob-password-1' } });
  const form = (fields: Record<string, string>) => ({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString() });
  const first = await (await fetch(`${tokenUrl}/v2.0/token`, form({
    grant_type: 'password', client_id: 'cli', username: 'bob@coffer.test', password: 'Bob-password-1', scope: `${server.admin.managementEndpoint}/.default offline_access`,
  }))).json();
  assert.ok(first.refresh_token);
  const refreshed = await (await fetch(`${tokenUrl}/v2.0/token`, form({
    grant_type: 'refresh_token', client_id: 'cli', refresh_token: first.refresh_token, scope: `${server.admin.managementEndpoint}/.default`,
  }))).json();
  assert.equal((await mgmt('GET', '/v1.0/me', undefined, refreshed.access_token)).body.userPrincipalName, 'bob@coffer.test');
  const v1 = await (await fetch(`${tokenUrl}/token`, form({
    grant_type: 'client_credentials', client_id: server.admin.clientId, client_secret: server.admin.clientSecret, resource: server.admin.managementEndpoint,
  }))).json();
  assert.equal(typeof v1.expires_on, 'string');
  assert.equal((await mgmt('GET', '/v1.0/me', undefined, v1.access_token)).body.appId, server.admin.clientId);
  const badResource = await fetch(`${tokenUrl}/token`, form({ grant_type: 'client_credentials', client_id: server.admin.clientId, client_secret: server.admin.clientSecret, resource: 'https://elsewhere' }));
  assert.equal(badResource.status, 400);
});

test('ManagedIdentityCredential (App Service shape): the minted header yields tokens for its identity only', async () => {
  const rg = `/subscriptions/${server.admin.subscriptionId}/resourceGroups/rg-test/providers/Microsoft.ManagedIdentity/userAssignedIdentities`;
  const mi = await mgmt('PUT', `${rg}/web-app?api-version=2023-01-31`, { location: 'local' });
  assert.equal(mi.status, 201, JSON.stringify(mi.body));
  const other = (await mgmt('PUT', `${rg}/other-app?api-version=2023-01-31`, { location: 'local' })).body;
  await grantSecretsUser(mi.body.properties.principalId);
  const binding = (await mgmt('POST', '/coffer/managed-identity/bindings', { identity: mi.body.id })).body;
  assert.equal(binding.clientId, mi.body.properties.clientId);

  process.env.IDENTITY_ENDPOINT = binding.identityEndpoint;
  process.env.IDENTITY_HEADER = binding.identityHeader;
  try {
    const credential = new ManagedIdentityCredential({ clientId: mi.body.properties.clientId });
    assert.equal((await readWith(credential)).value, 's3cr3t-value');
    const token = (await credential.getToken(`${server.admin.managementEndpoint}/.default`))!.token;
    const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
    assert.equal(claims.xms_mirid.toLowerCase(), mi.body.id.toLowerCase());
    // The same header cannot be used for another identity.
    const stolen = new ManagedIdentityCredential({ clientId: other.properties.clientId });
    await assert.rejects(readWith(stolen));
  } finally {
    delete process.env.IDENTITY_ENDPOINT;
    delete process.env.IDENTITY_HEADER;
  }
  const forged = await fetch(`${binding.identityEndpoint}?api-version=2019-08-01&resource=${encodeURIComponent(server.admin.managementEndpoint)}`, {
    headers: { 'x-identity-header': 'forged' },
  });
  assert.equal(forged.status, 401);
});

test('misused tokens and bad directory input are refused with Azure-shaped 4xx, changing nothing', async () => {
  const tokenUrl = `${server.admin.authorityHost}/${server.admin.tenantId}/oauth2/v2.0/token`;
  await mgmt('POST', '/v1.0/users', { displayName: 'Dave', userPrincipalName: 'dave@coffer.test', passwordProfile: { password: 'Dave-password-1' } });
  const signIn = await (await fetch(tokenUrl, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'password', client_id: 'cli', username: 'dave@coffer.test', password: 'Dave-password-1', scope: `${server.admin.managementEndpoint}/.default` }).toString(),
  })).json();
  // Refresh and id tokens are signed by the same key but are no access tokens.
  for (const token of [signIn.refresh_token, signIn.id_token]) {
    const res = await mgmt('GET', '/v1.0/me', undefined, token);
    assert.equal(res.status, 401);
    assert.equal(res.body.error.code, 'AuthenticationFailed');
  }
  const before = (await mgmt('GET', '/v1.0/users')).body.value.length;
  const bad: [string, string, unknown, number][] = [
    ['POST', '/v1.0/users', { displayName: 'x', userPrincipalName: 'not-an-upn', passwordProfile: { password: 'long-enough-1' } }, 400],
    ['POST', '/v1.0/users', { displayName: 'x', userPrincipalName: 'short@coffer.test', passwordProfile: { password: 'short' } }, 400],
    ['POST', '/v1.0/users', { displayName: 'Dup', userPrincipalName: 'DAVE@coffer.test', passwordProfile: { password: 'long-enough-1' } }, 400],
    ['POST', '/v1.0/users', 'not an object', 400],
    ['POST', `/v1.0/groups/${crypto.randomUUID()}/members/$ref`, { '@odata.id': 'x' }, 404],
    ['POST', `/v1.0/directoryObjects/${server.admin.objectId}/checkMemberGroups`, { groupIds: 'nope' }, 400],
    ['PATCH', `/v1.0/applications/${server.admin.clientId}`, { keyCredentials: [{ type: 'AsymmetricX509Cert', key: 'bm90IGEgY2VydA==' }] }, 400],
    ['PATCH', `/v1.0/servicePrincipals/${server.admin.objectId}`, { accountEnabled: false }, 400],
    ['DELETE', `/v1.0/servicePrincipals/${server.admin.objectId}`, undefined, 400],
    ['POST', '/coffer/managed-identity/bindings', { identity: crypto.randomUUID() }, 404],
    ['PUT', `/subscriptions/${server.admin.subscriptionId}/resourceGroups/rg-test/providers/Microsoft.ManagedIdentity/userAssignedIdentities/x?api-version=2023-01-31`, {}, 400],
    ['PUT', `/subscriptions/${server.admin.subscriptionId}/resourceGroups/no-such-rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/web?api-version=2023-01-31`, {}, 404],
  ];
  for (const [method, path, body, status] of bad) {
    const res = await mgmt(method, path, body);
    assert.equal(res.status, status, `${method} ${path}: ${JSON.stringify(res.body)}`);
    assert.equal(typeof res.body.error.code, 'string');
  }
  assert.equal((await mgmt('GET', '/v1.0/users')).body.value.length, before);
  assert.equal((await mgmt('GET', '/v1.0/me')).body.accountEnabled, true);
  const noVersion = await fetch(`${server.admin.authorityHost}/coffer/managed-identity/token?resource=${encodeURIComponent(server.admin.managementEndpoint)}`, { headers: { 'x-identity-header': 'x' } });
  assert.equal(noVersion.status, 400);
});

test('ClientAssertionCredential with a federated token from a trusted external issuer (another Coffer) reads a secret', async () => {
  const external = await startTestServer();
  try {
    const externalIssuer = `${external.admin.authorityHost}/${external.admin.tenantId}/v2.0`;
    const app = (await mgmt('POST', '/v1.0/applications', { displayName: 'federated-app' })).body;
    const credentialBody = { name: 'ci', issuer: externalIssuer, subject: external.admin.objectId, audiences: [external.admin.managementEndpoint] };
    assert.equal((await mgmt('POST', `/v1.0/applications/${app.id}/federatedIdentityCredentials`, credentialBody)).status, 201);
    await grantSecretsUser(app.id);
    const externalToken = async () => (await external.adminCredential.getToken(`${external.admin.managementEndpoint}/.default`))!.token;
    const credential = new ClientAssertionCredential(server.admin.tenantId, app.appId, externalToken, options());
    assert.equal((await readWith(credential)).value, 's3cr3t-value');

    // A token of that issuer for another subject matches no federated credential.
    const other = (await external.adminCredential.getToken(`${external.admin.managementEndpoint}/.default`))!.token;
    const otherApp = (await mgmt('POST', '/v1.0/applications', { displayName: 'unfederated-app' })).body;
    await assert.rejects(readWith(new ClientAssertionCredential(server.admin.tenantId, otherApp.appId, async () => other, options())), /No matching federated identity record/);
    // A forged token claiming the external issuer fails signature validation against its published keys.
    const [header, payload] = other.split('.');
    const forged = `${header}.${payload}.${Buffer.from('forged').toString('base64url')}`;
    await assert.rejects(readWith(new ClientAssertionCredential(server.admin.tenantId, app.appId, async () => forged, options())), /failed validation/);
  } finally {
    await external.close();
  }
});
