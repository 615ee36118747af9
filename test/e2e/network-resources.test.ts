import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../support/server.js';
import { armClient, assignRole, createPrincipal, type TestPrincipal } from '../support/arm.js';
import { VAULT_API, agentFrom, networkArm, rawVaultGet, refusedByNetwork as refused, secretClientWith } from '../support/network.js';

// Virtual networks, subnets and trusted services, end to end: each client binds its own loopback address (the whole
// of 127.0.0.0/8 is local), so the firewall judges real source addresses.
let server: TestServer;
let service: TestPrincipal;
const SECRETS_USER = '4633458b-17de-408a-b874-0445c86b69e6';

const { arm, rg, vaultPath, vnetPath } = networkArm(() => server);
const clientFrom = (localAddress: string, vault: string, credential = server.adminCredential) => secretClientWith(server, vault, agentFrom(localAddress), credential);
const rawGet = (localAddress: string, vault: string, path: string) => rawVaultGet(server, vault, path, agentFrom(localAddress));
const patchVault = (name: string, properties: Record<string, unknown>) => arm('PATCH', vaultPath(name), { properties }, VAULT_API);

before(async () => {
  server = await startTestServer();
  await server.createVault('vnetvault', { networkAcls: { defaultAction: 'Deny', bypass: 'None', ipRules: [{ value: '127.0.0.1' }] } });
  await clientFrom('127.0.0.1', 'vnetvault').setSecret('s', 'inside');
  service = await createPrincipal(server, 'backup-service');
});
after(async () => server?.close());

test('a virtual network with a subnet is an ARM resource: PUT creates (201), GET/LIST show it, PUT again updates (200)', async () => {
  const body = {
    location: 'local',
    properties: { addressSpace: { addressPrefixes: ['127.10.0.0/16'] }, subnets: [{ name: 'app', properties: { addressPrefix: '127.10.1.0/24' } }] },
  };
  const created = await arm('PUT', vnetPath('vnet1'), body);
  assert.equal(created.status, 201, JSON.stringify(created.body));
  assert.equal(created.body.id, vnetPath('vnet1'));
  assert.equal(created.body.type, 'Microsoft.Network/virtualNetworks');
  assert.deepEqual(created.body.properties.addressSpace, { addressPrefixes: ['127.10.0.0/16'] });
  assert.equal(created.body.properties.subnets[0].id, `${vnetPath('vnet1')}/subnets/app`);
  assert.equal(created.body.properties.subnets[0].properties.addressPrefix, '127.10.1.0/24');
  assert.equal((await arm('PUT', vnetPath('vnet1'), body)).status, 200);
  const got = await arm('GET', vnetPath('vnet1'));
  assert.equal(got.status, 200);
  assert.equal(got.body.properties.provisioningState, 'Succeeded');
  const listed = await arm('GET', `${rg()}/providers/Microsoft.Network/virtualNetworks`);
  assert.deepEqual(listed.body.value.map((v: any) => v.name), ['vnet1']);
  const subnet = await arm('GET', `${vnetPath('vnet1')}/subnets/app`);
  assert.equal(subnet.body.properties.addressPrefix, '127.10.1.0/24');
  assert.equal((await arm('GET', vnetPath('nosuch'))).body.error.code, 'ResourceNotFound');
});

test('address prefixes are validated the way Microsoft.Network does, and a refused request changes nothing', async () => {
  const put = (prefixes: string[], subnets: { name: string; prefix: string }[] = []) => arm('PUT', vnetPath('badnet'), {
    location: 'local',
    properties: { addressSpace: { addressPrefixes: prefixes }, subnets: subnets.map((s) => ({ name: s.name, properties: { addressPrefix: s.prefix } })) },
  });
  const cases: [Promise<{ status: number; body: any }>, string][] = [
    [put(['127.10.0.0/33']), 'InvalidAddressPrefixFormat'],
    [put(['not-a-cidr']), 'InvalidAddressPrefixFormat'],
    [put(['127.10.0.5/16']), 'InvalidCIDRNotation'],
    [put(['127.30.0.0/16'], [{ name: 'a', prefix: '127.31.0.0/24' }]), 'NetcfgSubnetRangeOutsideVnet'],
    [put(['127.30.0.0/16'], [{ name: 'a', prefix: '127.30.0.0/24' }, { name: 'b', prefix: '127.30.0.128/25' }]), 'NetcfgSubnetRangesOverlap'],
  ];
  for (const [response, code] of cases) {
    const { status, body } = await response;
    assert.equal(status, 400, JSON.stringify(body));
    assert.equal(body.error.code, code);
  }
  assert.equal((await put(['127.10.0.0/16'])).status, 201, 'the same resource is accepted once valid');
  const subnet = await arm('PUT', `${vnetPath('badnet')}/subnets/x`, { properties: { addressPrefix: '127.11.0.0/24' } });
  assert.equal(subnet.body.error.code, 'NetcfgSubnetRangeOutsideVnet');
  assert.equal((await arm('GET', `${vnetPath('badnet')}/subnets/x`)).status, 404);
  assert.equal((await arm('DELETE', vnetPath('badnet'))).status, 200);
  assert.equal((await arm('DELETE', vnetPath('badnet'))).status, 204);
});

