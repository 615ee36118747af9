import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startTestServer, type TestServer } from '../support/server.js';
import { armClient, assignRole, createPrincipal, secretClientAs, type TestPrincipal } from '../support/arm.js';
import { startWebhook, type Webhook } from '../support/webhook.js';
import { ROLE_IDS } from '../../src/gates/authorization/builtin-roles.js';

// Who may manage what this round added: a principal with no role, a Reader and a Key Vault Secrets User are refused
// every write of network, monitor and Event Grid resources (403 AuthorizationFailed, nothing changed), and only the
// deployment administrator reaches Coffer's own admin endpoints. Managing a vault never grants reading its data.
let server: TestServer;
let hook: Webhook;
const VAULT = 'authzvault';
const principals: Record<'nobody' | 'reader' | 'secretsUser' | 'contributor' | 'releaser', TestPrincipal> = {} as never;
const rg = () => `/subscriptions/${server.admin.subscriptionId}/resourceGroups/rg-test`;
const vaultId = () => `${rg()}/providers/Microsoft.KeyVault/vaults/${VAULT}`;
const NETWORK = '2024-05-01';

before(async () => {
  server = await startTestServer({ attestationAuthorities: ['https://attest.example'] });
  const tlsFile = (name: string) => fs.readFileSync(path.join(server.dataDir, 'tls', name), 'utf8');
  hook = await startWebhook({ tls: { cert: tlsFile('server.crt'), key: tlsFile('server.key') } });
  await server.createVault(VAULT);
  await server.secretClient(VAULT).setSecret('db-password', 'contributors-must-not-see-this');
  for (const name of Object.keys({ nobody: 0, reader: 0, secretsUser: 0, contributor: 0, releaser: 0 }) as (keyof typeof principals)[]) {
    principals[name] = await createPrincipal(server, `authz-${name}`);
  }
  await assignRole(server, rg(), ROLE_IDS.reader, principals.reader.objectId);
  await assignRole(server, vaultId(), ROLE_IDS.keyVaultSecretsUser, principals.secretsUser.objectId);
  await assignRole(server, rg(), ROLE_IDS.contributor, principals.contributor.objectId);
  await assignRole(server, vaultId(), ROLE_IDS.keyVaultCryptoServiceReleaseUser, principals.releaser.objectId);
  const admin = armClient(server, server.adminCredential);
  const ok = async (p: Promise<{ status: number; body: any }>) => {
    const { status, body } = await p;
    assert.ok(status < 300, JSON.stringify(body));
  };
  await ok(admin('PUT', `${rg()}/providers/Microsoft.Network/virtualNetworks/vnet1`, {
    location: 'local', properties: { addressSpace: { addressPrefixes: ['127.50.0.0/16'] }, subnets: [{ name: 'app', properties: { addressPrefix: '127.50.1.0/24' } }] },
  }, NETWORK));
  await ok(admin('PUT', `${rg()}/providers/Microsoft.OperationalInsights/workspaces/wsone`, { location: 'local' }, '2022-10-01'));
  await ok(admin('PUT', `${vaultId()}/providers/Microsoft.Insights/diagnosticSettings/s1`, {
    properties: { workspaceId: `${rg()}/providers/Microsoft.OperationalInsights/workspaces/wsone`, logs: [{ categoryGroup: 'audit', enabled: true }] },
  }, '2021-05-01-preview'));
  await ok(admin('PUT', `${vaultId()}/providers/Microsoft.EventGrid/eventSubscriptions/sub1`, {
    properties: { destination: { endpointType: 'WebHook', properties: { endpointUrl: `${hook.base}/eg?code=hook-key` } } },
  }, '2022-06-15'));
  await ok(admin('PUT', `${rg()}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1`, { location: 'local' }, '2023-01-31'));
});
after(async () => {
  await server?.close();
  await hook?.close();
});

type Call = [label: string, method: string, path: string, body: unknown, apiVersion: string];

