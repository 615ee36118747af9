import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { KeyVaultManagementClient } from '@azure/arm-keyvault';
import { startTestServer, type TestServer } from '../support/server.js';
import { armClient, assignRole, secretClientAs } from '../support/arm.js';

let server: TestServer;
let client: KeyVaultManagementClient;
let arm: ReturnType<typeof armClient>;
let sub: string;
const KV_ADMIN = '00482a5a-887f-4fb3-b363-3b7fe8e74483';

const rejects = async (promise: Promise<unknown>, status: number, code: string) => {
  await assert.rejects(promise, (err: { statusCode?: number; code?: string }) => {
    assert.equal(err.statusCode, status);
    assert.equal(err.code, code);
    return true;
  });
};
const vaultParams = (properties: Record<string, unknown> = {}) => ({
  location: 'eastus',
  properties: { tenantId: server.admin.tenantId, sku: { family: 'A', name: 'standard' as const }, ...properties },
});
const createGroup = async (name: string) => assert.equal((await arm('PUT', `/subscriptions/${sub}/resourcegroups/${name}`, { location: 'eastus' }, '2022-09-01')).status, 201);
const collect = async <T>(it: AsyncIterable<T>) => { const out: T[] = []; for await (const x of it) out.push(x); return out; };

before(async () => {
  server = await startTestServer();
  sub = server.admin.subscriptionId;
  arm = armClient(server, server.adminCredential);
  client = new KeyVaultManagementClient(server.adminCredential, sub, {
    endpoint: server.admin.managementEndpoint, retryOptions: { maxRetries: 0 },
  });
  await createGroup('rg-cp');
});
after(async () => server?.close());

