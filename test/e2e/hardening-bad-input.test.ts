import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startTestServer, type TestServer } from '../support/server.js';
import { armClient } from '../support/arm.js';
import { dataPlaneToken, managementToken, rawRequest, type RawResponse } from '../support/raw-http.js';
import { startWebhook, type Webhook } from '../support/webhook.js';

// Bad input against every endpoint family this round added: each must answer a 4xx with an Azure-shaped body (the
// token and IMDS endpoints: the OAuth shape their clients parse), never a 5xx, and change nothing.
let server: TestServer;
let hook: Webhook;
let mgmt: string;
let data: string;
const VAULT = 'hardvault';
const NETWORK_API = '2024-05-01';
const EVENTGRID_API = '2022-06-15';
const INSIGHTS_API = '2021-05-01-preview';

const rg = () => `/subscriptions/${server.admin.subscriptionId}/resourceGroups/rg-test`;
const vaultId = () => `${rg()}/providers/Microsoft.KeyVault/vaults/${VAULT}`;
const vnetPath = (name: string) => `${rg()}/providers/Microsoft.Network/virtualNetworks/${name}`;
const endpointPath = (name: string) => `${rg()}/providers/Microsoft.Network/privateEndpoints/${name}`;
const workspacePath = (name: string) => `${rg()}/providers/Microsoft.OperationalInsights/workspaces/${name}`;
const storagePath = (name: string) => `${rg()}/providers/Microsoft.Storage/storageAccounts/${name}`;
const hubPath = (name: string) => `${rg()}/providers/Microsoft.EventHub/namespaces/${name}`;
const settingPath = (name: string) => `${vaultId()}/providers/Microsoft.Insights/diagnosticSettings/${name}`;
const subscriptionPath = (name: string) => `${vaultId()}/providers/Microsoft.EventGrid/eventSubscriptions/${name}`;
const LONG = 'a'.repeat(5000);
const HUGE = 'x'.repeat(3 * 1024 * 1024);

interface Probe {
  method: string;
  /** A management path (with its own api-version, or `apiVersion`), or a full URL. */
  path: string;
  apiVersion?: string;
  body?: unknown;
  headers?: Record<string, string>;
  token?: string | null;
}

async function send(p: Probe): Promise<RawResponse> {
  const base = p.path.startsWith('https://') ? p.path : `${server.admin.managementEndpoint}${p.path}`;
  const url = p.apiVersion === undefined || base.includes('api-version=') ? base : `${base}${base.includes('?') ? '&' : '?'}api-version=${p.apiVersion}`;
  return rawRequest(url, { method: p.method, token: p.token === undefined ? mgmt : p.token, body: p.body, headers: p.headers });
}

/** Every probe is a client mistake: a 4xx with `{error:{code,message}}` (or the OAuth shape), never a 5xx. */
async function refused(label: string, p: Probe, opts: { oauth?: boolean; status?: number } = {}) {
  const res = await send(p);
  const where = `${label}: ${p.method} ${p.path.slice(0, 200)} -> ${res.status} ${res.text.slice(0, 300)}`;
  assert.ok(res.status >= 400 && res.status < 500, where);
  if (opts.status) assert.equal(res.status, opts.status, where);
  if (opts.oauth) {
    assert.equal(typeof res.json?.error, 'string', where);
  } else if (p.method !== 'HEAD') {
    assert.equal(typeof res.json?.error?.code, 'string', where);
    assert.equal(typeof res.json?.error?.message, 'string', where);
    assert.ok(res.json.error.code.length > 0 && res.json.error.message.length > 0, where);
  }
  return res;
}

