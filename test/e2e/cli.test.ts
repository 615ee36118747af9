import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startTestServer, type TestServer } from '../support/server.js';
import { cliRunner } from '../support/cli.js';

/**
 * The az-compatible CLI end to end: `node bin/coffer.js …` (the built CLI) against a real Coffer. The child does not
 * get NODE_EXTRA_CA_CERTS: it must trust the server through the data dir's caCertPath or `login --ca-cert`.
 */
let server: TestServer;
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-cli-test-'));
const emptyConfigDir = path.join(scratch, 'no-login');

const { ok, json, fails } = cliRunner(scratch, () => ({ COFFER_CONFIG_DIR: emptyConfigDir, COFFER_DATA_DIR: server.dataDir }));

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00$/;
const VAULT = 'cli-vault';
const secretArgs = (name: string) => ['--vault-name', VAULT, '--name', name];

before(async () => {
  server = await startTestServer();
});

after(async () => {
  await server?.close();
  fs.rmSync(scratch, { recursive: true, force: true });
});

test('--help lists the command groups', async () => {
  const { stdout } = await ok(['--help']);
  for (const group of ['server', 'login', 'logout', 'account', 'keyvault', 'debug']) assert.match(stdout, new RegExp(`^  ${group}\\b`, 'm'));
  const secretHelp = await ok(['keyvault', 'secret', '--help']);
  for (const cmd of ['set', 'show', 'download', 'list', 'list-versions', 'set-attributes', 'delete', 'list-deleted', 'show-deleted', 'recover', 'purge', 'backup', 'restore']) {
    assert.match(secretHelp.stdout, new RegExp(`^  ${cmd}\\b`, 'm'));
  }
});

test('keyvault create, show and list (management API, az-shaped)', async () => {
  // No --resource-group: the default group (created by the CLI when the server requires groups to exist).
  const created = await json(['keyvault', 'create', '--name', VAULT, '--retention-days', '7', '--sku', 'premium']);
  assert.equal(created.name, VAULT);
  assert.equal(created.type, 'Microsoft.KeyVault/vaults');
  assert.equal(created.resourceGroup, 'coffer-default');
  assert.equal(created.properties.softDeleteRetentionInDays, 7);
  assert.equal(created.properties.enableRbacAuthorization, false);
  assert.equal(created.properties.sku.name, 'premium');
  assert.equal(created.properties.vaultUri, `${server.vaultUrl(VAULT)}/`);
  assert.equal(created.id, `/subscriptions/${server.admin.subscriptionId}/resourceGroups/coffer-default/providers/Microsoft.KeyVault/vaults/${VAULT}`);

  // az 2.45: an access-policy vault whose creator gets az's default permissions (which lack purge).
  assert.deepEqual(created.properties.accessPolicies.map((p: { objectId: string }) => p.objectId), [server.admin.objectId]);
  assert.ok(!created.properties.accessPolicies[0].permissions.secrets.includes('purge'));
  const granted = await json(['keyvault', 'set-policy', '--name', VAULT, '--object-id', server.admin.objectId,
    '--secret-permissions', 'get', 'list', 'set', 'delete', 'backup', 'restore', 'recover', 'purge']);
  assert.ok(granted.properties.accessPolicies[0].permissions.secrets.map((p: string) => p.toLowerCase()).includes('purge'));
  await fails(['keyvault', 'set-policy', '--name', VAULT, '--object-id', server.admin.objectId], 2, /usage error/);

  const uri = await ok(['keyvault', 'show', '--name', VAULT, '--query', 'properties.vaultUri', '-o', 'tsv']);
  assert.equal(uri.stdout, `${server.vaultUrl(VAULT)}/\n`);
  const inGroup = await json(['keyvault', 'show', '-n', VAULT, '-g', 'coffer-default']);
  assert.deepEqual(inGroup, granted);

  const list = await json(['keyvault', 'list']);
  assert.ok(list.some((v: { name: string }) => v.name === VAULT));
  assert.deepEqual(Object.keys(list[0]).sort(), ['id', 'location', 'name', 'resourceGroup', 'tags', 'type']);
  const table = await ok(['keyvault', 'list', '-o', 'table']);
  assert.deepEqual(table.stdout.split('\n').map((l) => l.trimEnd()), [
    'Location    Name       ResourceGroup', '----------  ---------  ---------------', `local       ${VAULT}  coffer-default`, '',
  ]);

  await fails(['keyvault', 'show', '--name', 'no-such-vault'], 3, /^ERROR: \(ResourceNotFound\)/);
  await fails(['keyvault', 'show', '--name', 'no-such-vault', '-g', 'coffer-default'], 3, /^ERROR: \(ResourceNotFound\)/);
});

