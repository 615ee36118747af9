import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startTestServer, type TestServer } from '../support/server.js';
import { armClient, assignRole } from '../support/arm.js';
import { cliRunner } from '../support/cli.js';
import { ROLE_IDS } from '../../src/gates/authorization/builtin-roles.js';

/**
 * The seed walkthrough, verbatim with `coffer` for `az`, run by bash against a real Coffer after
 * `coffer login`. Each `coffer` call's output is kept (numbered in order) so every step can be checked.
 */
const SEED = `
coffer group create -n rg-kv-lab -l eastus
coffer keyvault create --name kvlab1 --resource-group rg-kv-lab --location eastus --enable-rbac-authorization true
coffer keyvault show --name kvlab1 --resource-group rg-kv-lab --query "{name:name, location:location, enableRbacAuthorization:properties.enableRbacAuthorization}" --output table
ME_OID="$(coffer ad signed-in-user show --query id -o tsv)"
KV_ID="$(coffer keyvault show --name kvlab1 --query id -o tsv)"
coffer role assignment create --assignee-object-id "$ME_OID" --assignee-principal-type User --role "Key Vault Administrator" --scope "$KV_ID"
coffer role assignment list --scope "$KV_ID" --output table
coffer keyvault secret set --vault-name kvlab1 --name DbPassword --value "P@ssw0rd-ReplaceMe"
coffer keyvault secret show --vault-name kvlab1 --name DbPassword --query value -o tsv
coffer keyvault create --name my-vault --resource-group rg-kv-lab --location eastus --enable-rbac-authorization true --enable-purge-protection true --sku standard
coffer keyvault create --name kvlab2 --resource-group rg-kv-lab --enable-rbac-authorization false
coffer keyvault show --name kvlab2 --query "properties.enableRbacAuthorization"
coffer keyvault set-policy --name kvlab2 --object-id "$ME_OID" --secret-permissions get list
coffer keyvault delete --name my-vault
coffer keyvault list-deleted --query "[].{name:name, scheduledPurge:properties.scheduledPurgeDate}"
coffer keyvault recover --name my-vault
coffer group delete -n rg-kv-lab --yes
`;



/** Every `coffer` call's stdout/stderr goes to $LOG/{n}.out|err (n counts calls, subshells included) and stdout to the caller. */
const PRELUDE = `
set -euo pipefail
echo 0 > "$LOG/count"
coffer() {
  local n rc=0
  n=$(( $(cat "$LOG/count") + 1 )); echo "$n" > "$LOG/count"
  node "$COFFER_BIN" "$@" > "$LOG/$n.out" 2> "$LOG/$n.err" || rc=$?
  cat "$LOG/$n.out"
  return "$rc"
}
`;

let server: TestServer;
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-walkthrough-'));
const configDir = path.join(scratch, 'config');
const logDir = path.join(scratch, 'log');
/** The CLI as the logged-in principal: no data dir, only the `coffer login` profile. */
const childEnv = () => ({ COFFER_CONFIG_DIR: configDir, COFFER_DATA_DIR: undefined });
const { run, ok, json } = cliRunner(scratch, childEnv);

before(async () => {
  server = await startTestServer();
  fs.mkdirSync(logDir);
});

after(async () => {
  await server?.close();
  fs.rmSync(scratch, { recursive: true, force: true });
});

const step = (n: number) => ({
  out: fs.readFileSync(path.join(logDir, `${n}.out`), 'utf8'),
  err: fs.readFileSync(path.join(logDir, `${n}.err`), 'utf8'),
});

