import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startTestServer, type TestServer } from '../support/server.js';
import { cliRunner } from '../support/cli.js';
import { createPrincipal } from '../support/arm.js';
import { agentFrom, agentTo, refusedByNetwork as refused, secretClientWith } from '../support/network.js';

/**
 * The network commands of the az-compatible CLI end to end (`network vnet`, `network vnet subnet`,
 * `network private-endpoint`, `keyvault update|network-rule|trusted-service`), each checked against the firewall
 * with clients bound to their own loopback addresses.
 */
let server: TestServer;
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-cli-net-test-'));
const { ok, json, fails } = cliRunner(scratch, () => ({ COFFER_CONFIG_DIR: path.join(scratch, 'no-login'), COFFER_DATA_DIR: server.dataDir }));
const RG = 'rg-cli-net';
const VAULT = 'clinetvault';
const sub = () => `/subscriptions/${server.admin.subscriptionId}`;
const subnetId = (vnet: string, subnet: string) => `${sub()}/resourceGroups/${RG}/providers/Microsoft.Network/virtualNetworks/${vnet}/subnets/${subnet}`;

const clientFrom = (localAddress: string) => secretClientWith(server, VAULT, agentFrom(localAddress));
const clientVia = (address: string) => secretClientWith(server, VAULT, agentTo(address));

before(async () => {
  server = await startTestServer();
  await ok(['group', 'create', '-n', RG, '-l', 'local']);
  await ok(['keyvault', 'create', '-n', VAULT, '-g', RG, '--enable-rbac-authorization']);
  await ok(['role', 'assignment', 'create', '--assignee', server.admin.objectId, '--role', 'Key Vault Secrets Officer', '--scope', `${sub()}/resourceGroups/${RG}/providers/Microsoft.KeyVault/vaults/${VAULT}`]);
  await clientFrom('127.0.0.1').setSecret('s', 'cli-value');
});
after(async () => {
  await server?.close();
  fs.rmSync(scratch, { recursive: true, force: true });
});

test('network vnet create/show/list and vnet subnet create/show/list/delete (az shapes)', async () => {
  const created = await json(['network', 'vnet', 'create', '-g', RG, '-n', 'vnet1', '--address-prefix', '127.10.0.0/16', '--subnet-name', 'app', '--subnet-prefix', '127.10.1.0/24']);
  assert.equal(created.newVNet.name, 'vnet1');
  assert.equal(created.newVNet.resourceGroup, RG);
  assert.deepEqual(created.newVNet.properties.addressSpace.addressPrefixes, ['127.10.0.0/16']);
  assert.equal(created.newVNet.properties.subnets[0].id, subnetId('vnet1', 'app'));
  assert.deepEqual(await json(['network', 'vnet', 'show', '-g', RG, '-n', 'vnet1']), created.newVNet);
  assert.deepEqual((await json(['network', 'vnet', 'list', '-g', RG])).map((v: any) => v.name), ['vnet1']);

  const jobs = await json(['network', 'vnet', 'subnet', 'create', '-g', RG, '--vnet-name', 'vnet1', '-n', 'jobs', '--address-prefixes', '127.10.2.0/24']);
  assert.equal(jobs.id, subnetId('vnet1', 'jobs'));
  assert.equal(jobs.properties.addressPrefix, '127.10.2.0/24');
  assert.equal(jobs.resourceGroup, RG);
  assert.deepEqual((await json(['network', 'vnet', 'subnet', 'list', '-g', RG, '--vnet-name', 'vnet1'])).map((s: any) => s.name), ['app', 'jobs']);
  assert.equal((await json(['network', 'vnet', 'subnet', 'show', '-g', RG, '--vnet-name', 'vnet1', '-n', 'app'])).properties.addressPrefix, '127.10.1.0/24');
  await fails(['network', 'vnet', 'subnet', 'create', '-g', RG, '--vnet-name', 'vnet1', '-n', 'bad', '--address-prefix', '127.99.0.0/24'], 1, /\(NetcfgSubnetRangeOutsideVnet\)/);
  await fails(['network', 'vnet', 'create', '-g', RG, '-n', 'vnet9', '--address-prefix', '127.10.0.1/16'], 1, /\(InvalidCIDRNotation\)/);
  await ok(['network', 'vnet', 'subnet', 'delete', '-g', RG, '--vnet-name', 'vnet1', '-n', 'jobs']);
  await fails(['network', 'vnet', 'subnet', 'show', '-g', RG, '--vnet-name', 'vnet1', '-n', 'jobs'], 3, /\(ResourceNotFound\)/);
});

