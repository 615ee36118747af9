import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startTestServer, type TestServer } from '../support/server.js';
import { armClient } from '../support/arm.js';
import { cliRunner } from '../support/cli.js';
import { ROLE_IDS } from '../../src/gates/authorization/builtin-roles.js';

/**
 * The control-plane commands of the az-compatible CLI (`group`, `keyvault` lifecycle, `role`) end to end: the built
 * CLI, as the bootstrap administrator (the subscription's Owner), against a real Coffer.
 */
let server: TestServer;
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-cli-cp-test-'));
const { coffer, ok, json, fails } = cliRunner(scratch, () => ({ COFFER_CONFIG_DIR: path.join(scratch, 'no-login'), COFFER_DATA_DIR: server.dataDir }));

/** Python's isoformat of a UTC datetime, as az prints the SDK's datetimes. */
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?\+00:00$/;
const RG = 'rg-cli-cp';
const sub = () => `/subscriptions/${server.admin.subscriptionId}`;
const vaultId = (name: string) => `${sub()}/resourceGroups/${RG}/providers/Microsoft.KeyVault/vaults/${name}`;

before(async () => {
  server = await startTestServer();
});

after(async () => {
  await server?.close();
  fs.rmSync(scratch, { recursive: true, force: true });
});

test('--help lists the control-plane groups and commands', async () => {
  const { stdout } = await ok(['--help']);
  for (const g of ['group', 'role']) assert.match(stdout, new RegExp(`^  ${g}\\b`, 'm'));
  const kv = await ok(['keyvault', '--help']);
  for (const cmd of ['create', 'show', 'list', 'update', 'delete', 'purge', 'recover', 'list-deleted', 'show-deleted', 'set-policy', 'delete-policy']) {
    assert.match(kv.stdout, new RegExp(`^  ${cmd}\\b`, 'm'));
  }
});

test('group create, show, list and delete (az 2.45 shapes)', async () => {
  const created = await json(['group', 'create', '-n', 'rg-cli-groups', '-l', 'eastus', '--tags', 'env=test']);
  assert.deepEqual(created, {
    id: `${sub()}/resourceGroups/rg-cli-groups`, location: 'eastus', managedBy: null, name: 'rg-cli-groups',
    properties: { provisioningState: 'Succeeded' }, tags: { env: 'test' }, type: 'Microsoft.Resources/resourceGroups',
  });
  assert.deepEqual(await json(['group', 'show', '--name', 'rg-cli-groups']), created);
  assert.deepEqual(await json(['group', 'show', '-g', 'rg-cli-groups']), created);
  const list = await json(['group', 'list']);
  assert.ok(list.some((g: { name: string }) => g.name === 'rg-cli-groups'));
  assert.deepEqual(await json(['group', 'list', '--tag', 'env=test']), [created]);
  assert.deepEqual(await json(['group', 'list', '--tag', 'env=prod']), []);

  // Azure's errors: a group keeps its location; bad names; missing groups exit 3.
  await fails(['group', 'create', '-n', 'rg-cli-groups', '-l', 'westus'], 1, /^ERROR: \(InvalidResourceGroupLocation\)/);
  await fails(['group', 'create', '-n', 'bad/name?', '-l', 'eastus'], 1, /^ERROR: /);
  await fails(['group', 'show', '-n', 'rg-nowhere'], 3, /^ERROR: \(ResourceGroupNotFound\) Resource group 'rg-nowhere' could not be found\./);
  await fails(['group', 'create', '-l', 'eastus'], 2, /--name/);

  // No terminal, no --yes: az refuses to prompt, and nothing is deleted.
  await fails(['group', 'delete', '-n', 'rg-cli-groups'], 1, /Unable to prompt for confirmation as no tty available\. Use --yes\./);
  await ok(['group', 'show', '-n', 'rg-cli-groups']);
  assert.equal((await ok(['group', 'delete', '-n', 'rg-cli-groups', '--yes'])).stdout, '');
  await fails(['group', 'show', '-n', 'rg-cli-groups'], 3, /ResourceGroupNotFound/);
});

