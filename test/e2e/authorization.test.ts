import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { KeyVaultManagementClient } from '@azure/arm-keyvault';
import type { SecretClient } from '@azure/keyvault-secrets';
import { startTestServer, type TestServer } from '../support/server.js';
import { armClient, assignRole, createPrincipal, roleDefinitionId, secretClientAs, type TestPrincipal } from '../support/arm.js';

let server: TestServer;
let sub: string;
let mgmt: KeyVaultManagementClient;
const RBAC_VAULT = 'authzrbac';
const POLICY_VAULT = 'authzpolicy';
const vaultId = (name: string) => `/subscriptions/${sub}/resourceGroups/rg-test/providers/Microsoft.KeyVault/vaults/${name}`;

const ROLES = {
  'Key Vault Administrator': '00482a5a-887f-4fb3-b363-3b7fe8e74483',
  'Key Vault Certificates Officer': 'a4417e6f-fecd-4de8-b567-7b0420556985',
  'Key Vault Certificate User': 'db79e9a7-68ee-4b58-9aeb-b90e7c24fcba',
  'Key Vault Crypto Officer': '14b46e9e-c2b7-41b4-b07b-48a6ebf60603',
  'Key Vault Crypto User': '12338af0-0e69-4776-bea7-57ae8d297424',
  'Key Vault Crypto Service Encryption User': 'e147488a-f6f5-4113-8e2d-b22465e65bf6',
  'Key Vault Crypto Service Release User': '08bbd89e-9f13-488c-ac41-acfcb10c90ab',
  'Key Vault Reader': '21090545-7ca7-4776-b22c-e363652d74d2',
  'Key Vault Secrets Officer': 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7',
  'Key Vault Secrets User': '4633458b-17de-408a-b874-0445c86b69e6',
  'Key Vault Data Access Administrator': '8b54135c-b56d-4d72-a534-26097cfdc8d8',
  'Key Vault Contributor': 'f25e0fa2-a7c8-4377-a976-54943a77a395',
} as const;
const CONTRIBUTOR = 'b24988ac-6180-42a0-ab88-20f7382dd24c';
const OWNER = '8e3af657-a8ff-443c-a75c-2fe8c4bcb635';

const OPERATIONS = ['set', 'get', 'update', 'list', 'listVersions', 'delete', 'getDeleted', 'listDeleted', 'recover', 'purge', 'backup', 'restore'] as const;
type Operation = typeof OPERATIONS[number];

/** Per-principal fixtures in a vault: a live secret, one to delete, and two deleted ones (to read/recover and to purge). */
async function seed(admin: SecretClient, tag: string) {
  await admin.setSecret(`live-${tag}`, 'v');
  await admin.setSecret(`todelete-${tag}`, 'v');
  for (const name of [`deleted-${tag}`, `purgeable-${tag}`]) {
    await admin.setSecret(name, 'v');
    await (await admin.beginDeleteSecret(name)).pollUntilDone();
  }
}

/** Runs one secrets operation as a client; returns the HTTP status of the denial, or 'ok' (any non-403 outcome). */
async function attempt(client: SecretClient, op: Operation, tag: string, backup: Uint8Array): Promise<'ok' | number> {
  const run: Record<Operation, () => Promise<unknown>> = {
    set: () => client.setSecret(`new-${tag}`, 'v'),
    get: () => client.getSecret(`live-${tag}`),
    update: () => client.updateSecretProperties(`live-${tag}`, '', { tags: { a: 'b' } }),
    list: () => client.listPropertiesOfSecrets().byPage().next(),
    listVersions: () => client.listPropertiesOfSecretVersions(`live-${tag}`).byPage().next(),
    delete: () => client.beginDeleteSecret(`todelete-${tag}`),
    getDeleted: () => client.getDeletedSecret(`deleted-${tag}`),
    listDeleted: () => client.listDeletedSecrets().byPage().next(),
    recover: () => client.beginRecoverDeletedSecret(`deleted-${tag}`),
    purge: () => client.purgeDeletedSecret(`purgeable-${tag}`),
    backup: () => client.backupSecret(`live-${tag}`),
    restore: () => client.restoreSecretBackup(backup),
  };
  try {
    await run[op]();
    return 'ok';
  } catch (err) {
    const status = (err as { statusCode?: number }).statusCode;
    return status === 403 ? 403 : 'ok';
  }
}