/** The writes (and secret-revealing actions) of the new management families; each is safe to repeat. */
const managementWrites = (): Call[] => [
  ['create a virtual network', 'PUT', `${rg()}/providers/Microsoft.Network/virtualNetworks/vnet2`, { location: 'local', properties: { addressSpace: { addressPrefixes: ['127.51.0.0/16'] } } }, NETWORK],
  ['update a virtual network', 'PUT', `${rg()}/providers/Microsoft.Network/virtualNetworks/vnet1`, { location: 'local', properties: { addressSpace: { addressPrefixes: ['127.50.0.0/16'] } } }, NETWORK],
  ['add a subnet', 'PUT', `${rg()}/providers/Microsoft.Network/virtualNetworks/vnet1/subnets/jobs`, { properties: { addressPrefix: '127.50.2.0/24' } }, NETWORK],
  ['delete a subnet', 'DELETE', `${rg()}/providers/Microsoft.Network/virtualNetworks/vnet1/subnets/app`, undefined, NETWORK],
  ['delete a virtual network', 'DELETE', `${rg()}/providers/Microsoft.Network/virtualNetworks/vnet1`, undefined, NETWORK],
  ['create a private endpoint', 'PUT', `${rg()}/providers/Microsoft.Network/privateEndpoints/pe1`, {
    location: 'local', properties: {
      subnet: { id: `${rg()}/providers/Microsoft.Network/virtualNetworks/vnet1/subnets/app` },
      privateLinkServiceConnections: [{ name: 'c', properties: { privateLinkServiceId: vaultId(), groupIds: ['vault'] } }],
      ipConfigurations: [{ name: 'ip', properties: { privateIPAddress: '127.50.1.10' } }],
    },
  }, NETWORK],
  ['create a workspace', 'PUT', `${rg()}/providers/Microsoft.OperationalInsights/workspaces/wstwo`, { location: 'local' }, '2022-10-01'],
  ['delete a workspace', 'DELETE', `${rg()}/providers/Microsoft.OperationalInsights/workspaces/wsone`, undefined, '2022-10-01'],
  ['create a storage account', 'PUT', `${rg()}/providers/Microsoft.Storage/storageAccounts/authzfiles`, { location: 'local' }, '2023-01-01'],
  ['create an event hub namespace', 'PUT', `${rg()}/providers/Microsoft.EventHub/namespaces/authz-hub`, { location: 'local', properties: { serviceBusEndpoint: `${hook.base}/hub` } }, '2021-11-01'],
  ['create a diagnostic setting', 'PUT', `${vaultId()}/providers/Microsoft.Insights/diagnosticSettings/s2`, {
    properties: { workspaceId: `${rg()}/providers/Microsoft.OperationalInsights/workspaces/wsone`, logs: [{ categoryGroup: 'audit', enabled: true }] },
  }, '2021-05-01-preview'],
  ['delete a diagnostic setting', 'DELETE', `${vaultId()}/providers/Microsoft.Insights/diagnosticSettings/s1`, undefined, '2021-05-01-preview'],
  ['create an event subscription', 'PUT', `${vaultId()}/providers/Microsoft.EventGrid/eventSubscriptions/sub2`, {
    properties: { destination: { endpointType: 'WebHook', properties: { endpointUrl: `${hook.base}/eg2` } } },
  }, '2022-06-15'],
  ['delete an event subscription', 'DELETE', `${vaultId()}/providers/Microsoft.EventGrid/eventSubscriptions/sub1`, undefined, '2022-06-15'],
  ['read an event subscription\'s full URL', 'POST', `${vaultId()}/providers/Microsoft.EventGrid/eventSubscriptions/sub1/getFullUrl`, undefined, '2022-06-15'],
  ['create a user-assigned identity', 'PUT', `${rg()}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id2`, { location: 'local' }, '2023-01-31'],
];

/** Coffer's own endpoints, for the deployment administrator alone (Contributor and Owner included). */
const adminOnly = (): Call[] => [
  ['list trusted services', 'GET', '/coffer/admin/trusted-services', undefined, ''],
  ['add a trusted service', 'PUT', `/coffer/admin/trusted-services/${server.admin.objectId}`, undefined, ''],
  ['remove a trusted service', 'DELETE', `/coffer/admin/trusted-services/${server.admin.objectId}`, undefined, ''],
  ['create a service principal', 'POST', '/coffer/admin/service-principals', { displayName: 'intruder' }, ''],
  ['advance the clock', 'POST', '/coffer/admin/clock/advance', { advance: '1d' }, ''],
  ['list trusted issuers', 'GET', '/coffer/trusted-issuers', undefined, ''],
  ['add a trusted issuer', 'POST', '/coffer/trusted-issuers', { issuer: 'https://issuer.example', jwksUri: 'https://issuer.example/keys', audience: 'api://coffer' }, ''],
  ['bind a managed identity', 'POST', '/coffer/managed-identity/bindings', { identity: `${rg()}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1` }, ''],
  ['create a system-assigned identity', 'PUT', `${rg()}/providers/Microsoft.Web/sites/app1/providers/Microsoft.ManagedIdentity/identities/default`, {}, '2023-01-31'],
];

