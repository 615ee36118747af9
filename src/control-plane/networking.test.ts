import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cachedNetworkReads } from './networking.js';
import { createGenerationCache } from '../storage/generation.js';

/** The network gate's reads over counting loaders, with a generation the test moves as a trigger would. */
function setup() {
  let generation = 3;
  const calls = { trusted: 0, subnets: 0, endpoints: 0 };
  let trustedPrincipal = 'svc';
  const cache = createGenerationCache({ readGeneration: async () => generation });
  const reads = cachedNetworkReads({
    isTrustedService: async (principalId) => { calls.trusted++; return principalId === trustedPrincipal; },
    subnetPrefixes: async (ids) => { calls.subnets++; return ids.map((_, i) => `10.0.${i}.0/24`); },
    vaultAtAddress: async (address) => { calls.endpoints++; return address === '127.20.0.1' ? 'vault-1' : undefined; },
  }, cache);
  return { reads, calls, request: () => cache.refresh(), change: (principal: string) => { trustedPrincipal = principal; generation++; } };
}

test('the network gate\'s reads cost nothing while the generation stands still', async () => {
  const { reads, calls, request } = setup();
  for (let i = 0; i < 3; i++) {
    await request();
    assert.equal(await reads.isTrustedService('svc'), true);
    assert.equal(await reads.isTrustedService('stranger'), false);
    assert.deepEqual(await reads.subnetPrefixes(['a', 'b']), ['10.0.0.0/24', '10.0.1.0/24']);
    assert.equal(await reads.vaultAtAddress('127.20.0.1'), 'vault-1');
    assert.equal(await reads.vaultAtAddress('127.20.0.2'), undefined, 'an address without an endpoint is remembered too');
  }
  assert.deepEqual(calls, { trusted: 2, subnets: 1, endpoints: 2 });
  // Another list of subnets is another read.
  await reads.subnetPrefixes(['b', 'a']);
  assert.equal(calls.subnets, 2);
});

test('a change in the database (the generation moved) is seen by the next request', async () => {
  const { reads, calls, request, change } = setup();
  await request();
  assert.equal(await reads.isTrustedService('svc'), true);
  change('other');
  await request();
  assert.equal(await reads.isTrustedService('svc'), false);
  assert.equal(await reads.isTrustedService('other'), true);
  assert.equal(calls.trusted, 3);
});
