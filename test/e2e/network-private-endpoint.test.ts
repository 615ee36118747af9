import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { SecretClient } from '@azure/keyvault-secrets';
import { KeyVaultManagementClient } from '@azure/arm-keyvault';
import { startTestServer, type TestServer } from '../support/server.js';
import { freshDatabase } from '../support/postgres.js';
import { VAULT_API, agentFrom, agentTo, networkArm, rawVaultGet, secretClientWith } from '../support/network.js';
import { startCoffer, type Coffer } from '../../src/server.js';

// Private endpoints, end to end: creating one makes every node listen on its address (same port); a client reaches
// it the way Azure's private DNS zone sends it there — the vault's name resolves to the endpoint's address.
let server: TestServer;
let secondNode: Coffer;
const PE_ADDRESS = '127.20.0.5';

const { arm, rg, vaultPath, endpointPath } = networkArm(() => server);
/** Through a private endpoint (of this node, or another node's port). */
const viaEndpoint = (vault: string, port = server.coffer.port, address = PE_ADDRESS) =>
  new SecretClient(server.vaultUrl(vault).replace(`:${server.coffer.port}`, `:${port}`), server.adminCredential, { retryOptions: { maxRetries: 0 }, agent: agentTo(address) });
const publicly = (vault: string, localAddress = '127.0.0.1') => secretClientWith(server, vault, agentFrom(localAddress));
const rawViaEndpoint = (vault: string, path: string) => rawVaultGet(server, vault, path, agentTo(PE_ADDRESS));

const endpointBody = (vault: string, address = PE_ADDRESS, subnetId?: string, vaultId = vaultPath(vault)) => ({
  location: 'local',
  properties: {
    ...(subnetId ? { subnet: { id: subnetId } } : {}),
    privateLinkServiceConnections: [{ name: `${vault}-conn`, properties: { privateLinkServiceId: vaultId, groupIds: ['vault'] } }],
    ipConfigurations: [{ name: 'ipconfig', properties: { groupId: 'vault', memberName: 'default', privateIPAddress: address } }],
  },
});

before(async () => {
  const storageUrl = process.env.COFFER_TEST_STORAGE_URL ? await freshDatabase(process.env.COFFER_TEST_STORAGE_URL) : undefined;
  server = await startTestServer({ storageUrl });
  // A second node on the same database and data (root key, TLS), advertising the first's port as a node behind a load
  // balancer does: it learns of endpoints by reconciling.
  secondNode = await startCoffer({
    host: '127.0.0.1', port: 0, publicPort: server.coffer.port, dataDir: server.dataDir, dnsSuffix: 'vault.localhost', seal: 'file', logLevel: 'silent', storageUrl,
  });
  await server.createVault('pevault');
  await server.createVault('othervault');
  await publicly('pevault').setSecret('p', 'private-value');
  await publicly('othervault').setSecret('o', 'other-value');
});
after(async () => {
  await secondNode?.close();
  await server?.close();
});

test('before a private endpoint exists nothing listens on its address', async () => {
  await assert.rejects(viaEndpoint('pevault').getSecret('p'), (err: any) => err.code === 'ECONNREFUSED');
});