describe('vaults through @azure/arm-keyvault', () => {
  test('create, get, update, list, check name', async () => {
    const created = await client.vaults.createOrUpdate('rg-cp', 'cpvault1', vaultParams({ enableRbacAuthorization: true, softDeleteRetentionInDays: 30 }));
    assert.equal(created.name, 'cpvault1');
    assert.equal(created.id, `/subscriptions/${sub}/resourceGroups/rg-cp/providers/Microsoft.KeyVault/vaults/cpvault1`);
    assert.equal(created.properties.vaultUri, `${server.vaultUrl('cpvault1')}/`);
    assert.equal(created.properties.enableRbacAuthorization, true);
    assert.equal(created.properties.softDeleteRetentionInDays, 30);
    assert.equal(created.properties.enableSoftDelete, true);
    assert.equal(created.properties.provisioningState, 'Succeeded');

    const updated = await client.vaults.update('rg-cp', 'cpvault1', {
      tags: { env: 'test' },
      properties: { enablePurgeProtection: true, publicNetworkAccess: 'Disabled', networkAcls: { defaultAction: 'Deny', bypass: 'AzureServices', ipRules: [{ value: '10.0.0.0/24' }] } },
    });
    assert.deepEqual(updated.tags, { env: 'test' });
    assert.equal(updated.properties.enablePurgeProtection, true);
    assert.equal(updated.properties.publicNetworkAccess, 'Disabled');
    assert.deepEqual(updated.properties.networkAcls?.ipRules, [{ value: '10.0.0.0/24' }]);
    assert.equal((await client.vaults.get('rg-cp', 'cpvault1')).properties.enablePurgeProtection, true);

    await createGroup('rg-cp-other');
    await client.vaults.createOrUpdate('rg-cp-other', 'cpvault2', vaultParams());
    assert.deepEqual((await collect(client.vaults.listByResourceGroup('rg-cp'))).map((v) => v.name), ['cpvault1']);
    const all = (await collect(client.vaults.listBySubscription())).map((v) => v.name);
    assert.ok(all.includes('cpvault1') && all.includes('cpvault2'));
    const resources = (await collect(client.vaults.list())).map((v) => v.name);
    assert.deepEqual(resources.sort(), all.sort());

    assert.equal((await client.vaults.checkNameAvailability({ name: 'cpfree', type: 'Microsoft.KeyVault/vaults' })).nameAvailable, true);
    const taken = await client.vaults.checkNameAvailability({ name: 'CPVAULT1', type: 'Microsoft.KeyVault/vaults' });
    assert.equal(taken.nameAvailable, false);
    assert.equal(taken.reason, 'AlreadyExists');
    assert.equal((await client.vaults.checkNameAvailability({ name: '1bad', type: 'Microsoft.KeyVault/vaults' })).reason, 'AccountNameInvalid');
  });

  test('access policies: add, replace, remove', async () => {
    await client.vaults.createOrUpdate('rg-cp', 'cpapvault', vaultParams({ enableRbacAuthorization: false, accessPolicies: [] }));
    const objectId = crypto.randomUUID();
    const entry = (secrets: string[]) => ({ properties: { accessPolicies: [{ tenantId: server.admin.tenantId, objectId, permissions: { secrets } }] } });
    let res = await client.vaults.updateAccessPolicy('rg-cp', 'cpapvault', 'add', entry(['get']));
    assert.deepEqual(res.properties.accessPolicies[0].permissions.secrets, ['get']);
    res = await client.vaults.updateAccessPolicy('rg-cp', 'cpapvault', 'add', entry(['list']));
    assert.deepEqual(res.properties.accessPolicies[0].permissions.secrets, ['get', 'list']);
    res = await client.vaults.updateAccessPolicy('rg-cp', 'cpapvault', 'replace', entry(['set']));
    assert.deepEqual(res.properties.accessPolicies[0].permissions.secrets, ['set']);
    res = await client.vaults.updateAccessPolicy('rg-cp', 'cpapvault', 'remove', entry(['set']));
    assert.deepEqual(res.properties.accessPolicies, []);
    await rejects(client.vaults.updateAccessPolicy('rg-cp', 'cpapvault', 'add', entry(['read'])), 400, 'BadRequest');
    assert.deepEqual((await client.vaults.get('rg-cp', 'cpapvault')).properties.accessPolicies, []);
  });

  test('delete keeps the name; recover restores objects and settings; purge honours purge protection', async () => {
    await client.vaults.createOrUpdate('rg-cp', 'cplife', vaultParams({ enablePurgeProtection: true, softDeleteRetentionInDays: 7 }));
    await client.vaults.update('rg-cp', 'cplife', { tags: { keep: 'me' } });
    await assignRole(server, `/subscriptions/${sub}/resourceGroups/rg-cp/providers/Microsoft.KeyVault/vaults/cplife`, KV_ADMIN, server.admin.objectId);
    await secretClientAs(server, 'cplife', server.adminCredential).setSecret('kept', 'value-1');

    await client.vaults.delete('rg-cp', 'cplife');
    await rejects(client.vaults.get('rg-cp', 'cplife'), 404, 'ResourceNotFound');
    const deleted = await client.vaults.getDeleted('cplife', 'eastus');
    assert.equal(deleted.properties!.vaultId, `/subscriptions/${sub}/resourceGroups/rg-cp/providers/Microsoft.KeyVault/vaults/cplife`);
    assert.equal(deleted.properties!.purgeProtectionEnabled, true);
    const days = (Date.parse(deleted.properties!.scheduledPurgeDate!.toString()) - Date.parse(deleted.properties!.deletionDate!.toString())) / 86_400_000;
    assert.equal(Math.round(days), 7);
    assert.ok((await collect(client.vaults.listDeleted())).some((v) => v.name === 'cplife'));
    await rejects(client.vaults.createOrUpdate('rg-cp', 'cplife', vaultParams()), 409, 'ConflictError');

    const recovered = await client.vaults.createOrUpdate('rg-cp', 'cplife', vaultParams({ createMode: 'recover' }));
    assert.equal(recovered.properties.enablePurgeProtection, true);
    assert.deepEqual(recovered.tags, { keep: 'me' });
    assert.equal((await secretClientAs(server, 'cplife', server.adminCredential).getSecret('kept')).value, 'value-1');

    await client.vaults.delete('rg-cp', 'cplife');
    await rejects(client.vaults.purgeDeleted('cplife', 'eastus'), 400, 'BadRequest');
    assert.equal((await arm('POST', '/coffer/admin/clock/advance', { advance: '8d' })).status, 200);
    // The scheduler purges the vault once its scheduled purge date passes; the name is free again.
    await rejects(client.vaults.getDeleted('cplife', 'eastus'), 404, 'ResourceNotFound');
    assert.equal((await client.vaults.checkNameAvailability({ name: 'cplife', type: 'Microsoft.KeyVault/vaults' })).nameAvailable, true);
  });

  test('purge without purge protection removes the vault at once, and the role assignments scoped to it', async () => {
    const vaultScope = (name: string) => `/subscriptions/${sub}/resourceGroups/rg-cp/providers/Microsoft.KeyVault/vaults/${name}`;
    await client.vaults.createOrUpdate('rg-cp', 'cppurge', vaultParams());
    await client.vaults.createOrUpdate('rg-cp', 'cppurge-x', vaultParams());
    const onVault = await assignRole(server, vaultScope('cppurge'), KV_ADMIN, server.admin.objectId);
    const onSecret = await assignRole(server, `${vaultScope('cppurge')}/secrets/one`, KV_ADMIN, server.admin.objectId);
    const onSibling = await assignRole(server, vaultScope('cppurge-x'), KV_ADMIN, server.admin.objectId);
    await client.vaults.delete('rg-cp', 'cppurge');
    const assignmentIds = async () => new Set((await arm('GET', `/subscriptions/${sub}/providers/Microsoft.Authorization/roleAssignments`)).body.value
      .map((a: { id: string }) => a.id.toLowerCase()));
    // A soft-deleted vault keeps its assignments, so recovering it restores access as it was.
    assert.ok((await assignmentIds()).has(onVault.toLowerCase()));
    await client.vaults.purgeDeleted('cppurge', 'eastus');
    await rejects(client.vaults.getDeleted('cppurge', 'eastus'), 404, 'ResourceNotFound');
    const left = await assignmentIds();
    for (const gone of [onVault, onSecret]) assert.ok(!left.has(gone.toLowerCase()), gone);
    assert.ok(left.has(onSibling.toLowerCase()), 'a vault whose name merely starts alike keeps its own');
    await client.vaults.createOrUpdate('rg-cp', 'cppurge', vaultParams());
    await assignRole(server, vaultScope('cppurge'), KV_ADMIN, server.admin.objectId);
  });
});