test('keyvault create (as az), update, delete, list-deleted, show-deleted, recover, purge', async () => {
  await ok(['group', 'create', '-n', RG, '-l', 'eastus']);
  // Without --location a vault goes where its group is; a named group must exist.
  const rbac = await json(['keyvault', 'create', '--name', 'cli-cp-rbac', '--resource-group', RG, '--enable-rbac-authorization', 'true', '--retention-days', '7']);
  assert.equal(rbac.location, 'eastus');
  assert.equal(rbac.resourceGroup, RG);
  assert.equal(rbac.id, vaultId('cli-cp-rbac'));
  assert.equal(rbac.properties.enableRbacAuthorization, true);
  assert.deepEqual(rbac.properties.accessPolicies, []);
  assert.equal(rbac.properties.softDeleteRetentionInDays, 7);
  await fails(['keyvault', 'create', '--name', 'cli-cp-orphan', '-g', 'rg-nowhere'], 3, /ResourceGroupNotFound/);
  await fails(['keyvault', 'create', '--name', 'cli-cp-orphan', '-g', 'rg-nowhere', '-l', 'eastus'], 3, /ResourceGroupNotFound/);

  const guarded = await json(['keyvault', 'create', '--name', 'cli-cp-guarded', '--resource-group', RG, '--location', 'eastus',
    '--enable-rbac-authorization', 'true', '--enable-purge-protection', 'true', '--sku', 'premium']);
  assert.equal(guarded.properties.enablePurgeProtection, true);
  assert.equal(guarded.properties.sku.name, 'premium');
  assert.equal(guarded.properties.softDeleteRetentionInDays, 90);

  // update: PATCH; switching the model is allowed, turning purge protection off or changing retention is not.
  const switched = await json(['keyvault', 'update', '--name', 'cli-cp-rbac', '--enable-rbac-authorization', 'false', '--public-network-access', 'Disabled']);
  assert.equal(switched.properties.enableRbacAuthorization, false);
  assert.equal(switched.properties.publicNetworkAccess, 'Disabled');
  assert.equal(switched.properties.softDeleteRetentionInDays, 7);
  await fails(['keyvault', 'update', '--name', 'cli-cp-guarded', '--enable-purge-protection', 'false'], 1, /^ERROR: \(BadRequest\).*purge protection/i);
  assert.equal((await json(['keyvault', 'show', '--name', 'cli-cp-guarded'])).properties.enablePurgeProtection, true);
  await fails(['keyvault', 'update', '--name', 'no-such-vault', '--enable-rbac-authorization'], 3, /ResourceNotFound/);

  // delete: soft; the name stays taken until recovered or purged.
  assert.equal((await ok(['keyvault', 'delete', '--name', 'cli-cp-guarded'])).stdout, '');
  await fails(['keyvault', 'show', '--name', 'cli-cp-guarded'], 3, /ResourceNotFound/);
  await fails(['keyvault', 'create', '--name', 'cli-cp-guarded', '-g', RG], 1, /^ERROR: \(\w+\)/);
  const deleted = await json(['keyvault', 'list-deleted']);
  const entry = deleted.find((v: { name: string }) => v.name === 'cli-cp-guarded');
  assert.deepEqual(Object.keys(entry), ['id', 'name', 'properties', 'type']);
  assert.equal(entry.id, `${sub()}/providers/Microsoft.KeyVault/locations/eastus/deletedVaults/cli-cp-guarded`);
  assert.equal(entry.type, 'Microsoft.KeyVault/deletedVaults');
  assert.equal(entry.properties.vaultId, vaultId('cli-cp-guarded'));
  assert.equal(entry.properties.location, 'eastus');
  assert.equal(entry.properties.purgeProtectionEnabled, true);
  assert.match(entry.properties.deletionDate, ISO);
  assert.match(entry.properties.scheduledPurgeDate, ISO);
  assert.deepEqual(await json(['keyvault', 'show-deleted', '--name', 'cli-cp-guarded']), entry);
  assert.deepEqual(await json(['keyvault', 'show-deleted', '--name', 'cli-cp-guarded', '--location', 'eastus']), entry);
  await fails(['keyvault', 'show-deleted', '--name', 'cli-cp-nothing'], 3, /ResourceNotFound/);
  const table = await ok(['keyvault', 'list-deleted', '--query', "[?name=='cli-cp-guarded'].{name:name, scheduledPurge:properties.scheduledPurgeDate}", '-o', 'tsv']);
  assert.equal(table.stdout, `cli-cp-guarded\t${entry.properties.scheduledPurgeDate}\n`);

  // Purge protection holds: purge is refused and the vault stays recoverable.
  await fails(['keyvault', 'purge', '--name', 'cli-cp-guarded'], 1, /^ERROR: \(BadRequest\).*purge protection/i);
  const recovered = await json(['keyvault', 'recover', '--name', 'cli-cp-guarded']);
  assert.equal(recovered.id, vaultId('cli-cp-guarded'));
  assert.equal(recovered.properties.enablePurgeProtection, true);
  assert.equal(recovered.properties.sku.name, 'premium');
  assert.ok(!(await json(['keyvault', 'list-deleted'])).some((v: { name: string }) => v.name === 'cli-cp-guarded'));

  // Without purge protection: delete, purge, and the name is free again.
  await ok(['keyvault', 'delete', '--name', 'cli-cp-rbac', '-g', RG]);
  assert.equal((await ok(['keyvault', 'purge', '--name', 'cli-cp-rbac'])).stdout, '');
  await fails(['keyvault', 'show-deleted', '--name', 'cli-cp-rbac'], 3, /ResourceNotFound/);
  await fails(['keyvault', 'recover', '--name', 'cli-cp-rbac'], 3, /ResourceNotFound/);
  await ok(['keyvault', 'create', '--name', 'cli-cp-rbac', '-g', RG, '--enable-rbac-authorization']);
});