test('keyvault secret set/show: az 2.45 JSON shape, --query, -o tsv/table/none', async () => {
  const set = await json(['keyvault', 'secret', 'set', ...secretArgs('db-password'), '--value', 'p@ss w0rd', '--content-type', 'text/plain', '--tags', 'env=dev', 'team=core']);
  assert.deepEqual(Object.keys(set), ['attributes', 'contentType', 'id', 'kid', 'managed', 'name', 'tags', 'value']);
  assert.deepEqual(Object.keys(set.attributes), ['created', 'enabled', 'expires', 'notBefore', 'recoverableDays', 'recoveryLevel', 'updated']);
  assert.match(set.attributes.created, ISO);
  assert.equal(set.attributes.enabled, true);
  assert.equal(set.attributes.expires, null);
  assert.equal(set.attributes.recoverableDays, 7);
  assert.equal(set.attributes.recoveryLevel, 'CustomizedRecoverable+Purgeable');
  assert.equal(set.value, 'p@ss w0rd');
  assert.equal(set.name, 'db-password');
  assert.equal(set.contentType, 'text/plain');
  assert.equal(set.kid, null);
  assert.equal(set.managed, null);
  assert.deepEqual(set.tags, { env: 'dev', 'file-encoding': 'utf-8', team: 'core' });
  assert.match(set.id, new RegExp(`^${server.vaultUrl(VAULT)}/secrets/db-password/[0-9a-f]{32}$`));

  const shown = await json(['keyvault', 'secret', 'show', ...secretArgs('db-password')]);
  assert.deepEqual(shown, set);
  const byId = await json(['keyvault', 'secret', 'show', '--id', set.id]);
  assert.deepEqual(byId, set);
  const version = set.id.split('/').pop();
  assert.equal((await ok(['keyvault', 'secret', 'show', ...secretArgs('db-password'), '--version', version, '--query', 'value', '-o', 'tsv'])).stdout, 'p@ss w0rd\n');

  // az's JSON output sorts keys; a multiselect hash keeps the query's order in tsv.
  assert.equal((await ok(['keyvault', 'secret', 'show', ...secretArgs('db-password'), '--query', '{v:value,n:name,e:attributes.enabled}', '-o', 'tsv'])).stdout, 'p@ss w0rd\tdb-password\tTrue\n');
  assert.equal((await ok(['keyvault', 'secret', 'show', ...secretArgs('db-password'), '--query', 'attributes.enabled', '-o', 'tsv'])).stdout, 'true\n');
  // Without a query: values of the sorted keys; dicts print nothing, nulls print None.
  assert.equal((await ok(['keyvault', 'secret', 'show', ...secretArgs('db-password'), '-o', 'tsv'])).stdout, `\ttext/plain\t${set.id}\tNone\tNone\tdb-password\t\tp@ss w0rd\n`);
  assert.deepEqual((await ok(['keyvault', 'secret', 'show', ...secretArgs('db-password'), '-o', 'table'])).stdout.split('\n').map((l) => l.trimEnd()), [
    'ContentType    Name         Value', '-------------  -----------  ---------', 'text/plain     db-password  p@ss w0rd', '',
  ]);
  assert.equal((await ok(['keyvault', 'secret', 'show', ...secretArgs('db-password'), '-o', 'none'])).stdout, '');
  assert.deepEqual(await json(['keyvault', 'secret', 'show', ...secretArgs('db-password'), '--query', 'tags']), set.tags);
});