describe('bad input gets Azure errors and changes nothing', () => {
  test('vault properties', async () => {
    await client.vaults.createOrUpdate('rg-cp', 'cpbad', vaultParams({ enablePurgeProtection: true, softDeleteRetentionInDays: 14 }));
    const before = await client.vaults.get('rg-cp', 'cpbad');
    await rejects(client.vaults.createOrUpdate('rg-cp', 'bad--name', vaultParams()), 400, 'VaultNameNotValid');
    await rejects(client.vaults.createOrUpdate('rg-cp', 'cpret6', vaultParams({ softDeleteRetentionInDays: 6 })), 400, 'BadRequest');
    await rejects(client.vaults.createOrUpdate('rg-cp', 'cpret91', vaultParams({ softDeleteRetentionInDays: 91 })), 400, 'BadRequest');
    await rejects(client.vaults.update('rg-cp', 'cpbad', { properties: { enablePurgeProtection: false } }), 400, 'BadRequest');
    await rejects(client.vaults.update('rg-cp', 'cpbad', { properties: { softDeleteRetentionInDays: 30 } }), 400, 'BadRequest');
    await rejects(client.vaults.update('rg-cp', 'cpbad', { properties: { enableSoftDelete: false } }), 400, 'BadRequest');
    await rejects(client.vaults.createOrUpdate('rg-none', 'cpnogroup', vaultParams()), 404, 'ResourceGroupNotFound');
    assert.deepEqual(await client.vaults.get('rg-cp', 'cpbad'), before);
    for (const name of ['cpret6', 'cpret91', 'cpnogroup']) {
      assert.equal((await client.vaults.checkNameAvailability({ name, type: 'Microsoft.KeyVault/vaults' })).nameAvailable, true);
    }
    const raw = await arm('PUT', `/subscriptions/${sub}/resourceGroups/rg-cp/providers/Microsoft.KeyVault/vaults/cpraw`, { location: 'eastus', properties: { sku: { name: 'gold' } } }, '2025-05-01');
    assert.equal(raw.status, 400);
    assert.ok(raw.body.error.code);
  });

  test('a management request without api-version', async () => {
    const token = await server.adminCredential.getToken(`${server.admin.managementEndpoint}/.default`);
    const res = await fetch(`${server.admin.managementEndpoint}/subscriptions/${sub}/providers/Microsoft.KeyVault/vaults`, { headers: { authorization: `Bearer ${token!.token}` } });
    assert.equal(res.status, 400);
    assert.equal((await res.json()).error.code, 'MissingApiVersionParameter');
  });

  test('an api-version the provider does not publish is refused as ARM refuses it, and changes nothing', async () => {
    const vaultPath = `/subscriptions/${sub}/resourceGroups/rg-cp/providers/Microsoft.KeyVault/vaults/cpbadversion`;
    const vault = await arm('PUT', vaultPath, vaultParams(), '2099-01-01');
    assert.equal(vault.status, 400);
    assert.equal(vault.body.error.code, 'NoRegisteredProviderFound');
    assert.match(vault.body.error.message, /^No registered resource provider found for location 'eastus' and API version '2099-01-01' for type 'vaults'\. The supported api-versions are '.*2025-05-01.*'/);
    // A data-plane version is no management version either.
    assert.equal((await arm('PUT', vaultPath, vaultParams(), '7.4')).body.error.code, 'NoRegisteredProviderFound');
    assert.equal((await arm('GET', vaultPath, undefined, '2025-05-01')).status, 404);

    const group = await arm('PUT', `/subscriptions/${sub}/resourcegroups/rg-badversion`, { location: 'eastus' }, '2022-04-01');
    assert.equal(group.status, 400);
    assert.equal(group.body.error.code, 'InvalidApiVersionParameter');
    assert.match(group.body.error.message, /^The api-version '2022-04-01' is invalid\. The supported versions are '.*2022-09-01.*'\.$/);
    assert.equal((await arm('GET', `/subscriptions/${sub}/resourcegroups/rg-badversion`, undefined, '2022-09-01')).status, 404);

    const roles = await arm('GET', `/subscriptions/${sub}/providers/Microsoft.Authorization/roleDefinitions`, undefined, '2021-01-01');
    assert.equal(roles.status, 400);
    assert.equal(roles.body.error.code, 'InvalidResourceType');
    assert.match(roles.body.error.message, /^The resource type 'roleDefinitions' could not be found in the namespace 'Microsoft.Authorization' for api version '2021-01-01'\./);
  });

  test('resource groups, role assignments and scopes', async () => {
    const badGroup = await arm('PUT', `/subscriptions/${sub}/resourcegroups/bad%20group!`, { location: 'eastus' }, '2022-09-01');
    assert.equal(badGroup.status, 400);
    assert.equal(badGroup.body.error.code, 'InvalidResourceGroup');
    const vaultScope = `/subscriptions/${sub}/resourceGroups/rg-cp/providers/Microsoft.KeyVault/vaults/cpbad`;
    const assign = (scope: string, roleDefinitionId: string, principalId = server.admin.objectId) =>
      arm('PUT', `${scope}/providers/Microsoft.Authorization/roleAssignments/${crypto.randomUUID()}`, { properties: { roleDefinitionId, principalId } });
    const unknownRole = await assign(vaultScope, `/subscriptions/${sub}/providers/Microsoft.Authorization/roleDefinitions/${crypto.randomUUID()}`);
    assert.equal(unknownRole.status, 400);
    assert.equal(unknownRole.body.error.code, 'RoleDefinitionDoesNotExist');
    const unknownPrincipal = await assign(vaultScope, `/subscriptions/${sub}/providers/Microsoft.Authorization/roleDefinitions/${KV_ADMIN}`, crypto.randomUUID());
    assert.equal(unknownPrincipal.body.error.code, 'PrincipalNotFound');
    const missingVault = await assign(`/subscriptions/${sub}/resourceGroups/rg-cp/providers/Microsoft.KeyVault/vaults/nosuchvault`, KV_ADMIN);
    assert.equal(missingVault.status, 404);
    const badCollection = await assign(`${vaultScope}/widgets/w1`, `/subscriptions/${sub}/providers/Microsoft.Authorization/roleDefinitions/${KV_ADMIN}`);
    assert.equal(badCollection.status, 400);
    const badName = await arm('PUT', `${vaultScope}/providers/Microsoft.Authorization/roleAssignments/not-a-guid`, { properties: { roleDefinitionId: KV_ADMIN, principalId: server.admin.objectId } });
    assert.equal(badName.body.error.code, 'InvalidRoleAssignmentId');
    const list = await arm('GET', `${vaultScope}/providers/Microsoft.Authorization/roleAssignments?$filter=atScope()`);
    assert.equal(list.status, 200);
    // Only the bootstrap Owner assignment (inherited from the subscription): nothing above was created.
    assert.deepEqual(list.body.value.map((a: any) => a.properties.scope), [`/subscriptions/${sub}`]);
  });
});