/** The malformed-body variants every JSON write endpoint must refuse. */
function malformedBodies(method: string, path: string, apiVersion?: string): [string, Probe][] {
  return [
    ['malformed JSON', { method, path, apiVersion, body: '{"location": "local", ', headers: { 'content-type': 'application/json' } }],
    ['JSON that is not an object', { method, path, apiVersion, body: '[1,2,3]', headers: { 'content-type': 'application/json' } }],
    ['JSON null', { method, path, apiVersion, body: 'null', headers: { 'content-type': 'application/json' } }],
    ['a string body', { method, path, apiVersion, body: '"text"', headers: { 'content-type': 'application/json' } }],
    ['wrong content type', { method, path, apiVersion, body: 'location=local', headers: { 'content-type': 'text/plain' } }],
    ['form content type', { method, path, apiVersion, body: 'location=local', headers: { 'content-type': 'application/x-www-form-urlencoded' } }],
    ['an oversized body', { method, path, apiVersion, body: JSON.stringify({ location: HUGE }), headers: { 'content-type': 'application/json' } }],
    ['no token', { method, path, apiVersion, body: { location: 'local' }, token: null }],
    ['a forged token', { method, path, apiVersion, body: { location: 'local' }, token: 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.' }],
  ];
}

/** What every family looks like from outside: GETs whose answers must be the same before and after the probes. */
async function snapshot() {
  const lists = [
    `${rg()}/providers/Microsoft.Network/virtualNetworks?api-version=${NETWORK_API}`,
    `${vnetPath('vnet1')}/subnets?api-version=${NETWORK_API}`,
    `${rg()}/providers/Microsoft.Network/privateEndpoints?api-version=${NETWORK_API}`,
    '/coffer/admin/trusted-services',
    `${rg()}/providers/Microsoft.OperationalInsights/workspaces?api-version=2022-10-01`,
    `${rg()}/providers/Microsoft.Storage/storageAccounts?api-version=2023-01-01`,
    `${rg()}/providers/Microsoft.EventHub/namespaces?api-version=2021-11-01`,
    `${vaultId()}/providers/Microsoft.Insights/diagnosticSettings?api-version=${INSIGHTS_API}`,
    `${vaultId()}/providers/Microsoft.EventGrid/eventSubscriptions?api-version=${EVENTGRID_API}`,
    `${rg()}/providers/Microsoft.ManagedIdentity/userAssignedIdentities?api-version=2023-01-31`,
    '/coffer/trusted-issuers',
    '/v1.0/users',
    '/v1.0/servicePrincipals',
    `${vaultId()}?api-version=2025-05-01`,
  ];
  const out: Record<string, unknown> = {};
  for (const list of lists) {
    const res = await send({ method: 'GET', path: list });
    assert.equal(res.status, 200, `${list}: ${res.text}`);
    out[list] = res.json;
  }
  const vault = server.vaultUrl(VAULT).replace(/\/$/, '');
  for (const list of ['/keys', '/secrets', '/certificates', '/certificates/issuers', '/keys/releasable/versions', '/keys/releasable']) {
    const res = await rawRequest(`${vault}${list}?api-version=7.5`, { token: data });
    assert.equal(res.status, 200, `${list}: ${res.text}`);
    out[list] = res.json;
  }
  return out;
}

before(async () => {
  server = await startTestServer({ attestationAuthorities: ['https://attest.example'] });
  const tlsFile = (name: string) => fs.readFileSync(path.join(server.dataDir, 'tls', name), 'utf8');
  hook = await startWebhook({ tls: { cert: tlsFile('server.crt'), key: tlsFile('server.key') } });
  mgmt = await managementToken(server);
  data = await dataPlaneToken(server);
  await server.createVault(VAULT);
  const arm = armClient(server, server.adminCredential);
  const ok = async (res: Promise<{ status: number; body: any }>) => {
    const { status, body } = await res;
    assert.ok(status < 300, JSON.stringify(body));
    return body;
  };
  await ok(arm('PUT', vnetPath('vnet1'), {
    location: 'local', properties: { addressSpace: { addressPrefixes: ['127.40.0.0/16'] }, subnets: [{ name: 'app', properties: { addressPrefix: '127.40.1.0/24' } }] },
  }, NETWORK_API));
  await ok(arm('PUT', workspacePath('ws-hard'), { location: 'local' }, '2022-10-01'));
  await ok(arm('PUT', storagePath('hardfiles'), { location: 'local' }, '2023-01-01'));
  await ok(arm('PUT', hubPath('hard-hub'), { location: 'local', properties: { serviceBusEndpoint: `${hook.base}/hub` } }, '2021-11-01'));
  await ok(arm('PUT', settingPath('to-ws'), { properties: { workspaceId: workspacePath('ws-hard'), logs: [{ categoryGroup: 'audit', enabled: true }] } }, INSIGHTS_API));
  await ok(arm('PUT', subscriptionPath('hard-sub'), { properties: { destination: { endpointType: 'WebHook', properties: { endpointUrl: `${hook.base}/eg?code=k` } } } }, EVENTGRID_API));
  await ok(arm('PUT', `${rg()}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/hard-id`, { location: 'local' }, '2023-01-31'));
  await ok(arm('POST', '/v1.0/users', { displayName: 'Hard', userPrincipalName: 'hard@coffer.test', passwordProfile: { password: 'Hard-password-1' } }, ''));
  const vault = server.vaultUrl(VAULT).replace(/\/$/, '');
  const created = await rawRequest(`${vault}/keys/releasable/create?api-version=7.5`, {
    method: 'POST', token: data, body: {
      kty: 'RSA', key_size: 2048, attributes: { exportable: true },
      release_policy: { contentType: 'application/json; charset=utf-8', data: Buffer.from(JSON.stringify({ version: '1.0.0', anyOf: [{ authority: 'https://attest.example', allOf: [{ claim: 'x-ms-sevsnpvm-is-debuggable', equals: false }] }] })).toString('base64url') },
    },
  });
  assert.equal(created.status, 200, created.text);
});
after(async () => {
  await server?.close();
  await hook?.close();
});

test('Microsoft.Network: malformed bodies, wrong types, bad names and prefixes, wrong methods are 4xx and change nothing', async () => {
  const before = await snapshot();
  const vnet = vnetPath('vnet-bad');
  const cases: [string, Probe][] = [
    ...malformedBodies('PUT', vnet, NETWORK_API),
    ['missing location', { method: 'PUT', path: vnet, apiVersion: NETWORK_API, body: { properties: { addressSpace: { addressPrefixes: ['127.41.0.0/16'] } } } }],
    ['missing properties', { method: 'PUT', path: vnet, apiVersion: NETWORK_API, body: { location: 'local' } }],
    ['prefixes of the wrong type', { method: 'PUT', path: vnet, apiVersion: NETWORK_API, body: { location: 'local', properties: { addressSpace: { addressPrefixes: '127.41.0.0/16' } } } }],
    ['a prefix that is a number', { method: 'PUT', path: vnet, apiVersion: NETWORK_API, body: { location: 'local', properties: { addressSpace: { addressPrefixes: [12] } } } }],
    ['a huge prefix list', { method: 'PUT', path: vnet, apiVersion: NETWORK_API, body: { location: 'local', properties: { addressSpace: { addressPrefixes: Array.from({ length: 5000 }, (_, i) => `10.${i >> 8}.${i & 255}.0/24`) } } } }],
    ['an IPv6 prefix', { method: 'PUT', path: vnet, apiVersion: NETWORK_API, body: { location: 'local', properties: { addressSpace: { addressPrefixes: ['fe80::/10x'] } } } }],
    ['subnets of the wrong type', { method: 'PUT', path: vnet, apiVersion: NETWORK_API, body: { location: 'local', properties: { addressSpace: { addressPrefixes: ['127.41.0.0/16'] }, subnets: {} } } }],
    ['a subnet without a name', { method: 'PUT', path: vnet, apiVersion: NETWORK_API, body: { location: 'local', properties: { addressSpace: { addressPrefixes: ['127.41.0.0/16'] }, subnets: [{ properties: { addressPrefix: '127.41.1.0/24' } }] } } }],
    ['duplicate subnets', { method: 'PUT', path: vnet, apiVersion: NETWORK_API, body: { location: 'local', properties: { addressSpace: { addressPrefixes: ['127.41.0.0/16'] }, subnets: [{ name: 'a', properties: { addressPrefix: '127.41.1.0/24' } }, { name: 'A', properties: { addressPrefix: '127.41.2.0/24' } }] } } }],
    ['tags of the wrong type', { method: 'PUT', path: vnet, apiVersion: NETWORK_API, body: { location: 'local', tags: { a: 1 }, properties: { addressSpace: { addressPrefixes: ['127.41.0.0/16'] } } } }],
    ['a bad name', { method: 'PUT', path: vnetPath('-bad-'), apiVersion: NETWORK_API, body: { location: 'local', properties: { addressSpace: { addressPrefixes: ['127.41.0.0/16'] } } } }],
    ['a long name', { method: 'PUT', path: vnetPath(LONG.slice(0, 300)), apiVersion: NETWORK_API, body: { location: 'local', properties: { addressSpace: { addressPrefixes: ['127.41.0.0/16'] } } } }],
    ['a traversal name', { method: 'PUT', path: vnetPath('..%2F..%2Fetc'), apiVersion: NETWORK_API, body: { location: 'local', properties: { addressSpace: { addressPrefixes: ['127.41.0.0/16'] } } } }],
    ['an encoded NUL name', { method: 'PUT', path: vnetPath('a%00b'), apiVersion: NETWORK_API, body: { location: 'local', properties: { addressSpace: { addressPrefixes: ['127.41.0.0/16'] } } } }],
    ['another subscription', { method: 'PUT', path: vnet.replace(server.admin.subscriptionId, '00000000-0000-0000-0000-000000000000'), apiVersion: NETWORK_API, body: { location: 'local', properties: { addressSpace: { addressPrefixes: ['127.41.0.0/16'] } } } }],
    ['a missing resource group', { method: 'PUT', path: vnet.replace('rg-test', 'rg-nosuch'), apiVersion: NETWORK_API, body: { location: 'local', properties: { addressSpace: { addressPrefixes: ['127.41.0.0/16'] } } } }],
    ['POST on a vnet', { method: 'POST', path: vnetPath('vnet1'), apiVersion: NETWORK_API, body: {} }],
    ['PATCH on a vnet', { method: 'PATCH', path: vnetPath('vnet1'), apiVersion: NETWORK_API, body: { tags: {} } }],
    ['a subnet with no prefix', { method: 'PUT', path: `${vnetPath('vnet1')}/subnets/s2`, apiVersion: NETWORK_API, body: { properties: {} } }],
    ['a subnet prefix of the wrong type', { method: 'PUT', path: `${vnetPath('vnet1')}/subnets/s2`, apiVersion: NETWORK_API, body: { properties: { addressPrefix: ['127.40.2.0/24'] } } }],
    ['a malformed subnet body', { method: 'PUT', path: `${vnetPath('vnet1')}/subnets/s2`, apiVersion: NETWORK_API, body: '{', headers: { 'content-type': 'application/json' } }],
    ['a subnet with a bad name', { method: 'PUT', path: `${vnetPath('vnet1')}/subnets/.bad`, apiVersion: NETWORK_API, body: { properties: { addressPrefix: '127.40.2.0/24' } } }],
    ['a subnet of a missing vnet', { method: 'PUT', path: `${vnetPath('nosuch')}/subnets/s2`, apiVersion: NETWORK_API, body: { properties: { addressPrefix: '127.40.2.0/24' } } }],
    ['a subnet prefix outside the vnet', { method: 'PUT', path: `${vnetPath('vnet1')}/subnets/s2`, apiVersion: NETWORK_API, body: { properties: { addressPrefix: '10.0.0.0/24' } } }],
    ['an endpoint with a malformed body', { method: 'PUT', path: endpointPath('pe-bad'), apiVersion: NETWORK_API, body: '{"x"', headers: { 'content-type': 'application/json' } }],
    ['an endpoint without connections', { method: 'PUT', path: endpointPath('pe-bad'), apiVersion: NETWORK_API, body: { location: 'local', properties: {} } }],
    ['an endpoint with empty connections', { method: 'PUT', path: endpointPath('pe-bad'), apiVersion: NETWORK_API, body: { location: 'local', properties: { privateLinkServiceConnections: [], ipConfigurations: [] } } }],
    ['an endpoint to a missing vault', {
      method: 'PUT', path: endpointPath('pe-bad'), apiVersion: NETWORK_API, body: {
        location: 'local', properties: {
          privateLinkServiceConnections: [{ name: 'c', properties: { privateLinkServiceId: `${rg()}/providers/Microsoft.KeyVault/vaults/nosuch`, groupIds: ['vault'] } }],
          ipConfigurations: [{ name: 'ip', properties: { privateIPAddress: '127.40.1.9', groupId: 'vault', memberName: 'default' } }],
        },
      },
    }],
    ['an endpoint to a non-vault id', {
      method: 'PUT', path: endpointPath('pe-bad'), apiVersion: NETWORK_API, body: {
        location: 'local', properties: {
          privateLinkServiceConnections: [{ name: 'c', properties: { privateLinkServiceId: '../../../etc/passwd', groupIds: ['vault'] } }],
          ipConfigurations: [{ name: 'ip', properties: { privateIPAddress: '127.40.1.9' } }],
        },
      },
    }],
    ['an endpoint with an unknown group id', {
      method: 'PUT', path: endpointPath('pe-bad'), apiVersion: NETWORK_API, body: {
        location: 'local', properties: {
          privateLinkServiceConnections: [{ name: 'c', properties: { privateLinkServiceId: vaultId(), groupIds: ['blob'] } }],
          ipConfigurations: [{ name: 'ip', properties: { privateIPAddress: '127.40.1.9' } }],
        },
      },
    }],
    ['an endpoint with a bad IP address', {
      method: 'PUT', path: endpointPath('pe-bad'), apiVersion: NETWORK_API, body: {
        location: 'local', properties: {
          privateLinkServiceConnections: [{ name: 'c', properties: { privateLinkServiceId: vaultId(), groupIds: ['vault'] } }],
          ipConfigurations: [{ name: 'ip', properties: { privateIPAddress: '999.1.1.1' } }],
        },
      },
    }],
    ['an endpoint in a missing subnet', {
      method: 'PUT', path: endpointPath('pe-bad'), apiVersion: NETWORK_API, body: {
        location: 'local', properties: {
          subnet: { id: `${vnetPath('vnet1')}/subnets/nosuch` },
          privateLinkServiceConnections: [{ name: 'c', properties: { privateLinkServiceId: vaultId(), groupIds: ['vault'] } }],
          ipConfigurations: [{ name: 'ip', properties: { privateIPAddress: '127.40.1.9' } }],
        },
      },
    }],
    ['a missing private endpoint connection', { method: 'GET', path: `${vaultId()}/privateEndpointConnections/nosuch`, apiVersion: '2025-05-01' }],
    ['a traversal private endpoint connection', { method: 'GET', path: `${vaultId()}/privateEndpointConnections/..%2F..%2Fx`, apiVersion: '2025-05-01' }],
    ['a connection write', { method: 'PUT', path: `${vaultId()}/privateEndpointConnections/c1`, apiVersion: '2025-05-01', body: { properties: { privateLinkServiceConnectionState: { status: 'Bogus' } } } }],
    ['private link resources of a missing vault', { method: 'GET', path: `${rg()}/providers/Microsoft.KeyVault/vaults/nosuchvault/privateLinkResources`, apiVersion: '2025-05-01' }],
    ['a delete of a missing endpoint in a missing group', { method: 'DELETE', path: endpointPath('x').replace('rg-test', 'rg-nosuch'), apiVersion: NETWORK_API }],
    ['a trusted service that does not exist', { method: 'PUT', path: '/coffer/admin/trusted-services/00000000-0000-0000-0000-000000000000' }],
    ['a trusted service with a traversal id', { method: 'PUT', path: '/coffer/admin/trusted-services/..%2F..%2Fadmin' }],
    ['a trusted service with a long id', { method: 'PUT', path: `/coffer/admin/trusted-services/${LONG}` }],
    ['POST to trusted services', { method: 'POST', path: '/coffer/admin/trusted-services', body: {} }],
    ...malformedBodies('POST', '/coffer/admin/service-principals'),
    ['a service principal without a name', { method: 'POST', path: '/coffer/admin/service-principals', body: {} }],
    ['a service principal name of the wrong type', { method: 'POST', path: '/coffer/admin/service-principals', body: { displayName: ['x'] } }],
    ['a service principal with a huge name', { method: 'POST', path: '/coffer/admin/service-principals', body: { displayName: LONG.repeat(20) } }],
    ['a clock advance that is no duration', { method: 'POST', path: '/coffer/admin/clock/advance', body: { advance: 'banana' } }],
    ['a negative clock advance', { method: 'POST', path: '/coffer/admin/clock/advance', body: { advance: '-1d' } }],
    ['a huge clock advance', { method: 'POST', path: '/coffer/admin/clock/advance', body: { advance: '99999999999999999999d' } }],
    ['a clock advance of the wrong type', { method: 'POST', path: '/coffer/admin/clock/advance', body: { advance: 5 } }],
  ];
  for (const [label, probe] of cases) await refused(label, probe);
  assert.deepEqual(await snapshot(), before);
});

test('Azure Monitor: destinations, diagnostic settings and workspace queries refuse bad input and change nothing', async () => {
  const before = await snapshot();
  const setting = settingPath('bad-setting');
  const ws = workspacePath('ws-bad');
  const customerId = (await send({ method: 'GET', path: workspacePath('ws-hard'), apiVersion: '2022-10-01' })).json.properties.customerId;
  const query = (body: unknown, extra: Partial<Probe> = {}): Probe => ({ method: 'POST', path: `/v1/workspaces/${customerId}/query`, body, ...extra });
  const cases: [string, Probe][] = [
    ...malformedBodies('PUT', ws, '2022-10-01'),
    ['a workspace without location', { method: 'PUT', path: ws, apiVersion: '2022-10-01', body: { properties: {} } }],
    ['a workspace location of the wrong type', { method: 'PUT', path: ws, apiVersion: '2022-10-01', body: { location: 5 } }],
    ['a workspace with a bad name', { method: 'PUT', path: workspacePath('a'), apiVersion: '2022-10-01', body: { location: 'local' } }],
    ['a workspace with a traversal name', { method: 'PUT', path: workspacePath('..%2F..%2Fx'), apiVersion: '2022-10-01', body: { location: 'local' } }],
    ['a storage account with an upper-case name', { method: 'PUT', path: storagePath('BadName'), apiVersion: '2023-01-01', body: { location: 'local' } }],
    ['a storage account with a traversal name', { method: 'PUT', path: storagePath('..%2F..%2F..%2Ftmp'), apiVersion: '2023-01-01', body: { location: 'local' } }],
    ['a storage account with a dotted name', { method: 'PUT', path: storagePath('..'), apiVersion: '2023-01-01', body: { location: 'local' } }],
    ['an event hub without an endpoint', { method: 'PUT', path: hubPath('bad-hub'), apiVersion: '2021-11-01', body: { location: 'local', properties: {} } }],
    ['an event hub with an http endpoint', { method: 'PUT', path: hubPath('bad-hub'), apiVersion: '2021-11-01', body: { location: 'local', properties: { serviceBusEndpoint: 'http://example.com' } } }],
    ['an event hub with a non-URL endpoint', { method: 'PUT', path: hubPath('bad-hub'), apiVersion: '2021-11-01', body: { location: 'local', properties: { serviceBusEndpoint: 'https://' } } }],
    ['an event hub with a long endpoint', { method: 'PUT', path: hubPath('bad-hub'), apiVersion: '2021-11-01', body: { location: 'local', properties: { serviceBusEndpoint: `https://${LONG}` } } }],
    ['rules of a missing namespace', { method: 'GET', path: `${hubPath('no-such-hub')}/authorizationRules`, apiVersion: '2021-11-01' }],
    ...malformedBodies('PUT', setting, INSIGHTS_API),
    ['a setting without properties', { method: 'PUT', path: setting, apiVersion: INSIGHTS_API, body: {} }],
    ['a setting without a destination', { method: 'PUT', path: setting, apiVersion: INSIGHTS_API, body: { properties: { logs: [{ categoryGroup: 'audit', enabled: true }] } } }],
    ['a setting with logs of the wrong type', { method: 'PUT', path: setting, apiVersion: INSIGHTS_API, body: { properties: { workspaceId: workspacePath('ws-hard'), logs: 'all' } } }],
    ['a setting with enabled of the wrong type', { method: 'PUT', path: setting, apiVersion: INSIGHTS_API, body: { properties: { workspaceId: workspacePath('ws-hard'), logs: [{ category: 'AuditEvent', enabled: 'yes' }] } } }],
    ['a setting with an unknown category', { method: 'PUT', path: setting, apiVersion: INSIGHTS_API, body: { properties: { workspaceId: workspacePath('ws-hard'), logs: [{ category: 'NoSuchCategory', enabled: true }] } } }],
    ['a setting with an unknown category group', { method: 'PUT', path: setting, apiVersion: INSIGHTS_API, body: { properties: { workspaceId: workspacePath('ws-hard'), logs: [{ categoryGroup: 'everything', enabled: true }] } } }],
    ['a setting to a missing workspace', { method: 'PUT', path: setting, apiVersion: INSIGHTS_API, body: { properties: { workspaceId: workspacePath('nosuch'), logs: [{ categoryGroup: 'audit', enabled: true }] } } }],
    ['a setting to a garbage workspace id', { method: 'PUT', path: setting, apiVersion: INSIGHTS_API, body: { properties: { workspaceId: '../../etc/passwd', logs: [{ categoryGroup: 'audit', enabled: true }] } } }],
    ['a setting to a workspace id that is a number', { method: 'PUT', path: setting, apiVersion: INSIGHTS_API, body: { properties: { workspaceId: 42, logs: [{ categoryGroup: 'audit', enabled: true }] } } }],
    ['a setting to a storage account that is a workspace', { method: 'PUT', path: setting, apiVersion: INSIGHTS_API, body: { properties: { storageAccountId: workspacePath('ws-hard'), logs: [{ categoryGroup: 'audit', enabled: true }] } } }],
    ['a setting to a missing event hub rule', { method: 'PUT', path: setting, apiVersion: INSIGHTS_API, body: { properties: { eventHubAuthorizationRuleId: `${hubPath('hard-hub')}/authorizationRules/Other`, logs: [{ categoryGroup: 'audit', enabled: true }] } } }],
    ['a setting with a bad name', { method: 'PUT', path: settingPath('a%3Cb'), apiVersion: INSIGHTS_API, body: { properties: { workspaceId: workspacePath('ws-hard'), logs: [{ categoryGroup: 'audit', enabled: true }] } } }],
    ['a setting with a long name', { method: 'PUT', path: settingPath(LONG.slice(0, 400)), apiVersion: INSIGHTS_API, body: { properties: { workspaceId: workspacePath('ws-hard'), logs: [{ categoryGroup: 'audit', enabled: true }] } } }],
    ['a setting on a missing vault', { method: 'PUT', path: settingPath('s').replace(`vaults/${VAULT}`, 'vaults/nosuchvault'), apiVersion: INSIGHTS_API, body: { properties: { workspaceId: workspacePath('ws-hard'), logs: [{ categoryGroup: 'audit', enabled: true }] } } }],
    ['a missing category', { method: 'GET', path: `${vaultId()}/providers/Microsoft.Insights/diagnosticSettingsCategories/Nope`, apiVersion: INSIGHTS_API }],
    ['POST to a setting', { method: 'POST', path: setting, apiVersion: INSIGHTS_API, body: {} }],
    ['a query with malformed JSON', query('{"query":', { headers: { 'content-type': 'application/json' } })],
    ['a query without a query', query({})],
    ['a query of the wrong type', query({ query: 42 })],
    ['an empty query', query({ query: '' })],
    ['an oversized query', query({ query: `AzureDiagnostics | where ${LONG.repeat(3)}` })],
    ['a query with a bad timespan', query({ query: 'AzureDiagnostics', timespan: 'yesterday' })],
    ['a query with a huge duration', query({ query: 'AzureDiagnostics', timespan: 'P99999999999999Y' })],
    ['a query with an invalid date', query({ query: 'AzureDiagnostics', timespan: '2024-13-45T99:99:99Z/PT1H' })],
    ['an unparseable query', query({ query: 'AzureDiagnostics | where (((' })],
    ['an unknown table', query({ query: 'NoSuchTable | take 1' })],
    ['an unknown operator', query({ query: 'AzureDiagnostics | frobnicate' })],
    ['a take of the wrong type', query({ query: 'AzureDiagnostics | take "x"' })],
    ['a negative take', query({ query: 'AzureDiagnostics | take -1' })],
    ['an unterminated string', query({ query: 'AzureDiagnostics | where OperationName == "abc' })],
    ['a bad ago()', query({ query: 'AzureDiagnostics | where TimeGenerated > ago(banana)' })],
    ['an unknown column', query({ query: 'AzureDiagnostics | project NoSuchColumn' })],
    ['a bad regex', query({ query: 'AzureDiagnostics | where OperationName matches regex "("' })],
    ['a bad summarize', query({ query: 'AzureDiagnostics | summarize by' })],
    ['a query of a missing workspace', { method: 'POST', path: '/v1/workspaces/00000000-0000-0000-0000-000000000000/query', body: { query: 'AzureDiagnostics' } }],
    ['a query of a traversal workspace', { method: 'POST', path: '/v1/workspaces/..%2F..%2Fx/query', body: { query: 'AzureDiagnostics' } }],
    ['a GET query without a query', { method: 'GET', path: `/v1/workspaces/${customerId}/query` }],
    ['a query without a token', query({ query: 'AzureDiagnostics' }, { token: null })],
    ['metrics with a bad timespan', { method: 'GET', path: `${vaultId()}/providers/Microsoft.Insights/metrics?api-version=2018-01-01&timespan=banana` }],
    ['metrics with a bad interval', { method: 'GET', path: `${vaultId()}/providers/Microsoft.Insights/metrics?api-version=2018-01-01&interval=PTabc` }],
    ['metrics with a zero interval', { method: 'GET', path: `${vaultId()}/providers/Microsoft.Insights/metrics?api-version=2018-01-01&interval=PT0M` }],
    ['metrics with an unknown metric', { method: 'GET', path: `${vaultId()}/providers/Microsoft.Insights/metrics?api-version=2018-01-01&metricnames=NoSuchMetric` }],
    ['metrics with an unknown aggregation', { method: 'GET', path: `${vaultId()}/providers/Microsoft.Insights/metrics?api-version=2018-01-01&metricnames=ServiceApiHit&aggregation=Median` }],
    ['metrics with a bad filter', { method: 'GET', path: `${vaultId()}/providers/Microsoft.Insights/metrics?api-version=2018-01-01&metricnames=ServiceApiHit&$filter=((((` }],
    ['metrics with repeated metric names', { method: 'GET', path: `${vaultId()}/providers/Microsoft.Insights/metrics?api-version=2018-01-01&metricnames=ServiceApiHit&metricnames=Availability` }],
    ['metrics with a repeated aggregation', { method: 'GET', path: `${vaultId()}/providers/Microsoft.Insights/metrics?api-version=2018-01-01&aggregation=Total&aggregation=Count` }],
    ['metrics with a repeated filter', { method: 'GET', path: `${vaultId()}/providers/Microsoft.Insights/metrics?api-version=2018-01-01&$filter=a&$filter=b` }],
    ['metrics with an oversized filter', { method: 'GET', path: `${vaultId()}/providers/Microsoft.Insights/metrics?api-version=2018-01-01&$filter=${LONG}` }],
    ['metrics of a missing vault', { method: 'GET', path: `${rg()}/providers/Microsoft.KeyVault/vaults/nosuchvault/providers/Microsoft.Insights/metrics?api-version=2018-01-01` }],
  ];
  for (const [label, probe] of cases) await refused(label, probe);
  assert.deepEqual(await snapshot(), before);
  // The storage-account traversal made no directory outside the storage root.
  assert.ok(!fs.existsSync(path.join(server.dataDir, 'tmp')));
});

test('Event Grid subscriptions refuse bad input (and getFullUrl of what does not exist) and change nothing', async () => {
  const before = await snapshot();
  const sub = subscriptionPath('bad-sub');
  const body = (properties: Record<string, unknown>) => ({ properties: { destination: { endpointType: 'WebHook', properties: { endpointUrl: `${hook.base}/eg` } }, ...properties } });
  const cases: [string, Probe][] = [
    ...malformedBodies('PUT', sub, EVENTGRID_API),
    ['no properties', { method: 'PUT', path: sub, apiVersion: EVENTGRID_API, body: {} }],
    ['no destination', { method: 'PUT', path: sub, apiVersion: EVENTGRID_API, body: { properties: {} } }],
    ['an unknown endpoint type', { method: 'PUT', path: sub, apiVersion: EVENTGRID_API, body: { properties: { destination: { endpointType: 'Carrier pigeon', properties: { endpointUrl: `${hook.base}/eg` } } } } }],
    ['no endpoint URL', { method: 'PUT', path: sub, apiVersion: EVENTGRID_API, body: { properties: { destination: { endpointType: 'WebHook', properties: {} } } } }],
    ['an endpoint URL of the wrong type', { method: 'PUT', path: sub, apiVersion: EVENTGRID_API, body: { properties: { destination: { endpointType: 'WebHook', properties: { endpointUrl: 7 } } } } }],
    ['a relative endpoint URL', { method: 'PUT', path: sub, apiVersion: EVENTGRID_API, body: { properties: { destination: { endpointType: 'WebHook', properties: { endpointUrl: '/hook' } } } } }],
    ['a file: endpoint URL', { method: 'PUT', path: sub, apiVersion: EVENTGRID_API, body: { properties: { destination: { endpointType: 'WebHook', properties: { endpointUrl: 'file:///etc/passwd' } } } } }],
    ['a plain http endpoint that is not loopback', { method: 'PUT', path: sub, apiVersion: EVENTGRID_API, body: { properties: { destination: { endpointType: 'WebHook', properties: { endpointUrl: 'http://example.com/hook' } } } } }],
    ['an oversized endpoint URL', { method: 'PUT', path: sub, apiVersion: EVENTGRID_API, body: { properties: { destination: { endpointType: 'WebHook', properties: { endpointUrl: `${hook.base}/${LONG}` } } } } }],
    ['an endpoint that fails the handshake', { method: 'PUT', path: sub, apiVersion: EVENTGRID_API, body: { properties: { destination: { endpointType: 'WebHook', properties: { endpointUrl: `${hook.base}/silent` } } } } }],
    ['an unknown delivery schema', { method: 'PUT', path: sub, apiVersion: EVENTGRID_API, body: body({ eventDeliverySchema: 'CustomInputSchema' }) }],
    ['an unknown event type', { method: 'PUT', path: sub, apiVersion: EVENTGRID_API, body: body({ filter: { includedEventTypes: ['Microsoft.KeyVault.Nope'] } }) }],
    ['event types of the wrong type', { method: 'PUT', path: sub, apiVersion: EVENTGRID_API, body: body({ filter: { includedEventTypes: 'Microsoft.KeyVault.SecretNewVersionCreated' } }) }],
    ['too many event types', { method: 'PUT', path: sub, apiVersion: EVENTGRID_API, body: body({ filter: { includedEventTypes: Array(30).fill('Microsoft.KeyVault.SecretNewVersionCreated') } }) }],
    ['a case flag of the wrong type', { method: 'PUT', path: sub, apiVersion: EVENTGRID_API, body: body({ filter: { isSubjectCaseSensitive: 'yes' } }) }],
    ['advanced filters', { method: 'PUT', path: sub, apiVersion: EVENTGRID_API, body: body({ filter: { advancedFilters: [{ operatorType: 'Nope', key: 'data.x' }] } }) }],
    ['zero delivery attempts', { method: 'PUT', path: sub, apiVersion: EVENTGRID_API, body: body({ retryPolicy: { maxDeliveryAttempts: 0 } }) }],
    ['too many delivery attempts', { method: 'PUT', path: sub, apiVersion: EVENTGRID_API, body: body({ retryPolicy: { maxDeliveryAttempts: 100000 } }) }],
    ['a fractional time to live', { method: 'PUT', path: sub, apiVersion: EVENTGRID_API, body: body({ retryPolicy: { eventTimeToLiveInMinutes: 1.5 } }) }],
    ['a huge time to live', { method: 'PUT', path: sub, apiVersion: EVENTGRID_API, body: body({ retryPolicy: { eventTimeToLiveInMinutes: 1e15 } }) }],
    ['an unknown dead-letter type', { method: 'PUT', path: sub, apiVersion: EVENTGRID_API, body: body({ deadLetterDestination: { endpointType: 'Queue', properties: {} } }) }],
    ['a dead-letter container with traversal', { method: 'PUT', path: sub, apiVersion: EVENTGRID_API, body: body({ deadLetterDestination: { endpointType: 'StorageBlob', properties: { resourceId: storagePath('hardfiles'), blobContainerName: '../../..' } } }) }],
    ['an expiration time (not enforced, so refused)', { method: 'PUT', path: sub, apiVersion: EVENTGRID_API, body: body({ expirationTimeUtc: '2999-01-01T00:00:00Z' }) }],
    ['labels of the wrong type', { method: 'PUT', path: sub, apiVersion: EVENTGRID_API, body: body({ labels: [1, 2] }) }],
    ['a bad name', { method: 'PUT', path: subscriptionPath('a_b'), apiVersion: EVENTGRID_API, body: body({}) }],
    ['a short name', { method: 'PUT', path: subscriptionPath('ab'), apiVersion: EVENTGRID_API, body: body({}) }],
    ['a traversal name', { method: 'PUT', path: subscriptionPath('..%2F..%2Fx'), apiVersion: EVENTGRID_API, body: body({}) }],
    ['a long name', { method: 'PUT', path: subscriptionPath(LONG.slice(0, 100)), apiVersion: EVENTGRID_API, body: body({}) }],
    ['on a missing vault', { method: 'PUT', path: sub.replace(`vaults/${VAULT}`, 'vaults/nosuchvault'), apiVersion: EVENTGRID_API, body: body({}) }],
    ['getFullUrl of a missing subscription', { method: 'POST', path: `${subscriptionPath('nosuch')}/getFullUrl`, apiVersion: EVENTGRID_API }],
    ['GET on getFullUrl', { method: 'GET', path: `${subscriptionPath('hard-sub')}/getFullUrl`, apiVersion: EVENTGRID_API }],
    ['PATCH on a subscription', { method: 'PATCH', path: subscriptionPath('nosuch'), apiVersion: EVENTGRID_API, body: { properties: {} } }],
  ];
  for (const [label, probe] of cases) await refused(label, probe);
  assert.deepEqual(await snapshot(), before);
});

test('identity: IMDS, bindings, system-assigned identities, trusted issuers and token requests refuse bad input', async () => {
  const before = await snapshot();
  const authority = server.admin.authorityHost.replace(/\/$/, '');
  const tokenUrl = `${authority}/${server.admin.tenantId}/oauth2/v2.0/token`;
  const form = (fields: Record<string, string>) => ({ body: new URLSearchParams(fields).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  const imds = (binding: string, query: string, headers: Record<string, string> = { metadata: 'true' }): Probe =>
    ({ method: 'GET', path: `${authority}/coffer/imds/${binding}/metadata/identity/oauth2/token?${query}`, headers, token: null });
  const owner = `${rg()}/providers/Microsoft.Web/sites/hard-app`;
  const oauth: [string, Probe][] = [
    ['IMDS without the metadata header', imds('0'.repeat(64), 'api-version=2018-02-01&resource=https://vault.azure.net', {})],
    ['IMDS with an unknown binding', imds('0'.repeat(64), 'api-version=2018-02-01&resource=https://vault.azure.net')],
    ['IMDS with a traversal binding', imds('..%2F..%2F', 'api-version=2018-02-01&resource=https://vault.azure.net')],
    ['IMDS with a huge binding', imds(LONG, 'api-version=2018-02-01&resource=https://vault.azure.net')],
    ['IMDS without an api-version', imds('0'.repeat(64), 'resource=https://vault.azure.net')],
    ['IMDS with an old api-version', imds('0'.repeat(64), 'api-version=2017-01-01&resource=https://vault.azure.net')],
    ['IMDS with a garbage api-version', imds('0'.repeat(64), 'api-version=%00%ff&resource=https://vault.azure.net')],
    ['IMDS with a repeated api-version', imds('0'.repeat(64), 'api-version=2018-02-01&api-version=2019-08-01&resource=https://vault.azure.net')],
    ['IMDS with a repeated resource', imds('0'.repeat(64), 'api-version=2018-02-01&resource=a&resource=b')],
    ['IMDS without a resource', imds('0'.repeat(64), 'api-version=2018-02-01')],
    ['bare IMDS', { method: 'GET', path: `${authority}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net`, headers: { metadata: 'true' }, token: null }],
    ['a token request with malformed form', { method: 'POST', path: tokenUrl, body: '%%%&&&===', headers: { 'content-type': 'application/x-www-form-urlencoded' }, token: null }],
    ['a token request as JSON', { method: 'POST', path: tokenUrl, body: { grant_type: 'client_credentials' }, token: null }],
    ['a token request with no grant', { method: 'POST', path: tokenUrl, ...form({ client_id: server.admin.clientId }), token: null }],
    ['a token request with an unknown grant', { method: 'POST', path: tokenUrl, ...form({ grant_type: 'magic', client_id: server.admin.clientId }), token: null }],
    ['a token request with a wrong secret', { method: 'POST', path: tokenUrl, ...form({ grant_type: 'client_credentials', client_id: server.admin.clientId, client_secret: 'wrong', scope: `${server.admin.managementEndpoint}/.default` }), token: null }],
    ['a token request with repeated fields', { method: 'POST', path: tokenUrl, body: `grant_type=client_credentials&grant_type=password&client_id=${server.admin.clientId}`, headers: { 'content-type': 'application/x-www-form-urlencoded' }, token: null }],
    ['a token request with a huge field', { method: 'POST', path: tokenUrl, ...form({ grant_type: 'client_credentials', client_id: LONG, client_secret: LONG, scope: LONG }), token: null }],
    ['a token request with a garbage refresh token', { method: 'POST', path: tokenUrl, ...form({ grant_type: 'refresh_token', client_id: server.admin.clientId, refresh_token: 'not.a.token', scope: `${server.admin.managementEndpoint}/.default` }), token: null }],
    ['a password grant for nobody', { method: 'POST', path: tokenUrl, ...form({ grant_type: 'password', client_id: server.admin.clientId, username: 'nobody@example.com', password: 'x', scope: `${server.admin.managementEndpoint}/.default` }), token: null }],
    ['a password grant without a password', { method: 'POST', path: tokenUrl, ...form({ grant_type: 'password', client_id: server.admin.clientId, username: 'nobody@example.com' }), token: null }],
    ['a client assertion that is garbage', { method: 'POST', path: tokenUrl, ...form({ grant_type: 'client_credentials', client_id: server.admin.clientId, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: 'a.b.c', scope: `${server.admin.managementEndpoint}/.default` }), token: null }],
    ['a password grant with a huge password', { method: 'POST', path: tokenUrl, ...form({ grant_type: 'password', client_id: 'cli', username: 'hard@coffer.test', password: LONG.repeat(10), scope: `${server.admin.managementEndpoint}/.default` }), token: null }],
    ['a password grant with an unknown scope', { method: 'POST', path: tokenUrl, ...form({ grant_type: 'password', client_id: 'cli', username: 'hard@coffer.test', password: 'Hard-password-1', scope: 'https://elsewhere.example/.default' }), token: null }],
    ['a token request to an unknown tenant', { method: 'POST', path: `${authority}/nosuchtenant/oauth2/v2.0/token`, ...form({ grant_type: 'client_credentials', client_id: server.admin.clientId, client_secret: server.admin.clientSecret, scope: `${server.admin.managementEndpoint}/.default` }), token: null }],
  ];
  // With a live binding, so the checks past the binding run too (repeated parameters arrive as arrays).
  const bound = await send({ method: 'POST', path: '/coffer/managed-identity/bindings', body: { identity: `${rg()}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/hard-id` } });
  assert.equal(bound.status, 201, bound.text);
  const binding = bound.json.identityHeader as string;
  const resource = encodeURIComponent(server.coffer.endpoints.dataPlaneResource);
  oauth.push(
    ['IMDS with a repeated client id', imds(binding, `api-version=2018-02-01&resource=${resource}&client_id=a&client_id=b`)],
    ['IMDS with a repeated object id', imds(binding, `api-version=2018-02-01&resource=${resource}&object_id=a&object_id=b`)],
    ['IMDS with a repeated resource id', imds(binding, `api-version=2018-02-01&resource=${resource}&mi_res_id=a&mi_res_id=b`)],
    ['IMDS with a repeated resource', imds(binding, `api-version=2018-02-01&resource=${resource}&resource=${resource}`)],
    ['IMDS with a repeated api-version and a live binding', imds(binding, `api-version=2018-02-01&api-version=2019-08-01&resource=${resource}`)],
    ['IMDS for another resource', imds(binding, 'api-version=2018-02-01&resource=https://elsewhere.example')],
  );
  for (const [label, probe] of oauth) await refused(label, probe, { oauth: true });
  for (const query of [`api-version=2019-08-01&resource=${resource}&client_id=a&client_id=b`, `api-version=2019-08-01&resource=${resource}&resource=x`, `api-version=2019-08-01&api-version=2019-08-01&resource=${resource}`]) {
    const res = await send({ method: 'GET', path: `${authority}/coffer/managed-identity/token?${query}`, headers: { 'x-identity-header': binding }, token: null });
    assert.ok(res.status >= 400 && res.status < 500, `App Service endpoint, ${query}: ${res.status} ${res.text}`);
  }
  const appService = await send({ method: 'GET', path: `${authority}/coffer/managed-identity/token?api-version=2019-08-01&resource=https://vault.azure.net`, headers: { 'x-identity-header': 'nope' }, token: null });
  assert.ok(appService.status >= 400 && appService.status < 500, appService.text);

  const cases: [string, Probe][] = [
    ...malformedBodies('POST', '/coffer/managed-identity/bindings'),
    ['a binding without an identity', { method: 'POST', path: '/coffer/managed-identity/bindings', body: {} }],
    ['a binding of a missing identity', { method: 'POST', path: '/coffer/managed-identity/bindings', body: { identity: '00000000-0000-0000-0000-000000000000' } }],
    ['a binding of a traversal identity', { method: 'POST', path: '/coffer/managed-identity/bindings', body: { identity: '/subscriptions/../../etc' } }],
    ['a binding with a short lifetime', { method: 'POST', path: '/coffer/managed-identity/bindings', body: { identity: `${rg()}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/hard-id`, lifetimeSeconds: 1 } }],
    ['a binding with a huge lifetime', { method: 'POST', path: '/coffer/managed-identity/bindings', body: { identity: `${rg()}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/hard-id`, lifetimeSeconds: 1e12 } }],
    ['a binding with extra fields', { method: 'POST', path: '/coffer/managed-identity/bindings', body: { identity: 'x', admin: true } }],
    ['a user-assigned identity with a bad name', { method: 'PUT', path: `${rg()}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/-x`, apiVersion: '2023-01-31', body: { location: 'local' } }],
    ['a user-assigned identity with a traversal name', { method: 'PUT', path: `${rg()}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/..%2F..%2Fx`, apiVersion: '2023-01-31', body: { location: 'local' } }],
    ['a user-assigned identity with a malformed body', { method: 'PUT', path: `${rg()}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/hard-id2`, apiVersion: '2023-01-31', body: '{', headers: { 'content-type': 'application/json' } }],
    ['a system-assigned identity of a bad owner type', { method: 'PUT', path: `${rg()}/providers/Microsoft.Web/si%24es/hard-app/providers/Microsoft.ManagedIdentity/identities/default`, apiVersion: '2023-01-31', body: {} }],
    ['a system-assigned identity on a managed identity', { method: 'PUT', path: `${rg()}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/hard-id/providers/Microsoft.ManagedIdentity/identities/default`, apiVersion: '2023-01-31', body: {} }],
    ['a system-assigned identity with a bad owner name', { method: 'PUT', path: `${rg()}/providers/Microsoft.Web/sites/..%2F..%2Fx/providers/Microsoft.ManagedIdentity/identities/default`, apiVersion: '2023-01-31', body: {} }],
    ['a system-assigned identity that is not default', { method: 'PUT', path: `${owner}/providers/Microsoft.ManagedIdentity/identities/other`, apiVersion: '2023-01-31', body: {} }],
    ['a system-assigned identity in a missing group', { method: 'PUT', path: `${owner.replace('rg-test', 'rg-nosuch')}/providers/Microsoft.ManagedIdentity/identities/default`, apiVersion: '2023-01-31', body: {} }],
    ['a system-assigned identity with a malformed body', { method: 'PUT', path: `${owner}/providers/Microsoft.ManagedIdentity/identities/default`, apiVersion: '2023-01-31', body: '{', headers: { 'content-type': 'application/json' } }],
    ...malformedBodies('POST', '/coffer/trusted-issuers'),
    ['an issuer without fields', { method: 'POST', path: '/coffer/trusted-issuers', body: {} }],
    ['an issuer that is no URL', { method: 'POST', path: '/coffer/trusted-issuers', body: { issuer: 'not a url!', jwksUri: 'not a url!', audience: 'api://x' } }],
    ['an issuer over http', { method: 'POST', path: '/coffer/trusted-issuers', body: { issuer: 'http://example.com', jwksUri: 'http://example.com/keys', audience: 'api://x' } }],
    ['an issuer with a file: jwks', { method: 'POST', path: '/coffer/trusted-issuers', body: { issuer: 'https://issuer.example', jwksUri: 'file:///etc/passwd', audience: 'api://x' } }],
    ['an issuer with fields of the wrong type', { method: 'POST', path: '/coffer/trusted-issuers', body: { issuer: 1, jwksUri: [], audience: {} } }],
    ['an issuer with oversized fields', { method: 'POST', path: '/coffer/trusted-issuers', body: { issuer: `https://${LONG}`, jwksUri: `https://${LONG}`, audience: LONG } }],
    ['a missing issuer', { method: 'GET', path: '/coffer/trusted-issuers/00000000-0000-0000-0000-000000000000' }],
    ['a traversal issuer', { method: 'GET', path: '/coffer/trusted-issuers/..%2F..%2Fx' }],
    ['a subject of a missing issuer', { method: 'PUT', path: '/coffer/trusted-issuers/00000000-0000-0000-0000-000000000000/subjects/repo:x', body: { principalId: '00000000-0000-0000-0000-000000000000' } }],
    ['a subject with a malformed body', { method: 'PUT', path: '/coffer/trusted-issuers/00000000-0000-0000-0000-000000000000/subjects/repo:x', body: '{', headers: { 'content-type': 'application/json' } }],
    ['PATCH on issuers', { method: 'PATCH', path: '/coffer/trusted-issuers', body: {} }],
    ...malformedBodies('POST', '/v1.0/users'),
    ['a user without a name', { method: 'POST', path: '/v1.0/users', body: { displayName: 'X', passwordProfile: { password: 'Pass-word-1' } } }],
    ['a user with a password of the wrong type', { method: 'POST', path: '/v1.0/users', body: { displayName: 'X', userPrincipalName: 'x@coffer.test', passwordProfile: { password: 12345 } } }],
    ['a user with an empty password', { method: 'POST', path: '/v1.0/users', body: { displayName: 'X', userPrincipalName: 'x@coffer.test', passwordProfile: { password: '' } } }],
    ['a user with a huge password', { method: 'POST', path: '/v1.0/users', body: { displayName: 'X', userPrincipalName: 'x@coffer.test', passwordProfile: { password: LONG.repeat(50) } } }],
    ['a user with a bad principal name', { method: 'POST', path: '/v1.0/users', body: { displayName: 'X', userPrincipalName: '../../etc', passwordProfile: { password: 'Pass-word-1' } } }],
    ['a user with a huge display name', { method: 'POST', path: '/v1.0/users', body: { displayName: LONG.repeat(20), userPrincipalName: 'y@coffer.test', passwordProfile: { password: 'Pass-word-1' } } }],
    ['a user enabled flag of the wrong type', { method: 'POST', path: '/v1.0/users', body: { accountEnabled: 'yes', displayName: 'X', userPrincipalName: 'z@coffer.test', passwordProfile: { password: 'Pass-word-1' } } }],
    ['a password reset of nobody', { method: 'PATCH', path: '/v1.0/users/nobody@coffer.test', body: { passwordProfile: { password: 'Pass-word-2' } } }],
    ['a password reset with the wrong type', { method: 'PATCH', path: '/v1.0/users/hard@coffer.test', body: { passwordProfile: { password: ['x'] } } }],
    ['a password reset with a malformed body', { method: 'PATCH', path: '/v1.0/users/hard@coffer.test', body: '{', headers: { 'content-type': 'application/json' } }],
    ['a password reset with an enabled flag of the wrong type', { method: 'PATCH', path: '/v1.0/users/hard@coffer.test', body: { accountEnabled: 'no', passwordProfile: { password: 'Changed-password-9' } } }],
    ['a password reset that is too long', { method: 'PATCH', path: '/v1.0/users/hard@coffer.test', body: { passwordProfile: { password: LONG } } }],
    ['a user lookup with traversal', { method: 'GET', path: '/v1.0/users/..%2F..%2Fx' }],
    ['a group member of nobody', { method: 'POST', path: '/v1.0/groups/00000000-0000-0000-0000-000000000000/members/$ref', body: { '@odata.id': 'x' } }],
    ['GET on the token endpoint', { method: 'GET', path: tokenUrl, token: null }],
    ['OPTIONS on a vnet', { method: 'OPTIONS', path: vnetPath('vnet1'), apiVersion: NETWORK_API }],
    ['DELETE on the IMDS path', { method: 'DELETE', path: `${server.admin.authorityHost}/metadata/identity/oauth2/token`, token: null }],
  ];
  for (const [label, probe] of cases) await refused(label, probe);
  assert.deepEqual(await snapshot(), before);
  // The refused password resets changed nothing: the user still signs in with the first password.
  const signIn = await send({ method: 'POST', path: tokenUrl, ...form({ grant_type: 'password', client_id: 'cli', username: 'hard@coffer.test', password: 'Hard-password-1', scope: `${server.admin.managementEndpoint}/.default` }), token: null });
  assert.equal(signIn.status, 200, signIn.text);
});

test('keys and certificates: release, release policies, includePending, PFX imports and issuers refuse bad input', async () => {
  const before = await snapshot();
  const vault = server.vaultUrl(VAULT).replace(/\/$/, '');
  const dp = (method: string, p: string, body?: unknown, headers?: Record<string, string>, apiVersion = '7.5'): Probe =>
    ({ method, path: `${vault}${p}${p.includes('?') ? '&' : '?'}api-version=${apiVersion}`, body, headers, token: data });
  const policy = (json: unknown) => ({ contentType: 'application/json; charset=utf-8', data: Buffer.from(typeof json === 'string' ? json : JSON.stringify(json)).toString('base64url') });
  const exportable = (release_policy: unknown) => ({ kty: 'RSA', key_size: 2048, attributes: { exportable: true }, release_policy });
  const cases: [string, Probe][] = [
    ['release with malformed JSON', dp('POST', '/keys/releasable/release', '{"target":', { 'content-type': 'application/json' })],
    ['release without a target', dp('POST', '/keys/releasable/release', {})],
    ['release with a target of the wrong type', dp('POST', '/keys/releasable/release', { target: 5 })],
    ['release with a garbage target', dp('POST', '/keys/releasable/release', { target: 'not-a-jwt' })],
    ['release with an unsigned target', dp('POST', '/keys/releasable/release', { target: 'eyJhbGciOiJub25lIn0.eyJ4LW1zLXNldnNucHZtLWlzLWRlYnVnZ2FibGUiOmZhbHNlfQ.' })],
    ['release with an oversized target', dp('POST', '/keys/releasable/release', { target: LONG.repeat(100) })],
    ['release with an unknown algorithm', dp('POST', '/keys/releasable/release', { target: 'a.b.c', enc: 'ROT13' })],
    ['release with a nonce of the wrong type', dp('POST', '/keys/releasable/release', { target: 'a.b.c', nonce: 5 })],
    ['release of a missing key', dp('POST', '/keys/nosuch/release', { target: 'a.b.c' })],
    ['release of a missing version', dp('POST', '/keys/releasable/00000000000000000000000000000000/release', { target: 'a.b.c' })],
    ['release with a traversal version', dp('POST', '/keys/releasable/..%2F..%2Fx/release', { target: 'a.b.c' })],
    ['release on an old api-version', dp('POST', '/keys/releasable/release', { target: 'a.b.c' }, undefined, '7.2')],
    ['release on an unknown api-version', dp('POST', '/keys/releasable/release', { target: 'a.b.c' }, undefined, '99.0')],
    ['GET on release', dp('GET', '/keys/releasable/release')],
    ['an exportable key without a policy', dp('POST', '/keys/np/create', { kty: 'RSA', key_size: 2048, attributes: { exportable: true } })],
    ['a policy that is not base64', dp('POST', '/keys/np/create', exportable({ data: '!!!not base64!!!' }))],
    ['a policy that is not JSON', dp('POST', '/keys/np/create', exportable(policy('{{{{')))],
    ['a policy that is JSON null', dp('POST', '/keys/np/create', exportable(policy('null')))],
    ['a policy without anyOf', dp('POST', '/keys/np/create', exportable(policy({ version: '1.0.0' })))],
    ['a policy with an unknown version', dp('POST', '/keys/np/create', exportable(policy({ version: '9.9.9', anyOf: [] })))],
    ['a policy with anyOf of the wrong type', dp('POST', '/keys/np/create', exportable(policy({ version: '1.0.0', anyOf: 'x' })))],
    ['a policy with an authority of the wrong type', dp('POST', '/keys/np/create', exportable(policy({ version: '1.0.0', anyOf: [{ authority: 5, allOf: [{ claim: 'x', equals: true }] }] })))],
    ['a policy with an empty allOf', dp('POST', '/keys/np/create', exportable(policy({ version: '1.0.0', anyOf: [{ authority: 'https://attest.example', allOf: [] }] })))],
    ['a policy with an unknown operator', dp('POST', '/keys/np/create', exportable(policy({ version: '1.0.0', anyOf: [{ authority: 'https://attest.example', allOf: [{ claim: 'x', approximately: true }] }] })))],
    ['a policy with a deeply nested condition', dp('POST', '/keys/np/create', exportable(policy(JSON.parse(`${'{"anyOf":['.repeat(2000)}{}${']}'.repeat(2000)}`))))],
    ['a policy with an oversized body', dp('POST', '/keys/np/create', exportable(policy({ version: '1.0.0', anyOf: [{ authority: `https://${LONG}`, allOf: Array(5000).fill({ claim: 'x', equals: true }) }] })))],
    ['a policy with a content type of the wrong type', dp('POST', '/keys/np/create', exportable({ contentType: 5, data: 'e30' }))],
    ['a policy on a key that is not exportable', dp('POST', '/keys/np/create', { kty: 'RSA', key_size: 2048, release_policy: policy({ version: '1.0.0', anyOf: [{ authority: 'https://attest.example', allOf: [{ claim: 'x', equals: true }] }] }) })],
    ['a bad policy update', dp('PATCH', '/keys/releasable', { release_policy: { data: '%%%' } })],
    ['a policy update that is not JSON', dp('PATCH', '/keys/releasable', { release_policy: policy('{') })],
    ['a policy update without anyOf', dp('PATCH', '/keys/releasable', { release_policy: policy({ version: '1.0.0' }) })],
    ['a policy update with attributes of the wrong type', dp('PATCH', '/keys/releasable', { release_policy: policy({ version: '1.0.0', anyOf: [] }), attributes: { exportable: 'yes' } })],
    ['certificates with a bad includePending', dp('GET', '/certificates?includePending=banana')],
    ['certificates with a repeated includePending', dp('GET', '/certificates?includePending=true&includePending=false')],
    ['a PFX import that is not base64', dp('POST', '/certificates/imp/import', { value: '!!!', pwd: 'p' })],
    ['a PFX import of garbage', dp('POST', '/certificates/imp/import', { value: Buffer.from('garbage').toString('base64'), pwd: 'p' })],
    ['a PFX import with a password of the wrong type', dp('POST', '/certificates/imp/import', { value: 'MIIB', pwd: 5 })],
    ['a PEM import of garbage', dp('POST', '/certificates/imp/import', { value: '-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----', policy: { secret_props: { contentType: 'application/x-pem-file' } } })],
    ['an import with an unknown content type', dp('POST', '/certificates/imp/import', { value: 'MIIB', policy: { secret_props: { contentType: 'application/x-zip' } } })],
    ['an import with an unknown key type', dp('POST', '/certificates/imp/import', { value: 'MIIB', policy: { key_props: { kty: 'DSA' } } })],
    ['an import with an unknown curve', dp('POST', '/certificates/imp/import', { value: 'MIIB', policy: { key_props: { kty: 'EC', crv: 'P-999' } } })],
    ['an import with a huge value', dp('POST', '/certificates/imp/import', { value: 'A'.repeat(2 * 1024 * 1024) })],
    ['an import with a traversal name', dp('POST', '/certificates/..%2F..%2Fx/import', { value: 'MIIB' })],
    ['a create with an unknown curve', dp('POST', '/certificates/ec/create', { policy: { key_props: { kty: 'EC', crv: 'P-999' }, x509_props: { subject: 'CN=x' }, issuer: { name: 'Self' } } })],
    ['a create with an EC key size', dp('POST', '/certificates/ec/create', { policy: { key_props: { kty: 'EC', crv: 'P-256', key_size: 2048 }, x509_props: { subject: 'CN=x' }, issuer: { name: 'Self' } } })],
    ['a create with an unknown issuer', dp('POST', '/certificates/ec/create', { policy: { key_props: { kty: 'EC', crv: 'P-256' }, x509_props: { subject: 'CN=x' }, issuer: { name: 'nosuch-issuer' } } })],
    ['a create with a bad subject', dp('POST', '/certificates/ec/create', { policy: { key_props: { kty: 'RSA', key_size: 2048 }, x509_props: { subject: 'this is no DN=,,,' }, issuer: { name: 'Self' } } })],
    ['an issuer with malformed JSON', dp('PUT', '/certificates/issuers/iss', '{', { 'content-type': 'application/json' })],
    ['an issuer without a provider', dp('PUT', '/certificates/issuers/iss', {})],
    ['an issuer with credentials of the wrong type', dp('PUT', '/certificates/issuers/iss', { provider: 'Test', credentials: { account_id: 5, pwd: [] } })],
    ['an issuer with admins of the wrong type', dp('PUT', '/certificates/issuers/iss', { provider: 'Test', org_details: { admin_details: 'everyone' } })],
    ['an issuer with a bad admin email', dp('PUT', '/certificates/issuers/iss', { provider: 'Test', org_details: { admin_details: [{ email: 5 }] } })],
    ['an issuer with a huge admin list', dp('PUT', '/certificates/issuers/iss', { provider: 'Test', org_details: { admin_details: Array(10000).fill({ email: 'a@example.com', first_name: LONG }) } })],
    ['an issuer with a bad name', dp('PUT', '/certificates/issuers/a_b', { provider: 'Test' })],
    ['an issuer with a traversal name', dp('PUT', '/certificates/issuers/..%2F..%2Fx', { provider: 'Test' })],
    ['an update of a missing issuer', dp('PATCH', '/certificates/issuers/nosuch', { provider: 'Test' })],
  ];
  for (const [label, probe] of cases) await refused(label, probe);
  assert.deepEqual(await snapshot(), before);
});

test('a repeated query parameter is a 4xx wherever a handler reads the query', async () => {
  const vault = server.vaultUrl(VAULT).replace(/\/$/, '');
  const sub = `/subscriptions/${server.admin.subscriptionId}`;
  const cases: [string, Probe][] = [
    ['secrets maxresults', { method: 'GET', path: `${vault}/secrets?api-version=7.5&maxresults=1&maxresults=2`, token: data }],
    ['secrets skiptoken', { method: 'GET', path: `${vault}/secrets?api-version=7.5&$skiptoken=a&$skiptoken=b`, token: data }],
    ['key versions skiptoken', { method: 'GET', path: `${vault}/keys/releasable/versions?api-version=7.5&$skiptoken=a&$skiptoken=b`, token: data }],
    ['deleted certificates includePending', { method: 'GET', path: `${vault}/deletedcertificates?api-version=7.5&includePending=true&includePending=true`, token: data }],
    ['role assignments filter', { method: 'GET', path: `${sub}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01&$filter=atScope()&$filter=atScope()` }],
    ['role definitions filter', { method: 'GET', path: `${sub}/providers/Microsoft.Authorization/roleDefinitions?api-version=2022-04-01&$filter=a&$filter=b` }],
    ['vaults filter', { method: 'GET', path: `${sub}/resources?api-version=2021-04-01&$filter=a&$filter=b` }],
    ['vaults top', { method: 'GET', path: `${sub}/providers/Microsoft.KeyVault/vaults?api-version=2025-05-01&$top=1&$top=2` }],
    ['workspace GET query', { method: 'GET', path: `/v1/workspaces/${(await send({ method: 'GET', path: workspacePath('ws-hard'), apiVersion: '2022-10-01' })).json.properties.customerId}/query?query=AzureDiagnostics&query=AzureDiagnostics` }],
  ];
  for (const [label, probe] of cases) {
    const res = await send(probe);
    assert.ok(res.status < 500, `${label}: ${res.status} ${res.text.slice(0, 300)}`);
    if (res.status >= 400) assert.equal(typeof res.json?.error?.code, 'string', `${label}: ${res.text}`);
  }
});

test('every new management family refuses a request without an api-version (MissingApiVersionParameter) and changes nothing', async () => {
  const before = await snapshot();
  const paths: [string, unknown][] = [
    [vnetPath('vnet-noversion'), { location: 'local', properties: { addressSpace: { addressPrefixes: ['127.42.0.0/16'] } } }],
    [`${vnetPath('vnet1')}/subnets/noversion`, { properties: { addressPrefix: '127.40.9.0/24' } }],
    [endpointPath('pe-noversion'), { location: 'local', properties: {} }],
    [workspacePath('ws-noversion'), { location: 'local' }],
    [storagePath('noversion'), { location: 'local' }],
    [hubPath('hub-noversion'), { location: 'local', properties: { serviceBusEndpoint: `${hook.base}/hub` } }],
    [settingPath('noversion'), { properties: { workspaceId: workspacePath('ws-hard'), logs: [{ categoryGroup: 'audit', enabled: true }] } }],
    [subscriptionPath('noversion'), { properties: { destination: { endpointType: 'WebHook', properties: { endpointUrl: `${hook.base}/eg` } } } }],
    [`${rg()}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/noversion`, { location: 'local' }],
  ];
  for (const [p, body] of paths) {
    const res = await refused('no api-version', { method: 'PUT', path: p, body }, { status: 400 });
    assert.equal(res.json.error.code, 'MissingApiVersionParameter', p);
    const empty = await refused('an empty api-version', { method: 'PUT', path: `${p}?api-version=`, body }, { status: 400 });
    assert.equal(empty.json.error.code, 'MissingApiVersionParameter', p);
  }
  assert.deepEqual(await snapshot(), before);
});

test('hostile bodies and headers: prototype keys, deep nesting, odd Authorization headers are 4xx, never a crash', async () => {
  const before = await snapshot();
  const vnet = vnetPath('vnet-hostile');
  const json = { 'content-type': 'application/json' };
  const deep = (n: number) => `{"location":"local","properties":${'['.repeat(n)}${']'.repeat(n)}}`;
  const cases: [string, Probe][] = [
    ['a __proto__ key', { method: 'PUT', path: vnet, apiVersion: NETWORK_API, body: '{"__proto__":{"polluted":true},"location":"local","properties":{"addressSpace":{"addressPrefixes":["127.43.0.0/16"]}}}', headers: json }],
    ['a constructor.prototype key', { method: 'PUT', path: vnet, apiVersion: NETWORK_API, body: '{"constructor":{"prototype":{"polluted":true}},"location":"local","properties":{"addressSpace":{"addressPrefixes":["127.43.0.0/16"]}}}', headers: json }],
    ['a __proto__ tag', { method: 'PUT', path: workspacePath('ws-hostile'), apiVersion: '2022-10-01', body: '{"location":"local","tags":{"__proto__":"x"}}', headers: json }],
    ['deeply nested JSON', { method: 'PUT', path: vnet, apiVersion: NETWORK_API, body: deep(100_000), headers: json }],
    ['deeply nested JSON in a query', { method: 'POST', path: '/coffer/trusted-issuers', body: deep(100_000), headers: json }],
    ['a body on a DELETE', { method: 'DELETE', path: vnetPath('nosuch'), apiVersion: NETWORK_API, body: '{', headers: json }],
    ['a charset that is not utf-8', { method: 'PUT', path: vnet, apiVersion: NETWORK_API, body: '{"location":"local"}', headers: { 'content-type': 'application/json; charset=utf-16' } }],
    ['a Basic Authorization header', { method: 'PUT', path: vnet, apiVersion: NETWORK_API, body: { location: 'local' }, token: null, headers: { authorization: 'Basic YWRtaW46YWRtaW4=' } }],
    ['an empty Bearer', { method: 'PUT', path: vnet, apiVersion: NETWORK_API, body: { location: 'local' }, token: null, headers: { authorization: 'Bearer ' } }],
    ['a Bearer of three dots', { method: 'PUT', path: vnet, apiVersion: NETWORK_API, body: { location: 'local' }, token: null, headers: { authorization: 'Bearer a.b.c' } }],
    ['a huge Bearer', { method: 'PUT', path: vnet, apiVersion: NETWORK_API, body: { location: 'local' }, token: null, headers: { authorization: `Bearer ${'a'.repeat(12_000)}` } }],
    ['a data-plane token on the management plane', { method: 'PUT', path: vnet, apiVersion: NETWORK_API, body: { location: 'local' }, token: data }],
    ['a management token on the data plane', { method: 'GET', path: `${server.vaultUrl(VAULT).replace(/\/$/, '')}/keys?api-version=7.5`, token: mgmt }],
  ];
  for (const [label, probe] of cases) await refused(label, probe);
  assert.equal(({} as Record<string, unknown>).polluted, undefined, 'no prototype was polluted');
  assert.deepEqual(await snapshot(), before);
});
