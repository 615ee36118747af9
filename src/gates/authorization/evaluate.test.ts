import { test } from 'node:test';
import assert from 'node:assert/strict';
import { actionMatches, createAuthorizer, scopeEncloses } from './evaluate.js';
import { BUILT_IN_ROLES, ROLE_IDS } from './builtin-roles.js';
import { applyAccessPolicyChange } from '../../control-plane/vaults.js';

test('action patterns: case-insensitive, * spans slashes, nothing else is special', () => {
  assert.ok(actionMatches('*', 'Microsoft.KeyVault/vaults/write'));
  assert.ok(actionMatches('*/read', 'Microsoft.KeyVault/vaults/read'));
  assert.ok(actionMatches('Microsoft.Authorization/*/Write', 'microsoft.authorization/roleAssignments/write'));
  assert.ok(actionMatches('Microsoft.KeyVault/vaults/*/read', 'Microsoft.KeyVault/vaults/keys/read'));
  assert.ok(!actionMatches('Microsoft.KeyVault/vaults/*/read', 'Microsoft.KeyVault/vaults/secrets/getSecret/action'));
  assert.ok(!actionMatches('Microsoft.KeyVault/vaults.read', 'Microsoft.KeyVault/vaultsxread'));
  assert.ok(!actionMatches('*/read', 'Microsoft.KeyVault/vaults/write'));
});

test('scopes enclose themselves and their descendants, by whole segments', () => {
  const vault = '/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v';
  assert.ok(scopeEncloses('/subscriptions/s', vault));
  assert.ok(scopeEncloses('/SUBSCRIPTIONS/S/resourcegroups/RG', vault));
  assert.ok(scopeEncloses(vault, `${vault}/secrets/one`));
  assert.ok(scopeEncloses('/', vault));
  assert.ok(!scopeEncloses(`${vault}/secrets/one`, vault));
  assert.ok(!scopeEncloses('/subscriptions/s/resourceGroups/r', vault));
});

test('notActions carve out of actions; grants follow group membership', async () => {
  const authorizer = createAuthorizer({
    assignmentsFor: async (ids) => (ids.includes('group-1') ? [{ id: 'a1', scope: '/subscriptions/s', roleDefinitionGuid: ROLE_IDS.contributor }] : []),
    roleDefinition: async (guid) => BUILT_IN_ROLES.find((r) => r.guid === guid),
    memberships: async (oid) => (oid === 'member' ? ['group-1'] : []),
  });
  const vault = '/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v';
  assert.equal((await authorizer.findActionGrant('member', vault, 'Microsoft.KeyVault/vaults/accessPolicies/write'))?.assignmentId, 'a1');
  assert.equal(await authorizer.findActionGrant('member', vault, 'Microsoft.Authorization/roleAssignments/write'), undefined);
  assert.equal(await authorizer.findDataActionGrant('member', vault, 'Microsoft.KeyVault/vaults/secrets/getSecret/action'), undefined);
  assert.equal(await authorizer.findActionGrant('stranger', vault, 'Microsoft.KeyVault/vaults/read'), undefined);
});

test('access-policy edits: add unions, replace overwrites, remove subtracts and drops empty entries', () => {
  const entry = (secrets: string[], applicationId?: string) => ({ tenantId: 't', objectId: 'o', ...(applicationId ? { applicationId } : {}), permissions: { secrets } });
  let policies = applyAccessPolicyChange([], 'add', [entry(['get'])]);
  policies = applyAccessPolicyChange(policies, 'add', [entry(['GET', 'list'])]);
  assert.deepEqual(policies, [entry(['get', 'list'])]);
  policies = applyAccessPolicyChange(policies, 'add', [entry(['set'], 'app')]);
  assert.equal(policies.length, 2, 'a compound (object + application) entry is its own entry');
  policies = applyAccessPolicyChange(policies, 'replace', [entry(['purge'])]);
  assert.deepEqual(policies[0], entry(['purge']));
  policies = applyAccessPolicyChange(policies, 'remove', [entry(['purge']), entry(['set'], 'app')]);
  assert.deepEqual(policies, []);
});