test('deleting a resource group soft-deletes its vaults', async () => {
  await createGroup('rg-doomed');
  await client.vaults.createOrUpdate('rg-doomed', 'cpdoomed', vaultParams());
  assert.equal((await arm('DELETE', `/subscriptions/${sub}/resourcegroups/rg-doomed`, undefined, '2022-09-01')).status, 200);
  assert.equal((await arm('GET', `/subscriptions/${sub}/resourcegroups/rg-doomed`, undefined, '2022-09-01')).status, 404);
  assert.equal((await client.vaults.getDeleted('cpdoomed', 'eastus')).name, 'cpdoomed');
});

describe('role definitions', () => {
  test('built-ins carry Azure names, GUIDs and permissions', async () => {
    const res = await arm('GET', `/subscriptions/${sub}/providers/Microsoft.Authorization/roleDefinitions?$filter=roleName eq 'Key Vault Secrets User'`);
    assert.equal(res.body.value.length, 1);
    const role = res.body.value[0];
    assert.equal(role.name, '4633458b-17de-408a-b874-0445c86b69e6');
    assert.equal(role.properties.type, 'BuiltInRole');
    assert.deepEqual(role.properties.permissions[0].dataActions, [
      'Microsoft.KeyVault/vaults/secrets/getSecret/action', 'Microsoft.KeyVault/vaults/secrets/readMetadata/action',
    ]);
    const all = await arm('GET', `/subscriptions/${sub}/providers/Microsoft.Authorization/roleDefinitions?$filter=type eq 'BuiltInRole'`);
    const names = all.body.value.map((d: any) => d.properties.roleName).sort();
    assert.deepEqual(names, [
      'Contributor', 'Key Vault Administrator', 'Key Vault Certificate User', 'Key Vault Certificates Officer', 'Key Vault Contributor',
      'Key Vault Crypto Officer', 'Key Vault Crypto Service Encryption User', 'Key Vault Crypto Service Release User', 'Key Vault Crypto User',
      'Key Vault Data Access Administrator', 'Key Vault Reader', 'Key Vault Secrets Officer', 'Key Vault Secrets User', 'Owner', 'Reader',
      'User Access Administrator',
    ]);
    const builtInChange = await arm('DELETE', `/subscriptions/${sub}/providers/Microsoft.Authorization/roleDefinitions/4633458b-17de-408a-b874-0445c86b69e6`);
    assert.equal(builtInChange.status, 403);
  });

  test('custom roles: create with wildcards, refuse deletion while assigned, delete', async () => {
    const guid = crypto.randomUUID();
    const url = `/subscriptions/${sub}/providers/Microsoft.Authorization/roleDefinitions/${guid}`;
    const body = { properties: { roleName: 'Secret Lister', description: 'lists', assignableScopes: [`/subscriptions/${sub}`], permissions: [{ dataActions: ['Microsoft.KeyVault/vaults/secrets/*'], notDataActions: ['Microsoft.KeyVault/vaults/secrets/getSecret/action'] }] } };
    const created = await arm('PUT', url, body);
    assert.equal(created.status, 201);
    assert.equal(created.body.properties.type, 'CustomRole');
    assert.equal((await arm('PUT', `/subscriptions/${sub}/providers/Microsoft.Authorization/roleDefinitions/${crypto.randomUUID()}`, body)).body.error.code, 'RoleDefinitionWithSameNameExists');
    const assignment = await assignRole(server, `/subscriptions/${sub}/resourceGroups/rg-cp`, guid, server.admin.objectId);
    assert.equal((await arm('DELETE', url)).body.error.code, 'RoleDefinitionHasAssignments');
    assert.equal((await arm('DELETE', assignment)).status, 200);
    assert.equal((await arm('DELETE', url)).status, 200);
    assert.equal((await arm('GET', url)).status, 404);
  });
});
