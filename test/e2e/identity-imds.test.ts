import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { ManagedIdentityCredential, type TokenCredential } from '@azure/identity';
import type { TestServer } from '../support/server.js';
import { startTestServerWithSecret, type TestServerWithSecret } from './identity-support.js';

/**
 * The IMDS shaped managed identity endpoint, reached through AZURE_POD_IDENTITY_AUTHORITY_HOST. Its own file: MSAL
 * picks (and caches, per process) one managed identity source, and the App Service one would win over IMDS.
 */
const VAULT = 'imdsvault';
let server: TestServer;
let mgmt: TestServerWithSecret['mgmt'];
let grantSecretsUser: TestServerWithSecret['grantSecretsUser'];
let readWith: TestServerWithSecret['readWith'];

const identities = () => `/subscriptions/${server.admin.subscriptionId}/resourceGroups/rg-test/providers/Microsoft.ManagedIdentity/userAssignedIdentities`;

before(async () => {
  ({ server, mgmt, grantSecretsUser, readWith } = await startTestServerWithSecret(VAULT));
});
after(() => server?.close());

test('ManagedIdentityCredential (IMDS shape via AZURE_POD_IDENTITY_AUTHORITY_HOST) reads a secret as its identity, and only as it', async () => {
  const mine = (await mgmt('PUT', `${identities()}/imds-app?api-version=2023-01-31`, { location: 'local' })).body;
  const other = (await mgmt('PUT', `${identities()}/imds-other?api-version=2023-01-31`, { location: 'local' })).body;
  await grantSecretsUser(mine.properties.principalId);
  const binding = (await mgmt('POST', '/coffer/managed-identity/bindings', { identity: mine.id })).body;
  const otherBinding = (await mgmt('POST', '/coffer/managed-identity/bindings', { identity: other.id })).body;
  assert.ok(binding.podIdentityAuthorityHost.startsWith(`${server.admin.authorityHost}/coffer/imds/`));

  process.env.AZURE_POD_IDENTITY_AUTHORITY_HOST = binding.podIdentityAuthorityHost;
  try {
    // The SecretClient verifies the challenge (the default) before it asks the credential for a token.
    const credential = new ManagedIdentityCredential({ clientId: mine.properties.clientId });
    assert.equal((await readWith(credential)).value, 's3cr3t-value');
    const token = (await credential.getToken(`${server.admin.managementEndpoint}/.default`))!.token;
    const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
    assert.equal(claims.xms_mirid, mine.id.toLowerCase());
    assert.equal(claims.oid, mine.properties.principalId);
    // No id at all means "the identity I was given"; any other identity is refused, by client id or resource id.
    assert.equal((await readWith(new ManagedIdentityCredential())).value, 's3cr3t-value');
    await assert.rejects(readWith(new ManagedIdentityCredential({ clientId: other.properties.clientId })), /Identity not found/);
    await assert.rejects(readWith(new ManagedIdentityCredential({ resourceId: other.id })), /Identity not found/);
  } finally {
    delete process.env.AZURE_POD_IDENTITY_AUTHORITY_HOST;
  }

  const resource = encodeURIComponent(server.coffer.endpoints.dataPlaneResource);
  const imds = (authorityHost: string, query: string, headers: Record<string, string> = { Metadata: 'true' }) =>
    fetch(`${authorityHost}/metadata/identity/oauth2/token?${query}`, { headers }).then(async (r) => ({ status: r.status, body: await r.json() }));
  const expectRefused = (r: { status: number; body: any }, status: number, description: RegExp) => {
    assert.equal(r.status, status, JSON.stringify(r.body));
    assert.equal(typeof r.body.error, 'string');
    assert.match(r.body.error_description, description);
    assert.equal(r.body.access_token, undefined);
  };
  // As IMDS: without `Metadata: true`, a 400 before anything else (this is what the SDKs' probe expects).
  expectRefused(await imds(binding.podIdentityAuthorityHost, `api-version=2018-02-01&resource=${resource}`, {}), 400, /metadata header/i);
  expectRefused(await imds(binding.podIdentityAuthorityHost, `resource=${resource}`), 400, /api-version/);
  // Another identity's binding cannot name this identity; no binding, or a forged one, yields nothing.
  expectRefused(await imds(otherBinding.podIdentityAuthorityHost, `api-version=2018-02-01&resource=${resource}&client_id=${mine.properties.clientId}`), 400, /Identity not found/);
  expectRefused(await imds(otherBinding.podIdentityAuthorityHost, `api-version=2018-02-01&resource=${resource}&object_id=${mine.properties.principalId}`), 400, /Identity not found/);
  expectRefused(await imds(otherBinding.podIdentityAuthorityHost, `api-version=2018-02-01&resource=${resource}&msi_res_id=${encodeURIComponent(mine.id)}`), 400, /Identity not found/);
  expectRefused(await imds(server.admin.authorityHost, `api-version=2018-02-01&resource=${resource}`), 401, /no managed identity/);
  expectRefused(await imds(`${server.admin.authorityHost}/coffer/imds/${crypto.randomBytes(32).toString('hex')}`, `api-version=2018-02-01&resource=${resource}`), 401, /no managed identity/);
  expectRefused(await imds(binding.podIdentityAuthorityHost, 'api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com%2F'), 400, /not served/);
  // The other identity's own token works, for it, and reaches no data it was not granted.
  const otherToken = await imds(otherBinding.podIdentityAuthorityHost, `api-version=2018-02-01&resource=${resource}&client_id=${other.properties.clientId}`);
  assert.equal(otherToken.status, 200, JSON.stringify(otherToken.body));
  assert.equal(otherToken.body.client_id, other.properties.clientId);
  const denied = await fetch(`${server.vaultUrl(VAULT)}/secrets/app-secret?api-version=7.5`, { headers: { authorization: `Bearer ${otherToken.body.access_token}` } });
  assert.equal(denied.status, 403);
  // Deleting the identity voids its binding at once.
  assert.equal((await mgmt('DELETE', `${identities()}/imds-other?api-version=2023-01-31`)).status, 200);
  expectRefused(await imds(otherBinding.podIdentityAuthorityHost, `api-version=2018-02-01&resource=${resource}`), 401, /no managed identity/);

  // The binding is a secret: the audit log keeps the IMDS requests, never the binding in their URL.
  const audit = (await server.coffer.storage.db.selectFrom('audit_events').select('record').execute()).map((r) => r.record).join('\n');
  assert.match(audit, /coffer\/imds\/REDACTED\/metadata\/identity\/oauth2\/token/);
  for (const secret of [binding.identityHeader, otherBinding.identityHeader]) assert.equal(audit.includes(secret), false);
});