test('a private endpoint is an ARM resource connected to the vault, and Coffer listens on its address', async () => {
  const created = await arm('PUT', endpointPath('pe1'), endpointBody('pevault'));
  assert.equal(created.status, 201, JSON.stringify(created.body));
  assert.equal(created.body.type, 'Microsoft.Network/privateEndpoints');
  const connection = created.body.properties.privateLinkServiceConnections[0];
  assert.equal(connection.properties.privateLinkServiceId, vaultPath('pevault'));
  assert.deepEqual(connection.properties.groupIds, ['vault']);
  assert.equal(connection.properties.privateLinkServiceConnectionState.status, 'Approved');
  assert.equal(created.body.properties.ipConfigurations[0].properties.privateIPAddress, PE_ADDRESS);

  const vault = (await arm('GET', vaultPath('pevault'), undefined, VAULT_API)).body;
  assert.deepEqual(vault.properties.privateEndpointConnections, [{
    id: `${vaultPath('pevault')}/privateEndpointConnections/pevault-conn`,
    etag: '',
    properties: {
      privateEndpoint: { id: endpointPath('pe1') },
      privateLinkServiceConnectionState: { status: 'Approved', description: 'Auto-Approved', actionsRequired: 'None' },
      provisioningState: 'Succeeded',
    },
  }]);
  assert.deepEqual((await arm('GET', `${rg()}/providers/Microsoft.Network/privateEndpoints`)).body.value.map((e: any) => e.name), ['pe1']);
  const connections = await arm('GET', `${vaultPath('pevault')}/privateEndpointConnections`, undefined, VAULT_API);
  assert.deepEqual(connections.body.value.map((c: any) => [c.name, c.type, c.properties.privateEndpoint.id]),
    [['pevault-conn', 'Microsoft.KeyVault/vaults/privateEndpointConnections', endpointPath('pe1')]]);
  assert.equal((await arm('GET', `${vaultPath('pevault')}/privateEndpointConnections/pevault-conn`, undefined, VAULT_API)).body.id, vault.properties.privateEndpointConnections[0].id);
  assert.equal((await arm('GET', `${vaultPath('pevault')}/privateEndpointConnections/nope`, undefined, VAULT_API)).status, 404);
  assert.equal((await arm('GET', `${vaultPath('pevault')}/privateLinkResources`, undefined, VAULT_API)).body.value[0].properties.groupId, 'vault');

  // The official management SDK reads both sides.
  const sdk = new KeyVaultManagementClient(server.adminCredential, server.admin.subscriptionId, { endpoint: server.admin.managementEndpoint, retryOptions: { maxRetries: 0 } });
  const viaSdk = await sdk.vaults.get('rg-test', 'pevault');
  assert.equal(viaSdk.properties.privateEndpointConnections?.[0].privateEndpoint?.id, endpointPath('pe1'));
  assert.equal(viaSdk.properties.privateEndpointConnections?.[0].privateLinkServiceConnectionState?.status, 'Approved');
  const listed = [];
  for await (const c of sdk.privateEndpointConnections.listByResource('rg-test', 'pevault')) listed.push(c);
  assert.deepEqual(listed.map((c) => [c.name, c.provisioningState]), [['pevault-conn', 'Succeeded']]);
  assert.equal((await viaEndpoint('pevault').getSecret('p')).value, 'private-value');
});

test('private-link requests pass with public access disabled and whatever the firewall says; public requests are refused', async () => {
  const patched = await arm('PATCH', vaultPath('pevault'), { properties: { publicNetworkAccess: 'Disabled', networkAcls: { defaultAction: 'Deny', bypass: 'None' } } }, VAULT_API);
  assert.equal(patched.status, 200);
  assert.equal((await viaEndpoint('pevault').getSecret('p')).value, 'private-value');
  await viaEndpoint('pevault').setSecret('p2', 'written-privately');

  const refused = await publicly('pevault').getSecret('p').catch((err) => err);
  assert.equal(refused.statusCode, 403);
  const raw = (await rawVaultGet(server, 'pevault', '/secrets/p', agentFrom('127.0.0.1'))).body;
  assert.equal(raw.error.innererror.code, 'ForbiddenByConnection');
  assert.equal(raw.error.message.split('\r\n')[0], 'Public network access is disabled and request is not from a trusted service nor via an approved private link.');
});

test('requests for another vault arriving on a vault\'s private endpoint are refused', async () => {
  const res = await rawViaEndpoint('othervault', '/secrets/o');
  assert.equal(res.status, 403);
  assert.equal(res.body.error.code, 'Forbidden');
  assert.equal(res.body.error.innererror.code, 'ForbiddenByConnection');
  assert.match(res.body.error.message, /^The private endpoint this request arrived on \(address: 127\.20\.0\.5\) is not connected to this vault\./);
  assert.match(String(res.headers['x-ms-keyvault-network-info']), /^conn_type=IPv4;addr=127\.0\.0\.1;/);
  assert.equal((await publicly('othervault').getSecret('o')).value, 'other-value', 'the other vault is unaffected publicly');
});

