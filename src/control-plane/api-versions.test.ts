import { test } from 'node:test';
import assert from 'node:assert/strict';
import { armTypeOf, checkManagementApiVersion } from './api-versions.js';
import { KeyVaultError } from '../http/errors.js';

const sub = '/subscriptions/00000000-0000-0000-0000-000000000001';
const vault = `${sub}/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v1`;

const refusal = (path: string, version: unknown, body?: unknown) => {
  try {
    checkManagementApiVersion(path, version, body);
  } catch (err) {
    assert.ok(err instanceof KeyVaultError);
    return { status: err.status, code: err.code, message: err.message };
  }
  return undefined;
};

test('the provider and type of a path are its last /providers segment, ARM-style', () => {
  assert.deepEqual(armTypeOf('/subscriptions'), { namespace: 'Microsoft.Resources', type: 'subscriptions' });
  assert.deepEqual(armTypeOf(`${sub}?api-version=2022-12-01`), { namespace: 'Microsoft.Resources', type: 'subscriptions' });
  assert.deepEqual(armTypeOf(`${sub}/resourcegroups/rg`), { namespace: 'Microsoft.Resources', type: 'resourceGroups' });
  assert.deepEqual(armTypeOf(`${sub}/resources?$filter=x`), { namespace: 'Microsoft.Resources', type: 'resources' });
  assert.deepEqual(armTypeOf(vault), { namespace: 'Microsoft.KeyVault', type: 'vaults' });
  assert.deepEqual(armTypeOf(`${vault}/accessPolicies/add`), { namespace: 'Microsoft.KeyVault', type: 'vaults/accessPolicies' });
  assert.deepEqual(armTypeOf(`${sub}/providers/Microsoft.KeyVault/locations/westus/deletedVaults/v1`), { namespace: 'Microsoft.KeyVault', type: 'locations/deletedVaults' });
  assert.deepEqual(armTypeOf(`${vault}/providers/Microsoft.Authorization/roleAssignments/abc`), { namespace: 'Microsoft.Authorization', type: 'roleAssignments' });
  assert.deepEqual(armTypeOf(`${vault}/providers/microsoft.insights/metrics`), { namespace: 'microsoft.insights', type: 'metrics' });
});

test('every api-version a released client sends to the management API is accepted', () => {
  const accepted: [string, string][] = [
    // Coffer's CLI (src/cli) and az 2.45's SDKs.
    [vault, '2023-07-01'], [vault, '2022-07-01'], [`${sub}/providers/Microsoft.KeyVault/deletedVaults`, '2023-07-01'],
    [`${sub}/resourcegroups/rg`, '2022-09-01'], ['/subscriptions', '2022-12-01'], ['/subscriptions', '2021-01-01'],
    [`${sub}/providers/Microsoft.Authorization/roleAssignments`, '2022-04-01'], [`${sub}/providers/Microsoft.Authorization/roleDefinitions/x`, '2022-04-01'],
    [`${sub}/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/n`, '2024-05-01'],
    [`${vault}/providers/Microsoft.Insights/diagnosticSettings/d`, '2021-05-01-preview'], [`${vault}/providers/Microsoft.Insights/metrics`, '2018-01-01'],
    [`${vault}/providers/Microsoft.EventGrid/eventSubscriptions/e`, '2022-06-15'],
    [`${sub}/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/i`, '2023-01-31'],
    [`${sub}/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/w`, '2022-10-01'],
    [`${sub}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/s`, '2023-01-01'],
    [`${sub}/resourceGroups/rg/providers/Microsoft.EventHub/namespaces/h`, '2021-11-01'],
    // @azure/arm-keyvault 5 (and its vaults.list, which reads /resources) and the reference specs.
    [vault, '2026-02-01'], [`${sub}/resources`, '2015-11-01'], [vault, '2025-05-01'],
  ];
  for (const [path, version] of accepted) assert.equal(refusal(path, version), undefined, `${path} ${version}`);
});

test('an unsupported api-version is refused as each provider refuses it', () => {
  const keyVault = refusal(vault, '2099-01-01', { location: 'westus' })!;
  assert.equal(keyVault.status, 400);
  assert.equal(keyVault.code, 'NoRegisteredProviderFound');
  assert.match(keyVault.message, /^No registered resource provider found for location 'westus' and API version '2099-01-01' for type 'vaults'\. The supported api-versions are '2014-12-19-preview, 2015-06-01, .*2025-05-01, 2026-02-01'\. The supported locations are ''\.$/);
  assert.match(refusal(`${sub}/providers/Microsoft.KeyVault/locations/eastus/deletedVaults/v1`, '1.0')!.message, /location 'eastus' .* type 'locations\/deletedVaults'/);

  const groups = refusal(`${sub}/resourcegroups/rg`, '2022-04-01')!;
  assert.equal(groups.code, 'InvalidApiVersionParameter');
  assert.match(groups.message, /^The api-version '2022-04-01' is invalid\. The supported versions are '2025-04-01,2024-11-01,.*,2013-03-01'\.$/);

  const roles = refusal(`${sub}/providers/Microsoft.Authorization/roleDefinitions`, '2020-10-01-preview')!;
  assert.equal(roles.code, 'InvalidResourceType');
  assert.match(roles.message, /^The resource type 'roleDefinitions' could not be found in the namespace 'Microsoft.Authorization' for api version '2020-10-01-preview'\. The supported api-versions are '2014-04-01-preview,.*,2022-04-01,2022-05-01-preview'\.$/);
  // The version roleAssignments has and roleDefinitions lacks.
  assert.equal(refusal(`${sub}/providers/Microsoft.Authorization/roleAssignments`, '2020-10-01-preview'), undefined);

  // A data-plane version, a repeated parameter, and a missing one.
  assert.equal(refusal(vault, '7.4')!.code, 'NoRegisteredProviderFound');
  assert.equal(refusal(vault, ['2023-07-01', '2023-07-01'])!.code, 'NoRegisteredProviderFound');
  assert.equal(refusal(vault, undefined)!.code, 'MissingApiVersionParameter');
  assert.equal(refusal(vault, '')!.code, 'MissingApiVersionParameter');
});