test('keyvault set-policy and delete-policy', async () => {
  const { body: principal } = await armClient(server, server.adminCredential)('POST', '/coffer/admin/service-principals', { displayName: 'cli-cp-policy' });
  const created = await json(['keyvault', 'create', '--name', 'cli-cp-policies', '-g', RG]);
  assert.equal(created.properties.enableRbacAuthorization, false);
  assert.deepEqual(created.properties.accessPolicies.map((p: { objectId: string }) => p.objectId), [server.admin.objectId]);
  const granted = await json(['keyvault', 'set-policy', '--name', 'cli-cp-policies', '--object-id', principal.objectId, '--secret-permissions', 'get', 'list']);
  const entry = granted.properties.accessPolicies.find((p: { objectId: string }) => p.objectId === principal.objectId);
  assert.deepEqual(entry.permissions.secrets, ['get', 'list']);
  await fails(['keyvault', 'set-policy', '--name', 'cli-cp-policies', '--object-id', principal.objectId, '--secret-permissions', 'fly'], 1, /^ERROR: \(BadRequest\)/);

  // As az: the kinds given replace the principal's lists of those kinds; the other kinds stay.
  const narrowed = await json(['keyvault', 'set-policy', '--name', 'cli-cp-policies', '--object-id', server.admin.objectId, '--secret-permissions', 'get']);
  const own = narrowed.properties.accessPolicies.find((p: { objectId: string }) => p.objectId === server.admin.objectId);
  assert.deepEqual(own.permissions.secrets, ['get']);
  assert.deepEqual(own.permissions.keys, created.properties.accessPolicies[0].permissions.keys);

  const removed = await json(['keyvault', 'delete-policy', '--name', 'cli-cp-policies', '--object-id', principal.objectId]);
  assert.deepEqual(removed.properties.accessPolicies.map((p: { objectId: string }) => p.objectId), [server.admin.objectId]);
  // Removing a policy that is not there changes nothing.
  assert.deepEqual(await json(['keyvault', 'delete-policy', '--name', 'cli-cp-policies', '--object-id', principal.objectId]), removed);
});