test('keyvault secret set --file with encodings, --disabled, --expires/--not-before', async () => {
  const textFile = path.join(scratch, 'value.txt');
  fs.writeFileSync(textFile, 'line one\r\nline two\n');
  const fromText = await json(['keyvault', 'secret', 'set', ...secretArgs('from-file'), '--file', textFile]);
  assert.equal(fromText.value, 'line one\nline two\n');
  const binFile = path.join(scratch, 'value.bin');
  fs.writeFileSync(binFile, Buffer.from([0, 1, 2, 250, 255]));
  const fromBinary = await json(['keyvault', 'secret', 'set', ...secretArgs('from-file'), '--file', binFile, '--encoding', 'base64']);
  assert.equal(fromBinary.value, 'AAEC+v8=');
  assert.equal(fromBinary.tags['file-encoding'], 'base64');
  const hex = await json(['keyvault', 'secret', 'set', ...secretArgs('from-file'), '-f', binFile, '-e', 'hex']);
  assert.equal(hex.value, '000102faff');

  // download writes the bytes back, decoding as the file-encoding tag says; it never overwrites.
  const downloaded = path.join(scratch, 'downloaded.bin');
  await fails(['keyvault', 'secret', 'download', ...secretArgs('from-file'), '--file', textFile], 1, /already exists/);
  assert.equal((await ok(['keyvault', 'secret', 'download', ...secretArgs('from-file'), '--file', downloaded, '--version', fromBinary.id.split('/').pop()])).stdout, '');
  assert.deepEqual(fs.readFileSync(downloaded), fs.readFileSync(binFile));
  const downloadedHex = path.join(scratch, 'downloaded.hex');
  await ok(['keyvault', 'secret', 'download', '--id', hex.id, '--file', downloadedHex, '--encoding', 'utf-8']);
  assert.equal(fs.readFileSync(downloadedHex, 'utf8'), '000102faff');

  const dated = await json(['keyvault', 'secret', 'set', ...secretArgs('dated'), '--value', 'x', '--expires', '2099-01-02T03:04:05Z', '--not-before', '2020-01-01', '--disabled', 'true']);
  assert.equal(dated.attributes.expires, '2099-01-02T03:04:05+00:00');
  assert.equal(dated.attributes.notBefore, '2020-01-01T00:00:00+00:00');
  assert.equal(dated.attributes.enabled, false);

  await fails(['keyvault', 'secret', 'set', ...secretArgs('x'), '--value', 'a', '--file', textFile], 2, /incorrect usage: \[Required\] --value VALUE \| --file PATH/);
  await fails(['keyvault', 'secret', 'set', ...secretArgs('x')], 2, /incorrect usage/);
  await fails(['keyvault', 'secret', 'set', ...secretArgs('x'), '--value', 'a', '--expires', 'someday'], 2, /--expires/);
  await fails(['keyvault', 'secret', 'set', ...secretArgs('x'), '--value', 'a', '--encoding', 'utf-32'], 2, /encoding/);
});

test('keyvault secret list, list-versions, set-attributes, --maxresults', async () => {
  for (const n of ['list-a', 'list-b', 'list-c']) await ok(['keyvault', 'secret', 'set', ...secretArgs(n), '--value', `value-of-${n}`, '-o', 'none']);
  await ok(['keyvault', 'secret', 'set', ...secretArgs('list-a'), '--value', 'second', '-o', 'none']);

  const list = await json(['keyvault', 'secret', 'list', '--vault-name', VAULT]);
  assert.ok(list.length >= 3);
  const item = list.find((s: { name: string }) => s.name === 'list-a');
  assert.deepEqual(Object.keys(item), ['attributes', 'contentType', 'id', 'managed', 'name', 'tags']);
  assert.equal(item.id, `${server.vaultUrl(VAULT)}/secrets/list-a`);
  assert.ok(!JSON.stringify(list).includes('value-of-'), 'list never carries values');
  assert.equal((await json(['keyvault', 'secret', 'list', '--vault-name', VAULT, '--maxresults', '2'])).length, 2);
  assert.equal((await json(['keyvault', 'secret', 'list', '--id', server.vaultUrl(VAULT), '--query', 'length(@)'])), list.length);
  const names = await ok(['keyvault', 'secret', 'list', '--vault-name', VAULT, '--query', "[?starts_with(name, 'list-')].name", '-o', 'tsv']);
  assert.equal(names.stdout, 'list-a\nlist-b\nlist-c\n');
  const table = await ok(['keyvault', 'secret', 'list', '--vault-name', VAULT, '--query', "[?name=='list-b'].{Name:name, Enabled:attributes.enabled}", '-o', 'table']);
  assert.deepEqual(table.stdout.split('\n').map((l) => l.trimEnd()), ['Name    Enabled', '------  ---------', 'list-b  True', '']);

  const versions = await json(['keyvault', 'secret', 'list-versions', ...secretArgs('list-a')]);
  assert.equal(versions.length, 2);
  assert.ok(versions.every((v: { id: string; name: string }) => v.name === 'list-a' && /\/secrets\/list-a\/[0-9a-f]{32}$/.test(v.id)));
  assert.equal((await json(['keyvault', 'secret', 'list-versions', ...secretArgs('list-a'), '--maxresults', '1'])).length, 1);

  const updated = await json(['keyvault', 'secret', 'set-attributes', ...secretArgs('list-b'), '--content-type', 'application/json', '--tags', 'a=1', '--expires', '2098-05-06T07:08:09Z']);
  assert.equal(updated.contentType, 'application/json');
  assert.deepEqual(updated.tags, { a: '1' });
  assert.equal(updated.attributes.expires, '2098-05-06T07:08:09+00:00');
  assert.equal(updated.value, null);

  const disabled = await json(['keyvault', 'secret', 'set-attributes', ...secretArgs('list-b'), '--enabled', 'false']);
  assert.equal(disabled.attributes.enabled, false);
  const forbidden = await fails(['keyvault', 'secret', 'show', ...secretArgs('list-b')], 1, /^ERROR: \(Forbidden\) Operation get is not allowed on a disabled secret/);
  assert.ok(!forbidden.stderr.includes('value-of-list-b'));
  const enabled = await json(['keyvault', 'secret', 'set-attributes', '--id', `${server.vaultUrl(VAULT)}/secrets/list-b`, '--enabled']);
  assert.equal(enabled.attributes.enabled, true);
});

