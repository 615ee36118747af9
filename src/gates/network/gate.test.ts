import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyRequest } from 'fastify';
import type { RequestContext } from '../../pipeline/context.js';
import type { NetworkRuleSet } from '../../control-plane/vaults.js';
import { KeyVaultError } from '../../http/errors.js';
import { createNetworkGate } from './gate.js';

const SUBNET = '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/vnet/subnets/app';
const from = (remoteAddress: string, localAddress = '127.0.0.1') => ({ socket: { remoteAddress, localAddress } }) as unknown as FastifyRequest;
const ctx = (networkAcls: NetworkRuleSet, publicNetworkAccess = 'Enabled') => ({
  plane: 'vault',
  caller: { claims: { appid: 'app', oid: 'oid', iss: 'https://issuer/' } },
  vault: { id: 'vault-id', name: 'v', location: 'local', properties: { networkAcls, publicNetworkAccess } },
}) as unknown as RequestContext;
const denied = (code: string) => (err: KeyVaultError) => err.status === 403 && err.innerCode === code;

test('virtual-network rules admit exactly the addresses of their subnets, through the subnet seam', async () => {
  const gate = createNetworkGate({ subnetPrefixes: async (ids) => (ids.includes(SUBNET) ? ['127.10.1.0/24'] : []) });
  const acls: NetworkRuleSet = { defaultAction: 'Deny', virtualNetworkRules: [{ id: SUBNET }] };
  await gate.check(from('127.10.1.9'), ctx(acls));
  await gate.check(from('::ffff:127.10.1.200'), ctx(acls));
  await assert.rejects(async () => gate.check(from('127.10.2.9'), ctx(acls)), denied('ForbiddenByFirewall'));
  // Without a subnet reader a virtual-network rule admits nobody.
  await assert.rejects(async () => createNetworkGate().check(from('127.10.1.9'), ctx(acls)), denied('ForbiddenByFirewall'));
});

test('bypass AzureServices lets trusted services through the firewall and a disabled public endpoint; None does not', async () => {
  const trusting = createNetworkGate({ isTrustedService: () => true });
  await trusting.check(from('10.0.0.1'), ctx({ defaultAction: 'Deny', bypass: 'AzureServices' }));
  await trusting.check(from('10.0.0.1'), ctx({ bypass: 'AzureServices' }, 'Disabled'));
  await assert.rejects(async () => trusting.check(from('10.0.0.1'), ctx({ defaultAction: 'Deny', bypass: 'None' })), denied('ForbiddenByFirewall'));
  await assert.rejects(async () => trusting.check(from('10.0.0.1'), ctx({ bypass: 'None' }, 'Disabled')), denied('ForbiddenByConnection'));
});

test('no networkAcls, or defaultAction Allow, admits every address', async () => {
  const gate = createNetworkGate();
  await gate.check(from('203.0.113.7'), ctx(undefined as unknown as NetworkRuleSet));
  await gate.check(from('203.0.113.7'), ctx({ defaultAction: 'Allow', ipRules: [{ value: '10.0.0.1' }] }));
  assert.equal(gate.appliesTo({ plane: 'management' } as RequestContext), false);
});

test('private link: a request on an endpoint of this vault passes everything; on another vault\'s endpoint it is refused', async () => {
  const gate = createNetworkGate({
    privateLink: { arrivedAt: (req) => (req.socket.localAddress === '127.20.0.5' ? '127.20.0.5' : undefined), vaultAt: async (a) => (a === '127.20.0.5' ? 'vault-id' : undefined) },
  });
  const locked: NetworkRuleSet = { defaultAction: 'Deny', bypass: 'None' };
  await gate.check(from('10.0.0.1', '127.20.0.5'), ctx(locked, 'Disabled'));
  await assert.rejects(async () => gate.check(from('10.0.0.1'), ctx(locked, 'Disabled')), denied('ForbiddenByConnection'));
  const other = { ...ctx(locked), vault: { id: 'other-id', name: 'o', location: 'local', properties: { networkAcls: {}, publicNetworkAccess: 'Enabled' } } } as unknown as RequestContext;
  await assert.rejects(async () => gate.check(from('10.0.0.1', '127.20.0.5'), other), denied('ForbiddenByConnection'));
});