test('every node listens on the endpoint: another node picks it up from the database', async () => {
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      assert.equal((await viaEndpoint('pevault', secondNode.port).getSecret('p')).value, 'private-value');
      break;
    } catch (err) {
      if ((err as any).code !== 'ECONNREFUSED' || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
});

test('private endpoints are validated: address in use, bad address, unknown vault, subnet range', async () => {
  const inUse = await arm('PUT', endpointPath('pe2'), endpointBody('othervault'));
  assert.equal(inUse.status, 409);
  assert.equal(inUse.body.error.code, 'PrivateIPAddressInUse');
  const bad = await arm('PUT', endpointPath('pe2'), endpointBody('othervault', '0.0.0.0'));
  assert.equal(bad.body.error.code, 'InvalidPrivateIPAddress');
  const unknown = await arm('PUT', endpointPath('pe2'), endpointBody('novault'));
  assert.equal(unknown.body.error.code, 'PrivateLinkServiceNotFound');
  await arm('PUT', `${rg()}/providers/Microsoft.Network/virtualNetworks/pevnet`, {
    location: 'local', properties: { addressSpace: { addressPrefixes: ['127.21.0.0/16'] }, subnets: [{ name: 'pe', properties: { addressPrefix: '127.21.1.0/24' } }] },
  });
  const subnetId = `${rg()}/providers/Microsoft.Network/virtualNetworks/pevnet/subnets/pe`;
  const outside = await arm('PUT', endpointPath('pe2'), endpointBody('othervault', '127.21.2.5', subnetId));
  assert.equal(outside.body.error.code, 'PrivateIPAddressNotInSubnet');
  assert.equal((await arm('GET', endpointPath('pe2'))).status, 404, 'nothing was created');

  const inSubnet = await arm('PUT', endpointPath('pe2'), endpointBody('othervault', '127.21.1.5', subnetId));
  assert.equal(inSubnet.status, 201, JSON.stringify(inSubnet.body));
  const used = await arm('DELETE', `${rg()}/providers/Microsoft.Network/virtualNetworks/pevnet/subnets/pe`);
  assert.equal(used.status, 400);
  assert.equal(used.body.error.code, 'InUseSubnetCannotBeDeleted');
  assert.equal((await viaEndpoint('othervault', server.coffer.port, '127.21.1.5').getSecret('o')).value, 'other-value');
  assert.equal((await arm('DELETE', endpointPath('pe2'))).status, 200);

  // An address this host does not have cannot be bound: the endpoint exists, the failure is logged, nothing else breaks.
  assert.equal((await arm('PUT', endpointPath('pe3'), endpointBody('othervault', '192.0.2.10'))).status, 201);
  assert.equal((await publicly('othervault').getSecret('o')).value, 'other-value');
  assert.equal((await arm('DELETE', endpointPath('pe3'))).status, 200);
});

test('deleting the private endpoint stops its listener and disconnects the vault', async () => {
  assert.equal((await arm('DELETE', endpointPath('pe1'))).status, 200);
  assert.equal((await arm('DELETE', endpointPath('pe1'))).status, 204);
  await assert.rejects(viaEndpoint('pevault').getSecret('p'), (err: any) => err.code === 'ECONNREFUSED');
  const vault = (await arm('GET', vaultPath('pevault'), undefined, VAULT_API)).body;
  assert.equal(vault.properties.privateEndpointConnections, undefined);
  await assert.rejects(publicly('pevault').getSecret('p'), (err: any) => err.statusCode === 403);
});

test('behind a wildcard listener (--host 0.0.0.0) no extra listener is bound: the connection\'s local address tells private link', async () => {
  const wide = await startTestServer({ host: '0.0.0.0' });
  try {
    await wide.createVault('widevault', { publicNetworkAccess: 'Disabled' });
    const { arm: wideArm, vaultPath: wideVault, endpointPath: wideEndpoint } = networkArm(() => wide);
    assert.equal((await wideArm('PUT', wideEndpoint('wpe'), endpointBody('widevault', '127.20.1.5', undefined, wideVault('widevault')))).status, 201);
    const client = (address: string) => secretClientWith(wide, 'widevault', agentTo(address));
    await client('127.20.1.5').setSecret('w', 'wide-private');
    await assert.rejects(client('127.0.0.1').getSecret('w'), (err: any) => err.statusCode === 403);
    assert.equal((await wideArm('DELETE', wideEndpoint('wpe'))).status, 200);
    // The address still reaches the wildcard listener, but it is no longer a private endpoint: a public request.
    await assert.rejects(client('127.20.1.5').getSecret('w'), (err: any) => err.statusCode === 403);
  } finally {
    await wide.close();
  }
});