test('role definition list, create, update and delete', async () => {
  const [admin] = await json(['role', 'definition', 'list', '--name', 'Key Vault Administrator']);
  assert.deepEqual(Object.keys(admin), ['assignableScopes', 'createdBy', 'createdOn', 'description', 'id', 'name', 'permissions', 'roleName', 'roleType', 'type', 'updatedBy', 'updatedOn']);
  assert.equal(admin.name, ROLE_IDS.keyVaultAdministrator);
  assert.equal(admin.roleType, 'BuiltInRole');
  assert.equal(admin.id, `${sub()}/providers/Microsoft.Authorization/roleDefinitions/${ROLE_IDS.keyVaultAdministrator}`);
  assert.deepEqual(admin.permissions[0].dataActions, ['Microsoft.KeyVault/vaults/*']);
  assert.deepEqual(await json(['role', 'definition', 'list', '--name', ROLE_IDS.keyVaultAdministrator]), [admin]);
  assert.deepEqual(await json(['role', 'definition', 'list', '--name', 'No Such Role']), []);
  assert.ok((await json(['role', 'definition', 'list'])).length >= 16);

  const file = path.join(scratch, 'reader-role.json');
  fs.writeFileSync(file, JSON.stringify({
    Name: 'CLI Secret Reader', Description: 'Reads secrets', Actions: [], NotActions: [],
    DataActions: ['Microsoft.KeyVault/vaults/secrets/*'], NotDataActions: ['Microsoft.KeyVault/vaults/secrets/setSecret/action'],
    AssignableScopes: [sub()],
  }));
  const custom = await json(['role', 'definition', 'create', '--role-definition', `@${file}`]);
  assert.equal(custom.roleName, 'CLI Secret Reader');
  assert.equal(custom.roleType, 'CustomRole');
  assert.deepEqual(custom.permissions, [{
    actions: [], notActions: [], dataActions: ['Microsoft.KeyVault/vaults/secrets/*'], notDataActions: ['Microsoft.KeyVault/vaults/secrets/setSecret/action'],
  }]);
  assert.deepEqual(await json(['role', 'definition', 'list', '--custom-role-only']), [custom]);
  // The same name again is Azure's conflict; malformed JSON is a usage error.
  await fails(['role', 'definition', 'create', '--role-definition', fs.readFileSync(file, 'utf8')], 1, /^ERROR: \(RoleDefinitionWithSameNameExists\)/);
  await fails(['role', 'definition', 'create', '--role-definition', '{"Name": '], 2, /^ERROR: Failed to parse/);
  await fails(['role', 'definition', 'create', '--role-definition', '{"Name": "x"}'], 2, /assignableScopes/);

  // update: found by name, the fields given replace, the rest stay; the id stays.
  const updated = await json(['role', 'definition', 'update', '--role-definition', JSON.stringify({
    Name: 'CLI Secret Reader', Description: 'Reads secrets, writes none', DataActions: ['Microsoft.KeyVault/vaults/secrets/getSecret/action'],
  })]);
  assert.equal(updated.id, custom.id);
  assert.equal(updated.description, 'Reads secrets, writes none');
  assert.deepEqual(updated.assignableScopes, custom.assignableScopes);
  assert.deepEqual(updated.permissions, [{ actions: [], notActions: [], dataActions: ['Microsoft.KeyVault/vaults/secrets/getSecret/action'], notDataActions: [] }]);
  const renamed = await json(['role', 'definition', 'update', '--role-definition', JSON.stringify({ Id: custom.id, Name: 'CLI Secret Getter' })]);
  assert.equal(renamed.roleName, 'CLI Secret Getter');
  assert.deepEqual(renamed.permissions, updated.permissions);
  await fails(['role', 'definition', 'update', '--role-definition', JSON.stringify({ Name: 'Key Vault Administrator', Description: 'mine now' })], 3, /Role 'Key Vault Administrator' doesn't exist\./);
  await ok(['role', 'definition', 'update', '--role-definition', JSON.stringify({ Id: custom.id, Name: 'CLI Secret Reader' })]);

  assert.equal((await ok(['role', 'definition', 'delete', '--name', 'CLI Secret Reader'])).stdout, '');
  assert.deepEqual(await json(['role', 'definition', 'list', '--custom-role-only']), []);
  await fails(['role', 'definition', 'delete', '--name', 'CLI Secret Reader'], 3, /Role 'CLI Secret Reader' doesn't exist\./);
});

test('role assignment create, list (json and table) and delete', async () => {
  const { body: principal } = await armClient(server, server.adminCredential)('POST', '/coffer/admin/service-principals', { displayName: 'cli-cp-rbac' });
  const scope = vaultId('cli-cp-rbac');
  const created = await json(['role', 'assignment', 'create', '--assignee-object-id', principal.objectId, '--assignee-principal-type', 'ServicePrincipal',
    '--role', 'Key Vault Secrets User', '--scope', scope]);
  assert.deepEqual(Object.keys(created).sort(), ['condition', 'conditionVersion', 'createdBy', 'createdOn', 'delegatedManagedIdentityResourceId', 'description',
    'id', 'name', 'principalId', 'principalType', 'resourceGroup', 'roleDefinitionId', 'scope', 'type', 'updatedBy', 'updatedOn']);
  assert.equal(created.principalId, principal.objectId);
  assert.equal(created.principalType, 'ServicePrincipal');
  assert.equal(created.scope, scope);
  assert.equal(created.resourceGroup, RG);
  assert.equal(created.id, `${scope}/providers/Microsoft.Authorization/roleAssignments/${created.name}`);
  assert.equal(created.roleDefinitionId, `${sub()}/providers/Microsoft.Authorization/roleDefinitions/${ROLE_IDS.keyVaultSecretsUser}`);
  // --assignee is looked up in the directory (object id, app id or UPN); --role takes a GUID too.
  const byAppId = await json(['role', 'assignment', 'create', '--assignee', principal.appId, '--role', ROLE_IDS.keyVaultReader, '--scope', scope]);
  assert.equal(byAppId.principalId, principal.objectId);
  assert.equal(byAppId.principalType, 'ServicePrincipal');
  await fails(['role', 'assignment', 'create', '--assignee', 'nobody@example.com', '--role', 'Key Vault Reader', '--scope', scope], 1, /^ERROR: Cannot find user or service principal in graph database for 'nobody@example\.com'/);

  const listed = await json(['role', 'assignment', 'list', '--scope', scope]);
  assert.deepEqual(listed.map((a: { roleDefinitionName: string }) => a.roleDefinitionName).sort(), ['Key Vault Reader', 'Key Vault Secrets User']);
  assert.deepEqual(listed.find((a: { name: string }) => a.name === created.name), { ...created, principalName: principal.appId, roleDefinitionName: 'Key Vault Secrets User' });
  const table = await ok(['role', 'assignment', 'list', '--scope', scope, '--output', 'table']);
  const lines = table.stdout.trimEnd().split('\n').map((l) => l.trimEnd());
  assert.match(lines[0], /^Principal\s+Role\s+Scope$/);
  assert.match(lines[1], /^-+\s+-+\s+-+$/);
  assert.equal(lines.length, 4);
  assert.ok(lines.some((l) => l.startsWith(principal.appId) && l.includes('Key Vault Secrets User') && l.endsWith(scope)));
  // The default lists the subscription's own assignments (the administrator's Owner); --all every scope.
  const atSubscription = await json(['role', 'assignment', 'list']);
  assert.ok(atSubscription.every((a: { scope: string }) => a.scope === sub()));
  assert.ok(atSubscription.some((a: { principalId: string; roleDefinitionName: string }) => a.principalId === server.admin.objectId && a.roleDefinitionName === 'Owner'));
  assert.equal((await json(['role', 'assignment', 'list', '--all', '--assignee', principal.objectId])).length, 2);
  assert.equal((await json(['role', 'assignment', 'list', '--scope', scope, '--role', 'Key Vault Reader'])).length, 1);

  // Azure's and az's errors, changing nothing.
  await fails(['role', 'assignment', 'create', '--assignee-object-id', principal.objectId, '--role', 'No Such Role', '--scope', scope], 1, /^ERROR: Role 'No Such Role' doesn't exist\./);
  await fails(['role', 'assignment', 'create', '--assignee-object-id', principal.objectId, '--assignee-principal-type', 'User', '--role', 'Key Vault Reader', '--scope', `${sub()}/resourceGroups/${RG}`],
    1, /^ERROR: \(UnmatchedPrincipalType\)/);
  await fails(['role', 'assignment', 'create', '--assignee-object-id', principal.objectId, '--role', 'Key Vault Reader', '--scope', 'not-a-scope'], 2, /Invalid scope/);
  await fails(['role', 'assignment', 'create', '--assignee-object-id', principal.objectId, '--role', 'Key Vault Reader', '--scope', `${sub()}/resourceGroups/rg-nowhere`], 3, /ResourceGroupNotFound/);
  await fails(['role', 'assignment', 'create', '--role', 'Key Vault Reader', '--scope', scope], 2, /usage error/);
  assert.equal((await json(['role', 'assignment', 'list', '--all', '--assignee', principal.objectId])).length, 2);

  assert.equal((await ok(['role', 'assignment', 'delete', '--assignee', principal.objectId, '--role', 'Key Vault Reader', '--scope', scope])).stdout, '');
  assert.deepEqual((await json(['role', 'assignment', 'list', '--scope', scope])).map((a: { name: string }) => a.name), [created.name]);
  await ok(['role', 'assignment', 'delete', '--ids', created.id]);
  assert.deepEqual(await json(['role', 'assignment', 'list', '--scope', scope]), []);
  const none = await coffer(['role', 'assignment', 'delete', '--assignee', principal.objectId, '--scope', scope]);
  assert.equal(none.code, 0);
  assert.match(none.stderr, /No matched assignments were found to delete/);
  await fails(['role', 'assignment', 'delete'], 2, /usage error/);
});