const forbidden = async (promise: Promise<unknown>, inner: 'ForbiddenByRbac' | 'ForbiddenByPolicy', message?: RegExp) => {
  await assert.rejects(promise, (err: any) => {
    assert.equal(err.statusCode, 403);
    assert.equal(err.code, 'Forbidden');
    // The SDK surfaces the wire's `innererror` as `innerError`.
    const body = err.details.error;
    assert.equal(body.innerError.code, inner);
    if (message) assert.match(body.message, message);
    return true;
  });
};

before(async () => {
  server = await startTestServer();
  sub = server.admin.subscriptionId;
  mgmt = new KeyVaultManagementClient(server.adminCredential, sub, { endpoint: server.admin.managementEndpoint, retryOptions: { maxRetries: 0 } });
  await server.createVault(RBAC_VAULT, { enableRbacAuthorization: true });
  await server.createVault(POLICY_VAULT, { enableRbacAuthorization: false });
  // The administrator is Owner and Key Vault Administrator, but an access-policy vault ignores roles: it grants itself a policy.
  await mgmt.vaults.updateAccessPolicy('rg-test', POLICY_VAULT, 'add', { properties: { accessPolicies: [
    { tenantId: server.admin.tenantId, objectId: server.admin.objectId, permissions: { secrets: ['all'] } },
  ] } });
});
after(async () => server?.close());

describe('RBAC vault: every Key Vault role × every secrets operation', () => {
  const readMetadata: Operation[] = ['list', 'listVersions', 'getDeleted', 'listDeleted'];
  const expected: Record<keyof typeof ROLES, Operation[]> = {
    'Key Vault Administrator': [...OPERATIONS],
    'Key Vault Secrets Officer': [...OPERATIONS],
    'Key Vault Secrets User': ['get', ...readMetadata],
    'Key Vault Certificate User': ['get', ...readMetadata],
    'Key Vault Reader': readMetadata,
    'Key Vault Certificates Officer': [],
    'Key Vault Crypto Officer': [],
    'Key Vault Crypto User': [],
    'Key Vault Crypto Service Encryption User': [],
    'Key Vault Crypto Service Release User': [],
    'Key Vault Data Access Administrator': [],
    'Key Vault Contributor': [],
  };
  for (const [i, [roleName, guid]] of Object.entries(ROLES).entries()) {
    test(roleName, async () => {
      const admin = server.secretClient(RBAC_VAULT);
      const tag = `r${i}`;
      await seed(admin, tag);
      const backup = (await admin.backupSecret(`live-${tag}`))!;
      const principal = await createPrincipal(server, `rbac-${roleName}`);
      await assignRole(server, vaultId(RBAC_VAULT), guid, principal.objectId);
      const client = secretClientAs(server, RBAC_VAULT, principal.credential);
      const outcome: Record<string, string | number> = {};
      for (const op of OPERATIONS) outcome[op] = await attempt(client, op, tag, backup);
      const want = Object.fromEntries(OPERATIONS.map((op) => [op, expected[roleName as keyof typeof ROLES].includes(op) ? 'ok' : 403]));
      assert.deepEqual(outcome, want);
    });
  }
});

describe('access-policy vault: every secrets permission × every operation', () => {
  const needs: Record<Operation, string> = {
    set: 'set', get: 'get', update: 'set', list: 'list', listVersions: 'list', delete: 'delete', getDeleted: 'get',
    listDeleted: 'list', recover: 'recover', purge: 'purge', backup: 'backup', restore: 'restore',
  };
  for (const permission of ['get', 'list', 'set', 'delete', 'backup', 'restore', 'recover', 'purge', 'all']) {
    test(`secrets ${permission}`, async () => {
      const admin = server.secretClient(POLICY_VAULT);
      const tag = `p${permission}`;
      await seed(admin, tag);
      const backup = (await admin.backupSecret(`live-${tag}`))!;
      const principal = await createPrincipal(server, `policy-${permission}`);
      await mgmt.vaults.updateAccessPolicy('rg-test', POLICY_VAULT, 'add', { properties: { accessPolicies: [
        { tenantId: server.admin.tenantId, objectId: principal.objectId, permissions: { secrets: [permission] } },
      ] } });
      const client = secretClientAs(server, POLICY_VAULT, principal.credential);
      const outcome: Record<string, string | number> = {};
      for (const op of OPERATIONS) outcome[op] = await attempt(client, op, tag, backup);
      const want = Object.fromEntries(OPERATIONS.map((op) => [op, permission === 'all' || needs[op] === permission ? 'ok' : 403]));
      assert.deepEqual(outcome, want);
    });
  }
});