test('keyvault update --default-action/--bypass and network-rule add/list/remove drive the firewall', async () => {
  const updated = await json(['keyvault', 'update', '-n', VAULT, '--default-action', 'Deny', '--bypass', 'None']);
  assert.equal(updated.properties.networkAcls.defaultAction, 'Deny');
  assert.equal(updated.properties.networkAcls.bypass, 'None');
  await assert.rejects(clientFrom('127.0.0.1').getSecret('s'), refused);

  const withIp = await json(['keyvault', 'network-rule', 'add', '-n', VAULT, '--ip-address', '127.0.0.1', '127.0.3.0/24']);
  assert.deepEqual(withIp.properties.networkAcls.ipRules, [{ value: '127.0.0.1' }, { value: '127.0.3.0/24' }]);
  assert.equal(withIp.resourceGroup, RG);
  assert.equal((await clientFrom('127.0.0.1').getSecret('s')).value, 'cli-value');
  assert.equal((await clientFrom('127.0.3.77').getSecret('s')).value, 'cli-value');

  await ok(['keyvault', 'network-rule', 'add', '-n', VAULT, '-g', RG, '--vnet-name', 'vnet1', '--subnet', 'app']);
  assert.deepEqual(await json(['keyvault', 'network-rule', 'list', '-n', VAULT]), {
    bypass: 'None', defaultAction: 'Deny',
    ipRules: [{ value: '127.0.0.1' }, { value: '127.0.3.0/24' }],
    virtualNetworkRules: [{ id: subnetId('vnet1', 'app'), ignoreMissingVnetServiceEndpoint: null }],
  });
  assert.equal((await clientFrom('127.10.1.5').getSecret('s')).value, 'cli-value');
  await assert.rejects(clientFrom('127.10.2.5').getSecret('s'), refused);

  await ok(['keyvault', 'network-rule', 'remove', '-n', VAULT, '--subnet', subnetId('vnet1', 'app')]);
  await ok(['keyvault', 'network-rule', 'remove', '-n', VAULT, '--ip-address', '127.0.3.0/24']);
  await assert.rejects(clientFrom('127.10.1.5').getSecret('s'), refused);
  await assert.rejects(clientFrom('127.0.3.77').getSecret('s'), refused);
  assert.deepEqual((await json(['keyvault', 'network-rule', 'list', '-n', VAULT])).ipRules, [{ value: '127.0.0.1' }]);

  await fails(['keyvault', 'network-rule', 'add', '-n', VAULT, '--ip-address', '127.0.0.256'], 1, /\(BadRequest\) Invalid value found at properties\.networkAcls\.ipRules\[1\]\.value/);
  await fails(['keyvault', 'network-rule', 'add', '-n', VAULT], 2, /usage error/);
});

test('network private-endpoint create/show/list/delete: Coffer serves the vault on the endpoint address', async () => {
  await ok(['keyvault', 'update', '-n', VAULT, '--public-network-access', 'Disabled']);
  await assert.rejects(clientFrom('127.0.0.1').getSecret('s'), refused);
  const pe = await json(['network', 'private-endpoint', 'create', '-g', RG, '-n', 'pe1', '--vault-name', VAULT, '--ip-address', '127.20.0.7']);
  assert.equal(pe.resourceGroup, RG);
  assert.equal(pe.properties.ipConfigurations[0].properties.privateIPAddress, '127.20.0.7');
  assert.deepEqual(await json(['network', 'private-endpoint', 'show', '-g', RG, '-n', 'pe1']), pe);
  assert.deepEqual((await json(['network', 'private-endpoint', 'list', '-g', RG])).map((e: any) => e.name), ['pe1']);
  const vault = await json(['keyvault', 'show', '-n', VAULT]);
  assert.equal(vault.properties.privateEndpointConnections[0].properties.privateEndpoint.id, pe.id);

  assert.equal((await clientVia('127.20.0.7').getSecret('s')).value, 'cli-value');
  await ok(['network', 'private-endpoint', 'delete', '-g', RG, '-n', 'pe1']);
  await assert.rejects(clientVia('127.20.0.7').getSecret('s'), (err: any) => err.code === 'ECONNREFUSED');
  await ok(['keyvault', 'update', '-n', VAULT, '--public-network-access', 'Enabled']);
  assert.equal((await clientFrom('127.0.0.1').getSecret('s')).value, 'cli-value');
});

test('keyvault trusted-service add/list/remove: a trusted principal passes the firewall when bypass is AzureServices', async () => {
  const service = await createPrincipal(server, 'cli-trusted');
  await ok(['role', 'assignment', 'create', '--assignee', service.objectId, '--role', 'Key Vault Secrets User', '--scope', `${sub()}/resourceGroups/${RG}/providers/Microsoft.KeyVault/vaults/${VAULT}`]);
  await ok(['keyvault', 'update', '-n', VAULT, '--bypass', 'AzureServices']);
  const asService = () => secretClientWith(server, VAULT, agentFrom('127.0.9.9'), service.credential);
  await assert.rejects(asService().getSecret('s'), refused);

  const added = await json(['keyvault', 'trusted-service', 'add', '--id', service.appId]);
  assert.equal(added.objectId, service.objectId);
  assert.deepEqual((await json(['keyvault', 'trusted-service', 'list'])).map((t: any) => t.objectId), [service.objectId]);
  assert.equal((await asService().getSecret('s')).value, 'cli-value');
  await ok(['keyvault', 'update', '-n', VAULT, '--bypass', 'None']);
  await assert.rejects(asService().getSecret('s'), refused);
  await ok(['keyvault', 'update', '-n', VAULT, '--bypass', 'AzureServices']);
  await ok(['keyvault', 'trusted-service', 'remove', '--id', service.objectId]);
  assert.deepEqual(await json(['keyvault', 'trusted-service', 'list']), []);
  await assert.rejects(asService().getSecret('s'), refused);
});