/** What the administrator sees of each family: must be the same before and after the refused calls. */
async function state() {
  const admin = armClient(server, server.adminCredential);
  const reads: [string, string][] = [
    [`${rg()}/providers/Microsoft.Network/virtualNetworks`, NETWORK],
    [`${rg()}/providers/Microsoft.Network/privateEndpoints`, NETWORK],
    [`${rg()}/providers/Microsoft.OperationalInsights/workspaces`, '2022-10-01'],
    [`${rg()}/providers/Microsoft.Storage/storageAccounts`, '2023-01-01'],
    [`${rg()}/providers/Microsoft.EventHub/namespaces`, '2021-11-01'],
    [`${vaultId()}/providers/Microsoft.Insights/diagnosticSettings`, '2021-05-01-preview'],
    [`${vaultId()}/providers/Microsoft.EventGrid/eventSubscriptions`, '2022-06-15'],
    [`${rg()}/providers/Microsoft.ManagedIdentity/userAssignedIdentities`, '2023-01-31'],
    ['/coffer/admin/trusted-services', ''],
    ['/coffer/trusted-issuers', ''],
    ['/v1.0/servicePrincipals', ''],
  ];
  const out: Record<string, unknown> = {};
  for (const [p, v] of reads) {
    const res = await admin('GET', p, undefined, v);
    assert.equal(res.status, 200, `${p}: ${JSON.stringify(res.body)}`);
    out[p] = res.body;
  }
  return out;
}

const call = (who: TestPrincipal, [, method, p, body, apiVersion]: Call) => armClient(server, who.credential)(method, p, body, apiVersion);

test('no role, Reader and Key Vault Secrets User are refused every write of network, monitor and Event Grid resources', async () => {
  const before = await state();
  for (const who of ['nobody', 'reader', 'secretsUser'] as const) {
    for (const c of managementWrites()) {
      const { status, body } = await call(principals[who], c);
      assert.equal(status, 403, `${who}: ${c[0]} -> ${status} ${JSON.stringify(body)}`);
      assert.equal(body.error.code, 'AuthorizationFailed', `${who}: ${c[0]}`);
      assert.ok(!JSON.stringify(body).includes('hook-key'), 'a refusal never carries the full URL');
    }
  }
  assert.deepEqual(await state(), before);
});

test('only the deployment administrator reaches /coffer/admin/*, trusted issuers and managed-identity administration', async () => {
  const before = await state();
  for (const who of ['nobody', 'reader', 'secretsUser', 'contributor'] as const) {
    for (const c of adminOnly()) {
      const { status, body } = await call(principals[who], c);
      assert.equal(status, 403, `${who}: ${c[0]} -> ${status} ${JSON.stringify(body)}`);
      assert.equal(body.error.code, 'AuthorizationFailed', `${who}: ${c[0]}`);
      assert.match(body.error.message, new RegExp(principals[who].objectId));
    }
  }
  assert.deepEqual(await state(), before);
});

test('readers read but do not query what they may not, and never learn an event subscription\'s full URL', async () => {
  const reader = armClient(server, principals.reader.credential);
  const sub = await reader('GET', `${vaultId()}/providers/Microsoft.EventGrid/eventSubscriptions/sub1`, undefined, '2022-06-15');
  assert.equal(sub.status, 200, JSON.stringify(sub.body));
  assert.ok(!JSON.stringify(sub.body).includes('hook-key'));
  const nobody = armClient(server, principals.nobody.credential);
  const ws = await armClient(server, server.adminCredential)('GET', `${rg()}/providers/Microsoft.OperationalInsights/workspaces/wsone`, undefined, '2022-10-01');
  const query = await nobody('POST', `/v1/workspaces/${ws.body.properties.customerId}/query`, { query: 'AzureDiagnostics' }, '');
  assert.equal(query.status, 403, JSON.stringify(query.body));
  assert.equal(query.body.error.code, 'AuthorizationFailed');
  for (const p of [`${rg()}/providers/Microsoft.Network/virtualNetworks/vnet1`, `${vaultId()}/providers/Microsoft.Insights/diagnosticSettings/s1`]) {
    const res = await nobody('GET', p, undefined, p.includes('Network') ? NETWORK : '2021-05-01-preview');
    assert.equal(res.status, 403, `${p}: ${JSON.stringify(res.body)}`);
  }
  const lists = await nobody('GET', `${rg()}/providers/Microsoft.OperationalInsights/workspaces`, undefined, '2022-10-01');
  assert.deepEqual(lists.body.value, [], 'a list shows only what the caller may read');
});