test('a vault\'s virtual-network rule admits exactly the clients in its subnet', async () => {
  await arm('PUT', vnetPath('vnet2'), {
    location: 'local',
    properties: { addressSpace: { addressPrefixes: ['127.12.0.0/16'] }, subnets: [{ name: 'app', properties: { addressPrefix: '127.12.1.0/24' } }] },
  });
  const app = `${vnetPath('vnet2')}/subnets/app`;
  const jobs = `${vnetPath('vnet2')}/subnets/jobs`;
  assert.equal((await patchVault('vnetvault', { networkAcls: { defaultAction: 'Deny', bypass: 'None', virtualNetworkRules: [{ id: app }, { id: jobs }] } })).status, 200);
  assert.equal((await clientFrom('127.12.1.9', 'vnetvault').getSecret('s')).value, 'inside');
  assert.equal((await clientFrom('127.12.1.254', 'vnetvault').getSecret('s')).value, 'inside');
  await assert.rejects(clientFrom('127.12.2.9', 'vnetvault').getSecret('s'), refused);

  const denied = await rawGet('127.12.2.9', 'vnetvault', '/secrets/s');
  assert.equal(denied.status, 403);
  assert.equal(denied.body.error.innererror.code, 'ForbiddenByFirewall');
  assert.deepEqual(denied.body.error.message.split('\r\n').slice(0, 2), ['Client address is not authorized and caller is not a trusted service.', 'Client address: 127.12.2.9']);
  assert.equal(denied.headers['x-ms-keyvault-network-info'], 'conn_type=IPv4;addr=127.12.2.9;act_addr_fam=InterNetwork;');

  // The rule naming `jobs` admits nobody until the subnet exists, then exactly its clients; deleting it ends that.
  const createdSubnet = await arm('PUT', `${vnetPath('vnet2')}/subnets/jobs`, { properties: { addressPrefix: '127.12.2.0/24' } });
  assert.equal(createdSubnet.status, 201);
  assert.equal((await clientFrom('127.12.2.9', 'vnetvault').getSecret('s')).value, 'inside');
  await assert.rejects(clientFrom('127.12.3.9', 'vnetvault').getSecret('s'), refused);
  assert.equal((await arm('DELETE', `${vnetPath('vnet2')}/subnets/jobs`)).status, 200);
  await assert.rejects(clientFrom('127.12.2.9', 'vnetvault').getSecret('s'), refused);
  assert.equal((await clientFrom('127.12.1.9', 'vnetvault').getSecret('s')).value, 'inside');
});

test('invalid ipRules and virtualNetworkRules are a 400 that changes nothing', async () => {
  const before = (await arm('GET', vaultPath('vnetvault'), undefined, VAULT_API)).body.properties.networkAcls;
  for (const value of ['not-an-ip', '10.0.0.0/33', '10.0.0.0/8/1', '::1', '300.1.1.1', '']) {
    const { status, body } = await patchVault('vnetvault', { networkAcls: { defaultAction: 'Allow', ipRules: [{ value }] } });
    assert.equal(status, 400, value);
    assert.equal(body.error.code, 'BadRequest');
    assert.match(body.error.message, /properties\.networkAcls\.ipRules\[0\]\.value/);
  }
  const badRule = await patchVault('vnetvault', { networkAcls: { defaultAction: 'Allow', virtualNetworkRules: [{ id: '/subscriptions/x/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v' }] } });
  assert.equal(badRule.status, 400);
  assert.match(badRule.body.error.message, /virtualNetworkRules\[0\]\.id/);
  assert.deepEqual((await arm('GET', vaultPath('vnetvault'), undefined, VAULT_API)).body.properties.networkAcls, before);
});

test('a trusted service passes the firewall when bypass is AzureServices, not when it is None; only the administrator marks one', async () => {
  await server.createVault('trustvault', { networkAcls: { defaultAction: 'Deny', bypass: 'AzureServices', ipRules: [{ value: '127.0.0.1' }] } });
  await assignRole(server, vaultPath('trustvault'), SECRETS_USER, service.objectId);
  await clientFrom('127.0.0.1', 'trustvault').setSecret('t', 'for-backup');
  await assert.rejects(clientFrom('127.40.0.1', 'trustvault', service.credential).getSecret('t'), refused);

  // A principal that is not the deployment administrator cannot make itself trusted.
  const self = await armClient(server, service.credential)('PUT', `/coffer/admin/trusted-services/${service.objectId}`);
  assert.equal(self.status, 403);
  const marked = await arm('PUT', `/coffer/admin/trusted-services/${service.appId}`);
  assert.equal(marked.status, 200, JSON.stringify(marked.body));
  assert.equal(marked.body.objectId, service.objectId);
  assert.deepEqual((await arm('GET', '/coffer/admin/trusted-services')).body.value.map((t: any) => t.appId), [service.appId]);

  assert.equal((await clientFrom('127.40.0.1', 'trustvault', service.credential).getSecret('t')).value, 'for-backup');
  // Trust is the principal's, not the address's: the administrator from the same address is still refused.
  await assert.rejects(clientFrom('127.40.0.1', 'trustvault').getSecret('t'), refused);

  await patchVault('trustvault', { networkAcls: { defaultAction: 'Deny', bypass: 'None', ipRules: [{ value: '127.0.0.1' }] } });
  await assert.rejects(clientFrom('127.40.0.1', 'trustvault', service.credential).getSecret('t'), refused);
  await patchVault('trustvault', { networkAcls: { defaultAction: 'Deny', bypass: 'AzureServices', ipRules: [{ value: '127.0.0.1' }] } });
  assert.equal((await clientFrom('127.40.0.1', 'trustvault', service.credential).getSecret('t')).value, 'for-backup');

  assert.equal((await arm('DELETE', `/coffer/admin/trusted-services/${service.objectId}`)).status, 200);
  assert.equal((await arm('DELETE', `/coffer/admin/trusted-services/${service.objectId}`)).status, 204);
  await assert.rejects(clientFrom('127.40.0.1', 'trustvault', service.credential).getSecret('t'), refused);
  assert.equal((await arm('PUT', '/coffer/admin/trusted-services/00000000-0000-0000-0000-000000000000')).status, 404);
});