test('the seed walkthrough runs verbatim after `coffer login`', async () => {
  // A user who is the subscription's Owner, as the person following the walkthrough is in their subscription.
  const password = 'Walkthrough-Passw0rd';
  const { status, body: user } = await armClient(server, server.adminCredential)('POST', '/v1.0/users', {
    accountEnabled: true, displayName: 'Walkthrough User', userPrincipalName: 'walker@coffer.test', passwordProfile: { password },
  });
  assert.equal(status, 201);
  const subscription = `/subscriptions/${server.admin.subscriptionId}`;
  await assignRole(server, subscription, ROLE_IDS.owner, user.id);
  await ok(['login', '-u', 'walker@coffer.test', '-p', password, '--tenant', server.admin.tenantId,
    '--endpoint', server.admin.managementEndpoint, '--ca-cert', server.admin.caCertPath!]);
  const account = await json(['account', 'show']);
  assert.deepEqual(account.user, { name: 'walker@coffer.test', type: 'user' });
  // The profile keeps a refresh token, never the password.
  assert.ok(!fs.readFileSync(path.join(configDir, 'profile.json'), 'utf8').includes(password));
  // login learnt the subscription from the endpoint's subscription list.
  assert.equal((await json(['account', 'show'])).id, server.admin.subscriptionId);

  const walk = await run('bash', ['-c', PRELUDE + SEED], { LOG: logDir, COFFER_BIN: path.resolve('bin/coffer.js') });
  const calls = Number(fs.readFileSync(path.join(logDir, 'count'), 'utf8'));
  assert.equal(walk.code, 0, `the walkthrough stopped at call ${calls}: ${calls ? step(calls).err : walk.stderr}`);
  assert.equal(calls, 17);

  const group = JSON.parse(step(1).out);
  assert.equal(group.id, `${subscription}/resourceGroups/rg-kv-lab`);
  assert.equal(group.location, 'eastus');
  const kvlab1 = JSON.parse(step(2).out);
  assert.equal(kvlab1.properties.enableRbacAuthorization, true);
  assert.deepEqual(step(3).out.split('\n').map((l) => l.trimEnd()), [
    'Name    Location    EnableRbacAuthorization', '------  ----------  -------------------------', 'kvlab1  eastus      True', '',
  ]);
  assert.equal(step(4).out, `${user.id}\n`);
  const kvId = `${subscription}/resourceGroups/rg-kv-lab/providers/Microsoft.KeyVault/vaults/kvlab1`;
  assert.equal(step(5).out, `${kvId}\n`);
  const assignment = JSON.parse(step(6).out);
  assert.equal(assignment.principalId, user.id);
  assert.equal(assignment.scope, kvId);
  assert.match(assignment.roleDefinitionId, new RegExp(`/roleDefinitions/${ROLE_IDS.keyVaultAdministrator}$`));
  const table = step(7).out.trimEnd().split('\n').map((l) => l.trimEnd());
  assert.match(table[0], /^Principal\s+Role\s+Scope$/);
  assert.equal(table.length, 3);
  // A principal who may not read the directory still sees its own name (az's principalName: the app id).
  assert.match(table[2], new RegExp(`^${user.userPrincipalName}\\s+Key Vault Administrator\\s+${kvId}$`));
  assert.equal(JSON.parse(step(8).out).value, 'P@ssw0rd-ReplaceMe');
  assert.equal(step(9).out, 'P@ssw0rd-ReplaceMe\n');
  const myVault = JSON.parse(step(10).out);
  assert.equal(myVault.properties.enablePurgeProtection, true);
  assert.equal(myVault.properties.sku.name, 'standard');
  const kvlab2 = JSON.parse(step(11).out);
  assert.equal(kvlab2.location, 'eastus');
  assert.equal(step(12).out, 'false\n');
  const policies = JSON.parse(step(13).out).properties.accessPolicies;
  assert.deepEqual(policies.find((p: { objectId: string }) => p.objectId === user.id).permissions.secrets, ['get', 'list']);
  assert.equal(step(14).out, '');
  const deleted = JSON.parse(step(15).out);
  assert.deepEqual(deleted.map((d: { name: string }) => d.name), ['my-vault']);
  assert.match(deleted[0].scheduledPurge, /^\d{4}-\d{2}-\d{2}T[\d:.]+\+00:00$/);
  assert.equal(JSON.parse(step(16).out).name, 'my-vault');
  assert.equal(step(17).out, '');

  // The group's vaults are gone with it, softly: all three wait in the deleted list, with their secrets.
  const after = await json(['keyvault', 'list-deleted', '--query', '[].name']);
  assert.deepEqual([...after].sort(), ['kvlab1', 'kvlab2', 'my-vault']);
});