test('keyvault secret delete, list-deleted, show-deleted, recover, purge', async () => {
  await ok(['keyvault', 'secret', 'set', ...secretArgs('doomed'), '--value', 'bye', '-o', 'none']);
  const deleted = await json(['keyvault', 'secret', 'delete', ...secretArgs('doomed')]);
  assert.deepEqual(Object.keys(deleted), ['attributes', 'contentType', 'deletedDate', 'id', 'kid', 'managed', 'name', 'recoveryId', 'scheduledPurgeDate', 'tags', 'value']);
  assert.equal(deleted.recoveryId, `${server.vaultUrl(VAULT)}/deletedsecrets/doomed`);
  assert.match(deleted.deletedDate, ISO);
  assert.equal(Date.parse(deleted.scheduledPurgeDate) - Date.parse(deleted.deletedDate), 7 * 86_400_000);
  assert.equal(deleted.name, 'doomed');

  const listed = await json(['keyvault', 'secret', 'list-deleted', '--vault-name', VAULT]);
  const entry = listed.find((s: { name: string }) => s.name === 'doomed');
  assert.deepEqual(Object.keys(entry), ['attributes', 'contentType', 'deletedDate', 'id', 'managed', 'name', 'recoveryId', 'scheduledPurgeDate', 'tags']);
  const shown = await json(['keyvault', 'secret', 'show-deleted', '--id', deleted.recoveryId]);
  assert.equal(shown.recoveryId, deleted.recoveryId);
  await fails(['keyvault', 'secret', 'show', ...secretArgs('doomed')], 3, /^ERROR: \(SecretNotFound\)/);
  await fails(['keyvault', 'secret', 'set', ...secretArgs('doomed'), '--value', 'NEW-SECRET-VALUE'], 1, /^ERROR: \(Conflict\)|ObjectIsDeletedButRecoverable/)
    .then((r) => assert.ok(!r.stderr.includes('NEW-SECRET-VALUE')));

  const recovered = await json(['keyvault', 'secret', 'recover', ...secretArgs('doomed')]);
  assert.equal(recovered.name, 'doomed');
  assert.equal((await ok(['keyvault', 'secret', 'show', ...secretArgs('doomed'), '--query', 'value', '-o', 'tsv'])).stdout, 'bye\n');

  await ok(['keyvault', 'secret', 'delete', ...secretArgs('doomed'), '-o', 'none']);
  const purge = await ok(['keyvault', 'secret', 'purge', ...secretArgs('doomed')]);
  assert.equal(purge.stdout, '');
  await fails(['keyvault', 'secret', 'show-deleted', ...secretArgs('doomed')], 3, /^ERROR: \(SecretNotFound\)/);
  await fails(['keyvault', 'secret', 'purge', ...secretArgs('doomed')], 3, /^ERROR: \(SecretNotFound\)/);
});