test('managing a vault grants no data: a Contributor manages its network and monitoring but cannot read its secrets', async () => {
  const contributor = armClient(server, principals.contributor.credential);
  const put = await contributor('PUT', `${vaultId()}/providers/Microsoft.Insights/diagnosticSettings/by-contributor`, {
    properties: { workspaceId: `${rg()}/providers/Microsoft.OperationalInsights/workspaces/wsone`, logs: [{ categoryGroup: 'audit', enabled: true }] },
  }, '2021-05-01-preview');
  assert.equal(put.status, 200, JSON.stringify(put.body));
  const secrets = secretClientAs(server, VAULT, principals.contributor.credential);
  await assert.rejects(secrets.getSecret('db-password'), (err: any) => err.statusCode === 403 && err.code === 'Forbidden');
  await assert.rejects(secrets.setSecret('planted', 'x'), (err: any) => err.statusCode === 403);
  await assert.rejects(async () => {
    for await (const _ of secrets.listPropertiesOfSecrets()) break;
  }, (err: any) => err.statusCode === 403);
  // Nor may it grant itself the data role: Contributor cannot write role assignments.
  const grant = await contributor('PUT', `${vaultId()}/providers/Microsoft.Authorization/roleAssignments/${crypto.randomUUID()}`, {
    properties: { roleDefinitionId: `/subscriptions/${server.admin.subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/${ROLE_IDS.keyVaultSecretsUser}`, principalId: principals.contributor.objectId },
  });
  assert.equal(grant.status, 403, JSON.stringify(grant.body));
  assert.equal(grant.body.error.code, 'AuthorizationFailed');
  // A Key Vault Secrets User reads the secret, yet manages nothing of the vault.
  assert.equal((await secretClientAs(server, VAULT, principals.secretsUser.credential).getSecret('db-password')).value, 'contributors-must-not-see-this');
});

test('key release and certificate issuers: only their own data roles reach them, never management roles', async () => {
  const admin = await server.adminCredential.getToken(`${server.coffer.endpoints.dataPlaneResource}/.default`);
  const vault = server.vaultUrl(VAULT).replace(/\/$/, '');
  const dataCall = async (who: TestPrincipal | 'admin', method: string, p: string, body?: unknown) => {
    const token = who === 'admin' ? admin!.token : (await who.credential.getToken(`${server.coffer.endpoints.dataPlaneResource}/.default`))!.token;
    const res = await fetch(`${vault}${p}?api-version=7.5`, {
      method, headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: await res.json().catch(() => undefined) };
  };
  const policy = { version: '1.0.0', anyOf: [{ authority: 'https://attest.example', allOf: [{ claim: 'x-ms-attestation-type', equals: 'sevsnpvm' }] }] };
  const created = await dataCall('admin', 'POST', '/keys/releasable/create', {
    kty: 'RSA', key_size: 2048, attributes: { exportable: true },
    release_policy: { contentType: 'application/json; charset=utf-8', data: Buffer.from(JSON.stringify(policy)).toString('base64url') },
  });
  assert.equal(created.status, 200, JSON.stringify(created.body));
  assert.equal((await dataCall('admin', 'PUT', '/certificates/issuers/ca', { provider: 'Test', credentials: { account_id: 'acct', pwd: 'issuer-pw' } })).status, 200);
  for (const who of ['nobody', 'reader', 'secretsUser', 'contributor'] as const) {
    const release = await dataCall(principals[who], 'POST', '/keys/releasable/release', { target: 'a.b.c' });
    assert.equal(release.status, 403, `${who} release: ${JSON.stringify(release.body)}`);
    assert.equal(release.body.error.code, 'Forbidden');
    const issuer = await dataCall(principals[who], 'GET', '/certificates/issuers/ca');
    assert.equal(issuer.status, 403, `${who} issuer: ${JSON.stringify(issuer.body)}`);
    const write = await dataCall(principals[who], 'PUT', '/certificates/issuers/ca', { provider: 'Test', credentials: { pwd: 'planted' } });
    assert.equal(write.status, 403, `${who} issuer write: ${JSON.stringify(write.body)}`);
  }
  // The release role gets past authorization (the token is then judged: a bad one is a 400) but reads nothing else.
  const released = await dataCall(principals.releaser, 'POST', '/keys/releasable/release', { target: 'a.b.c' });
  assert.equal(released.status, 400, JSON.stringify(released.body));
  assert.equal((await dataCall(principals.releaser, 'GET', '/keys/releasable')).status, 403);
  assert.equal((await dataCall(principals.releaser, 'GET', '/secrets/db-password')).status, 403);
});