describe('grants, models and seams', () => {
  let principal: TestPrincipal;
  before(async () => {
    principal = await createPrincipal(server, 'seams');
    for (const vault of [RBAC_VAULT, POLICY_VAULT]) {
      await server.secretClient(vault).setSecret('one', 'v1');
      await server.secretClient(vault).setSecret('two', 'v2');
    }
  });

  test('denials carry Azure\'s messages', async () => {
    const rbac = secretClientAs(server, RBAC_VAULT, principal.credential);
    await forbidden(rbac.getSecret('one'), 'ForbiddenByRbac', new RegExp(
      `^Caller is not authorized to perform action on resource\\.\\r\\n[^]*Caller: appid=${principal.appId};oid=${principal.objectId};iss=[^]*`
      + `Action: 'Microsoft\\.KeyVault/vaults/secrets/getSecret/action'\\r\\nResource: '${vaultId(RBAC_VAULT).toLowerCase()}/secrets/one'\\r\\nAssignment: \\(not found\\)`));
    const policy = secretClientAs(server, POLICY_VAULT, principal.credential);
    await forbidden(policy.getSecret('one'), 'ForbiddenByPolicy', new RegExp(
      `^The user, group or application 'appid=${principal.appId};oid=${principal.objectId};iss=[^']*' does not have secrets get permission on key vault '${POLICY_VAULT};location=local'`));
  });

  test('object-scope grant: one secret only; removal takes effect at once', async () => {
    const id = await assignRole(server, `${vaultId(RBAC_VAULT)}/secrets/one`, ROLES['Key Vault Secrets User'], principal.objectId);
    const client = secretClientAs(server, RBAC_VAULT, principal.credential);
    assert.equal((await client.getSecret('one')).value, 'v1');
    await forbidden(client.getSecret('two'), 'ForbiddenByRbac');
    await assert.rejects(client.listPropertiesOfSecrets().byPage().next(), (e: any) => e.statusCode === 403);
    assert.equal((await armClient(server, server.adminCredential)('DELETE', id)).status, 200);
    await forbidden(client.getSecret('one'), 'ForbiddenByRbac');
  });

  test('wrong model both ways, and switching the model takes effect on the next request', async () => {
    const other = await createPrincipal(server, 'wrong-model');
    // A role on the access-policy vault, a policy on the RBAC vault: both ignored.
    await assignRole(server, vaultId(POLICY_VAULT), ROLES['Key Vault Secrets User'], other.objectId);
    await mgmt.vaults.updateAccessPolicy('rg-test', RBAC_VAULT, 'add', { properties: { accessPolicies: [
      { tenantId: server.admin.tenantId, objectId: other.objectId, permissions: { secrets: ['get'] } },
    ] } });
    await forbidden(secretClientAs(server, POLICY_VAULT, other.credential).getSecret('one'), 'ForbiddenByPolicy');
    await forbidden(secretClientAs(server, RBAC_VAULT, other.credential).getSecret('one'), 'ForbiddenByRbac');
    // The grants are kept and shown.
    const shown = await mgmt.vaults.get('rg-test', RBAC_VAULT);
    assert.ok(shown.properties.accessPolicies?.some((p) => p.objectId === other.objectId));

    await mgmt.vaults.update('rg-test', POLICY_VAULT, { properties: { enableRbacAuthorization: true } });
    assert.equal((await secretClientAs(server, POLICY_VAULT, other.credential).getSecret('one')).value, 'v1');
    await mgmt.vaults.update('rg-test', POLICY_VAULT, { properties: { enableRbacAuthorization: false } });
    await forbidden(secretClientAs(server, POLICY_VAULT, other.credential).getSecret('one'), 'ForbiddenByPolicy');
  });

  test('Contributor seam, access-policy vault: cannot read, can add itself a policy, then reads', async () => {
    const contributor = await createPrincipal(server, 'contributor-ap');
    await assignRole(server, `/subscriptions/${sub}/resourceGroups/rg-test`, CONTRIBUTOR, contributor.objectId);
    const data = secretClientAs(server, POLICY_VAULT, contributor.credential);
    await forbidden(data.getSecret('one'), 'ForbiddenByPolicy');
    const asContributor = new KeyVaultManagementClient(contributor.credential, sub, { endpoint: server.admin.managementEndpoint, retryOptions: { maxRetries: 0 } });
    await asContributor.vaults.updateAccessPolicy('rg-test', POLICY_VAULT, 'add', { properties: { accessPolicies: [
      { tenantId: server.admin.tenantId, objectId: contributor.objectId, permissions: { secrets: ['get'] } },
    ] } });
    assert.equal((await data.getSecret('one')).value, 'v1');
  });

  test('Contributor seam, RBAC vault: no data actions, and cannot grant itself any', async () => {
    const contributor = await createPrincipal(server, 'contributor-rbac');
    await assignRole(server, `/subscriptions/${sub}/resourceGroups/rg-test`, CONTRIBUTOR, contributor.objectId);
    const data = secretClientAs(server, RBAC_VAULT, contributor.credential);
    await forbidden(data.getSecret('one'), 'ForbiddenByRbac');
    const arm = armClient(server, contributor.credential);
    const grant = await arm('PUT', `${vaultId(RBAC_VAULT)}/providers/Microsoft.Authorization/roleAssignments/${crypto.randomUUID()}`, {
      properties: { roleDefinitionId: roleDefinitionId(server, ROLES['Key Vault Secrets User']), principalId: contributor.objectId },
    });
    assert.equal(grant.status, 403);
    assert.equal(grant.body.error.code, 'AuthorizationFailed');
    assert.match(grant.body.error.message, /does not have authorization to perform action 'Microsoft\.Authorization\/roleAssignments\/write'/);
    await forbidden(data.getSecret('one'), 'ForbiddenByRbac');
    // It can still manage the vault itself.
    const asContributor = new KeyVaultManagementClient(contributor.credential, sub, { endpoint: server.admin.managementEndpoint, retryOptions: { maxRetries: 0 } });
    assert.deepEqual((await asContributor.vaults.update('rg-test', RBAC_VAULT, { tags: { owner: 'contributor' } })).tags, { owner: 'contributor' });
  });

  test('Key Vault Data Access Administrator assigns Key Vault data roles only', async () => {
    const delegate = await createPrincipal(server, 'data-access-admin');
    const grantee = await createPrincipal(server, 'grantee');
    await assignRole(server, vaultId(RBAC_VAULT), ROLES['Key Vault Data Access Administrator'], delegate.objectId);
    const arm = armClient(server, delegate.credential);
    const assign = (role: string) => arm('PUT', `${vaultId(RBAC_VAULT)}/providers/Microsoft.Authorization/roleAssignments/${crypto.randomUUID()}`, {
      properties: { roleDefinitionId: roleDefinitionId(server, role), principalId: grantee.objectId },
    });
    assert.equal((await assign(OWNER)).status, 403);
    assert.equal((await assign(ROLES['Key Vault Secrets User'])).status, 201);
    assert.equal((await secretClientAs(server, RBAC_VAULT, grantee.credential).getSecret('two')).value, 'v2');
  });

  test('custom role: wildcard data actions minus notDataActions', async () => {
    const guid = crypto.randomUUID();
    const created = await armClient(server, server.adminCredential)('PUT', `/subscriptions/${sub}/providers/Microsoft.Authorization/roleDefinitions/${guid}`, {
      properties: {
        roleName: 'Secret metadata only', assignableScopes: [`/subscriptions/${sub}`],
        permissions: [{ dataActions: ['Microsoft.KeyVault/vaults/secrets/*'], notDataActions: ['Microsoft.KeyVault/vaults/secrets/getSecret/action'] }],
      },
    });
    assert.equal(created.status, 201);
    const custom = await createPrincipal(server, 'custom-role');
    await assignRole(server, `/subscriptions/${sub}/resourceGroups/rg-test`, guid, custom.objectId);
    const client = secretClientAs(server, RBAC_VAULT, custom.credential);
    assert.ok((await client.listPropertiesOfSecrets().byPage().next()).value.length > 0);
    await client.setSecret('custom-set', 'v');
    await forbidden(client.getSecret('one'), 'ForbiddenByRbac');
  });

  test('control plane: a principal without roles can neither see nor create vaults', async () => {
    const nobody = await createPrincipal(server, 'nobody');
    const asNobody = new KeyVaultManagementClient(nobody.credential, sub, { endpoint: server.admin.managementEndpoint, retryOptions: { maxRetries: 0 } });
    await assert.rejects(asNobody.vaults.get('rg-test', RBAC_VAULT), (e: any) => e.statusCode === 403 && e.code === 'AuthorizationFailed');
    await assert.rejects(asNobody.vaults.createOrUpdate('rg-test', 'nobodyvault', {
      location: 'local', properties: { tenantId: server.admin.tenantId, sku: { family: 'A', name: 'standard' } },
    }), (e: any) => e.statusCode === 403 && e.code === 'AuthorizationFailed');
    const list: string[] = [];
    for await (const v of asNobody.vaults.listBySubscription()) list.push(v.name!);
    assert.deepEqual(list, []);
  });
});