test('keyvault secret backup and restore through a file', async () => {
  await ok(['keyvault', 'secret', 'set', ...secretArgs('kept'), '--value', 'v1', '-o', 'none']);
  await ok(['keyvault', 'secret', 'set', ...secretArgs('kept'), '--value', 'v2', '-o', 'none']);
  const file = path.join(scratch, 'kept.backup');
  const backup = await ok(['keyvault', 'secret', 'backup', ...secretArgs('kept'), '--file', file]);
  assert.equal(backup.stdout, '');
  assert.ok(!fs.readFileSync(file).toString('latin1').includes('v2'));
  await ok(['keyvault', 'secret', 'delete', ...secretArgs('kept'), '-o', 'none']);
  await ok(['keyvault', 'secret', 'purge', ...secretArgs('kept')]);
  const restored = await json(['keyvault', 'secret', 'restore', '--vault-name', VAULT, '--file', file]);
  assert.equal(restored.name, 'kept');
  assert.equal((await json(['keyvault', 'secret', 'list-versions', ...secretArgs('kept')])).length, 2);
  assert.equal((await ok(['keyvault', 'secret', 'show', ...secretArgs('kept'), '--query', 'value', '-o', 'tsv'])).stdout, 'v2\n');
  await fails(['keyvault', 'secret', 'restore', '--vault-name', VAULT, '--file', path.join(scratch, 'missing')], 1, /Cannot read/);
});