test('system-assigned identity of an app resource: ARM extension resource, tokens with xms_mirid = the owner, gone with it', async () => {
  const owner = `/subscriptions/${server.admin.subscriptionId}/resourceGroups/rg-test/providers/Microsoft.Web/sites/my-app`;
  const url = `${owner}/providers/Microsoft.ManagedIdentity/identities/default?api-version=2023-01-31`;
  const created = await mgmt('PUT', url, {});
  assert.equal(created.status, 201, JSON.stringify(created.body));
  assert.equal(created.body.id, `${owner}/providers/Microsoft.ManagedIdentity/identities/default`);
  assert.equal(created.body.type, 'Microsoft.ManagedIdentity/identities');
  assert.equal((await mgmt('PUT', url, {})).body.properties.principalId, created.body.properties.principalId, 'PUT is idempotent');
  assert.equal((await mgmt('GET', url)).body.properties.clientId, created.body.properties.clientId);
  // A system-assigned identity is no user-assigned resource, and Graph marks it isExplicit=False.
  assert.equal((await mgmt('GET', `${identities()}?api-version=2023-01-31`)).body.value.some((i: any) => i.properties.principalId === created.body.properties.principalId), false);
  const sp = (await mgmt('GET', `/v1.0/servicePrincipals/${created.body.properties.principalId}`)).body;
  assert.deepEqual([sp.servicePrincipalType, sp.displayName, sp.alternativeNames], ['ManagedIdentity', 'my-app', ['isExplicit=False', owner.toLowerCase()]]);

  await grantSecretsUser(created.body.properties.principalId);
  // The app is bound by its own resource id (what `coffer run --identity RESOURCE_ID` does).
  const binding = (await mgmt('POST', '/coffer/managed-identity/bindings', { identity: owner })).body;
  assert.equal(binding.resourceId, owner.toLowerCase());
  // A credential that asks the IMDS shape itself, as an app without the SDK would.
  const imdsCredential: TokenCredential = {
    async getToken(scopes) {
      const resource = encodeURIComponent([scopes].flat()[0].replace(/\/\.default$/, ''));
      const res = await fetch(`${binding.podIdentityAuthorityHost}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=${resource}`, { headers: { Metadata: 'true' } });
      const body = await res.json();
      if (res.status !== 200) throw new Error(body.error_description);
      return { token: body.access_token, expiresOnTimestamp: Number(body.expires_on) * 1000 };
    },
  };
  assert.equal((await readWith(imdsCredential)).value, 's3cr3t-value');
  const token = (await imdsCredential.getToken(`${server.admin.managementEndpoint}/.default`))!.token;
  assert.equal(JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).xms_mirid, owner.toLowerCase());

  // Bad owners are 4xx and create nothing.
  for (const [bad, status] of [
    [`${identities()}/x-id/providers/Microsoft.ManagedIdentity/identities/default`, 400],
    [`/subscriptions/${server.admin.subscriptionId}/resourceGroups/no-such-rg/providers/Microsoft.Web/sites/my-app/providers/Microsoft.ManagedIdentity/identities/default`, 404],
    [`/subscriptions/${crypto.randomUUID()}/resourceGroups/rg-test/providers/Microsoft.Web/sites/my-app/providers/Microsoft.ManagedIdentity/identities/default`, 404],
  ] as const) {
    const res = await mgmt('PUT', `${bad}?api-version=2023-01-31`, {});
    assert.equal(res.status, status, JSON.stringify(res.body));
    assert.equal(typeof res.body.error.code, 'string');
  }

  const dataToken = (await imdsCredential.getToken(`${server.coffer.endpoints.dataPlaneResource}/.default`))!.token;
  // Removing the owner's identity deletes the principal: its token and its binding stop working at once.
  assert.equal((await mgmt('DELETE', url)).status, 200);
  assert.equal((await mgmt('GET', url)).status, 404);
  const refused = await fetch(`${server.vaultUrl(VAULT)}/secrets/app-secret?api-version=7.5`, { headers: { authorization: `Bearer ${dataToken}` } });
  assert.equal(refused.status, 401);
  await assert.rejects(imdsCredential.getToken(`${server.coffer.endpoints.dataPlaneResource}/.default`), /no managed identity/);
});
