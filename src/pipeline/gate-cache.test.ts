import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createGateCache } from './gate-cache.js';
import { createGenerationCache } from '../storage/generation.js';
import type { Authorizer, Grant } from '../gates/authorization/evaluate.js';
import type { Principal } from '../identity/directory.js';
import type { Vault } from '../control-plane/vaults.js';
import type { RequestContext } from './context.js';

/** The gate cache over counting loaders, with a generation the test moves as a trigger would. */
function setup() {
  let generation = 7;
  const calls = { principal: 0, vault: 0, memberships: 0, decision: 0, controlPlane: 0 };
  let granted = true;
  const grant: Grant = { assignmentId: 'a1', roleDefinitionGuid: 'r1', permission: { actions: [], notActions: [], dataActions: ['*'], notDataActions: [] } };
  const authorizer: Authorizer = {
    findDataActionGrant: async () => { calls.decision++; return granted ? grant : undefined; },
    findActionGrant: async () => { calls.controlPlane++; return grant; },
    findActionGrants: async () => [grant],
  };
  const gates = createGateCache({
    cache: createGenerationCache({ readGeneration: async () => generation }),
    getPrincipal: async (id) => { calls.principal++; return { objectId: id, enabled: true } as Principal; },
    getVault: async (name) => { calls.vault++; return { name } as Vault; },
    memberships: async () => { calls.memberships++; return ['g1']; },
    authorizer,
  });
  const request = () => gates.gate.check({} as never, { plane: 'vault' } as RequestContext);
  return { gates, calls, request, revoke: () => { granted = false; generation++; } };
}

test('the gates\' reads are served from the cache while the generation stands still', async () => {
  const { gates, calls, request } = setup();
  for (let i = 0; i < 3; i++) {
    await request();
    assert.equal((await gates.getPrincipal('p1'))?.objectId, 'p1');
    assert.equal((await gates.getVault('Bench'))?.name, 'bench', 'vault names compare case-insensitively');
    await gates.getVault('BENCH');
    assert.deepEqual(await gates.memberships('p1'), ['g1']);
    assert.equal((await gates.authorizer.findDataActionGrant('p1', '/v/bench/secrets/a', 'secrets/getSecret/action'))?.assignmentId, 'a1');
  }
  assert.deepEqual(calls, { principal: 1, vault: 1, memberships: 1, decision: 1, controlPlane: 0 });
  // Another resource or action is another decision.
  await gates.authorizer.findDataActionGrant('p1', '/v/bench/secrets/b', 'secrets/getSecret/action');
  await gates.authorizer.findDataActionGrant('p1', '/v/bench/secrets/a', 'secrets/setSecret/action');
  assert.equal(calls.decision, 3);
  // Control-plane checks are not cached.
  await gates.authorizer.findActionGrant('p1', '/v/bench', 'Microsoft.KeyVault/vaults/read');
  await gates.authorizer.findActionGrant('p1', '/v/bench', 'Microsoft.KeyVault/vaults/read');
  assert.equal(calls.controlPlane, 2);
});

test('a change in the database (the generation moved) is seen by the next request', async () => {
  const { gates, calls, request, revoke } = setup();
  await request();
  await gates.getPrincipal('p1');
  assert.ok(await gates.authorizer.findDataActionGrant('p1', '/v/bench/secrets/a', 'secrets/getSecret/action'));
  revoke();
  // Until the request reads the generation the cached decision stands (the change may not be committed yet) ...
  assert.ok(await gates.authorizer.findDataActionGrant('p1', '/v/bench/secrets/a', 'secrets/getSecret/action'));
  // ... and the next request, which reads it first, is denied.
  await request();
  assert.equal(await gates.authorizer.findDataActionGrant('p1', '/v/bench/secrets/a', 'secrets/getSecret/action'), undefined);
  await gates.getPrincipal('p1');
  assert.equal(calls.decision, 2);
  assert.equal(calls.principal, 2, 'every cached read is dropped when the generation moves');
});