test('errors: az-shaped, az exit codes, never echoing secret values', async () => {
  const badName = await fails(['keyvault', 'secret', 'set', '--vault-name', VAULT, '--name', 'bad_name!', '--value', 'TOP-SECRET-1'], 1, /^ERROR: \(BadParameter\)/);
  assert.ok(!badName.stderr.includes('TOP-SECRET-1'));
  const noVault = await fails(['keyvault', 'secret', 'set', '--vault-name', 'no-such-vault', '--name', 'x', '--value', 'TOP-SECRET-2'], 3, /^ERROR: \(/);
  assert.ok(!noVault.stderr.includes('TOP-SECRET-2'));
  // An RBAC vault gives its creator no data-plane access until a role is assigned, as in Azure.
  const rbac = await json(['keyvault', 'create', '--name', 'cli-rbac-vault', '--enable-rbac-authorization', 'true']);
  assert.equal(rbac.properties.enableRbacAuthorization, true);
  const denied = await fails(['keyvault', 'secret', 'set', '--vault-name', 'cli-rbac-vault', '--name', 'x', '--value', 'TOP-SECRET-3'], 1, /^ERROR: \(Forbidden\)/);
  assert.ok(!denied.stderr.includes('TOP-SECRET-3'));
  await fails(['keyvault', 'secret', 'show', '--vault-name', VAULT], 2, /usage error/);
  await fails(['keyvault', 'secret', 'show', '--id', 'https://x.vault.localhost/keys/k'], 2, /usage error/);
  await fails(['keyvault', 'secret', 'show', ...secretArgs('x'), '--query', '[[['], 2, /--query/);
  await fails(['keyvault', 'secret', 'show', ...secretArgs('x'), '-o', 'xml'], 2, /ERROR: .*xml/);
  await fails(['keyvault', 'secret', 'nonsense'], 2, /ERROR: /);
  const missingDir = await fails(['keyvault', 'list'], 1, /No Coffer credentials found/, { COFFER_DATA_DIR: path.join(scratch, 'nowhere') });
  assert.ok(!missingDir.stderr.includes(server.admin.clientSecret));
  // --debug traces requests on stderr, without tokens, client secrets or values.
  const traced = await ok(['keyvault', 'secret', 'show', ...secretArgs('db-password'), '--debug']);
  assert.match(traced.stderr, /^DEBUG: POST https:\/\/localhost:\d+\/[0-9a-f-]+\/oauth2\/v2.0\/token -> 200/m);
  assert.match(traced.stderr, new RegExp(`^DEBUG: GET ${server.vaultUrl(VAULT)}/secrets/db-password/\\?api-version=7.4 -> 200 \\(x-ms-request-id: [0-9a-f-]+\\)$`, 'm'));
  for (const s of ['p@ss w0rd', server.admin.clientSecret, 'Bearer', 'eyJ']) assert.ok(!traced.stderr.includes(s), `--debug leaked ${s === 'p@ss w0rd' ? 'the value' : 'a credential'}`);
  // The bootstrap credentials' secret is never printed.
  const account = await ok(['account', 'show']);
  assert.ok(!account.stdout.includes(server.admin.clientSecret));
});

test('an option never takes another option as its value unless attached (argparse\'s rule), for every command', async () => {
  // Before: `--storage` took `--help` as its value and the server opened a SQLite file named `--help` (an unusable
  // --host makes a regression fail fast instead of leaving a server running).
  const dataDir = path.join(scratch, 'dashed-value');
  await fails(['server', 'start', '--host', '256.256.256.256', '--port', '0', '--data-dir', dataDir, '--storage', '--help'], 2, /^ERROR: argument --storage: expected one argument/);
  assert.ok(!fs.existsSync(path.join(scratch, '--help')));
  assert.ok(!fs.existsSync(dataDir));
  await fails(['server', 'start', '--host', '256.256.256.256', '--data-dir', dataDir, '--port', '--help'], 2, /^ERROR: argument --port: expected one argument/);
  assert.ok(!fs.existsSync(dataDir));
  await fails(['keyvault', 'secret', 'set', '--vault-name', VAULT, '--name', 'dashed', '--value', '--not-a-value'], 2, /^ERROR: argument --value: expected one argument/);
  await fails(['keyvault', 'secret', 'show', ...secretArgs('dashed'), '-o', '--query'], 2, /^ERROR: argument --output: expected one argument/);
  await fails(['keyvault', 'secret', 'show', ...secretArgs('dashed')], 3, /SecretNotFound/);
  // Attached, a value may start with dashes.
  assert.equal((await json(['keyvault', 'secret', 'set', ...secretArgs('dashed'), '--value=--not-an-option'])).value, '--not-an-option');
});

test('debug clock advance: soft-deleted secrets are purged after the retention', async () => {
  await ok(['keyvault', 'secret', 'set', ...secretArgs('expiring'), '--value', 'x', '-o', 'none']);
  await ok(['keyvault', 'secret', 'delete', ...secretArgs('expiring'), '-o', 'none']);
  const advanced = await json(['debug', 'clock', 'advance', '8d']);
  assert.ok(Date.parse(advanced.now) > Date.now() + 7 * 86_400_000);
  await fails(['keyvault', 'secret', 'show-deleted', ...secretArgs('expiring')], 3, /SecretNotFound/);
  await fails(['debug', 'clock', 'advance', 'soon'], 1, /^ERROR: \(BadParameter\)/);
});

test('coffer login --service-principal, account show, logout (a remote-style profile)', async () => {
  const configDir = path.join(scratch, 'login-profile');
  const env = { COFFER_DATA_DIR: undefined, COFFER_CONFIG_DIR: configDir };
  const { admin } = server;
  const caCert = path.join(server.dataDir, 'tls', 'ca.crt');
  const login = (secret: string) => ['login', '--service-principal', '-u', admin.clientId, '-p', secret, '--tenant', admin.tenantId,
    '--endpoint', admin.managementEndpoint, '--ca-cert', caCert, '--subscription', admin.subscriptionId];

  const wrong = await fails(login('not-the-secret-XYZ'), 1, /^ERROR: \(invalid_client\) AADSTS7000215/, env);
  assert.ok(!wrong.stderr.includes('not-the-secret-XYZ'));
  assert.ok(!fs.existsSync(path.join(configDir, 'profile.json')));
  await fails(['account', 'show'], 1, /No Coffer credentials found/, env);

  const loggedIn = await json(login(admin.clientSecret), env);
  assert.deepEqual(loggedIn, [{
    cloudName: 'Coffer', homeTenantId: admin.tenantId, id: admin.subscriptionId, isDefault: true, managedByTenants: [],
    name: 'Coffer', state: 'Enabled', tenantId: admin.tenantId, user: { name: admin.clientId, type: 'servicePrincipal' },
  }]);
  assert.ok(!JSON.stringify(loggedIn).includes(admin.clientSecret));
  assert.equal(fs.statSync(path.join(configDir, 'profile.json')).mode & 0o777, 0o600);

  assert.deepEqual(await json(['account', 'list'], env), loggedIn);
  const account = await json(['account', 'show'], env);
  assert.equal(account.environmentName, 'Coffer');
  assert.equal(account.id, admin.subscriptionId);
  assert.deepEqual(account.user, { name: admin.clientId, type: 'servicePrincipal' });
  assert.equal((await ok(['keyvault', 'secret', 'show', ...secretArgs('db-password'), '--query', 'value', '-o', 'tsv'], env)).stdout, 'p@ss w0rd\n');
  assert.ok((await json(['keyvault', 'list', '--query', '[].name'], env)).includes(VAULT));

  assert.equal((await ok(['logout'], env)).stdout, '');
  await fails(['logout'], 1, /There are no active accounts/, env);
  await fails(['keyvault', 'secret', 'list', '--vault-name', VAULT], 1, /No Coffer credentials found/, env);
});
