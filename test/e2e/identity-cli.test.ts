import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestServer } from '../support/server.js';
import { startTestServerWithSecret, type TestServerWithSecret } from './identity-support.js';
import { cliRunner } from '../support/cli.js';

/** `coffer ad|identity|account get-access-token|run` end to end: the built CLI against a real Coffer. */
let server: TestServer;
const repo = process.cwd();
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-id-cli-'));
const VAULT = 'runvault';

// cwd is the repository, so a `coffer run` child can import the installed SDKs.
const { run, coffer, ok, json, fails } = cliRunner(repo, () => ({ COFFER_CONFIG_DIR: path.join(scratch, 'no-login'), COFFER_DATA_DIR: server.dataDir }));
/** What a `coffer run` child needs to trust the test server, as an app on a developer's machine would. */
const trustTestCa = { NODE_EXTRA_CA_CERTS: process.env.NODE_EXTRA_CA_CERTS };

let grantSecretsUser: TestServerWithSecret['grantSecretsUser'];

before(async () => {
  ({ server, grantSecretsUser } = await startTestServerWithSecret(VAULT));
});
after(async () => {
  await server?.close();
  fs.rmSync(scratch, { recursive: true, force: true });
});

const vaultScope = () => `/subscriptions/${server.admin.subscriptionId}/resourceGroups/rg-test/providers/Microsoft.KeyVault/vaults/${VAULT}`;

test('ad sp create-for-rbac prints az\'s fields and the new principal can read with its role', async () => {
  const sp = await json(['ad', 'sp', 'create-for-rbac', '--name', 'ci-app', '--role', 'Key Vault Secrets User', '--scopes', vaultScope()]);
  assert.deepEqual(Object.keys(sp).sort(), ['appId', 'displayName', 'password', 'tenant']);
  assert.equal(sp.tenant, server.admin.tenantId);
  const { ClientSecretCredential } = await import('@azure/identity');
  const { SecretClient } = await import('@azure/keyvault-secrets');
  const credential = new ClientSecretCredential(sp.tenant, sp.appId, sp.password, { authorityHost: server.admin.authorityHost, disableInstanceDiscovery: true });
  assert.equal((await new SecretClient(server.vaultUrl(VAULT), credential).getSecret('app-secret')).value, 's3cr3t-value');

  const reset = await json(['ad', 'app', 'credential', 'reset', '--id', sp.appId]);
  assert.deepEqual(Object.keys(reset).sort(), ['appId', 'password', 'tenant']);
  assert.notEqual(reset.password, sp.password);
  // The old password is gone: a fresh credential with it is refused.
  const stale = new ClientSecretCredential(sp.tenant, sp.appId, sp.password, { authorityHost: server.admin.authorityHost, disableInstanceDiscovery: true });
  await assert.rejects(stale.getToken(`${server.admin.managementEndpoint}/.default`), /Invalid client secret/);
  assert.ok((await json<any[]>(['ad', 'sp', 'list'])).some((p) => p.appId === sp.appId));
  assert.equal((await json(['ad', 'sp', 'show', '--id', sp.appId])).displayName, 'ci-app');
  await ok(['ad', 'sp', 'delete', '--id', sp.appId]);
  await fails(['ad', 'sp', 'show', '--id', sp.appId], 3, /Request_ResourceNotFound/);
});

test('ad user, group (nested) member add|list|check|remove, signed-in-user, account get-access-token', async () => {
  const user = await json(['ad', 'user', 'create', '--display-name', 'Carol', '--user-principal-name', 'carol@coffer.test', '--password', 'Carol-password-1']);
  assert.equal(user.userPrincipalName, 'carol@coffer.test');
  assert.equal((await json(['ad', 'user', 'show', '--id', 'carol@coffer.test'])).id, user.id);
  await json(['ad', 'group', 'create', '--display-name', 'Outer', '--mail-nickname', 'outer']);
  const inner = await json(['ad', 'group', 'create', '--display-name', 'Inner', '--mail-nickname', 'inner']);
  await ok(['ad', 'group', 'member', 'add', '--group', 'Outer', '--member-id', inner.id]);
  await ok(['ad', 'group', 'member', 'add', '--group', inner.id, '--member-id', user.id]);
  assert.deepEqual((await json<any[]>(['ad', 'group', 'member', 'list', '--group', 'Inner'])).map((m) => m.id), [user.id]);
  assert.deepEqual(await json(['ad', 'group', 'member', 'check', '--group', 'Outer', '--member-id', user.id]), { value: true });
  await ok(['ad', 'group', 'member', 'remove', '--group', 'Inner', '--member-id', user.id]);
  assert.deepEqual(await json(['ad', 'group', 'member', 'check', '--group', 'Outer', '--member-id', user.id]), { value: false });
  await ok(['ad', 'user', 'delete', '--id', user.id]);
  assert.equal((await json<any[]>(['ad', 'user', 'list'])).some((u) => u.id === user.id), false);

  assert.equal((await json(['ad', 'signed-in-user', 'show'])).appId, server.admin.clientId);
  const token = await json(['account', 'get-access-token', '--resource', server.coffer.endpoints.dataPlaneResource]);
  assert.deepEqual(Object.keys(token).sort(), ['accessToken', 'expiresOn', 'expires_on', 'subscription', 'tenant', 'tokenType']);
  assert.equal(JSON.parse(Buffer.from(token.accessToken.split('.')[1], 'base64url').toString()).aud, server.coffer.endpoints.dataPlaneResource);
});

test('identity create|show|list|delete and `coffer run --identity` with DefaultAzureCredential and Key Vault references', async () => {
  const created = await json(['identity', 'create', '--name', 'web-app', '--resource-group', 'rg-test']);
  assert.equal(created.resourceGroup, 'rg-test');
  assert.match(created.clientId, /^[0-9a-f-]{36}$/);
  assert.equal((await json(['identity', 'show', '-n', 'web-app', '-g', 'rg-test'])).principalId, created.principalId);
  assert.ok((await json<any[]>(['identity', 'list', '-g', 'rg-test'])).some((i) => i.name === 'web-app'));
  await grantSecretsUser(created.principalId);

  // The app prints only whether it saw the right values, never the values.
  const app = `
    import { DefaultAzureCredential } from '@azure/identity';
    import { SecretClient } from '@azure/keyvault-secrets';
    const client = new SecretClient(process.env.VAULT_URL, new DefaultAzureCredential());
    const viaIdentity = (await client.getSecret('app-secret')).value === 's3cr3t-value';
    const imdsShape = (process.env.AZURE_POD_IDENTITY_AUTHORITY_HOST ?? '').startsWith(process.env.AUTHORITY + '/coffer/imds/');
    console.log(JSON.stringify({ viaIdentity, imdsShape, viaUri: process.env.BY_URI === 's3cr3t-value', viaName: process.env.BY_NAME === 's3cr3t-value' }));
    process.exit(7);`;
  const child = ['node', '--import', './dist/net/register-localhost.js', '--input-type=module', '-e', app];
  const env = {
    VAULT_URL: server.vaultUrl(VAULT),
    BY_URI: `@Microsoft.KeyVault(SecretUri=${server.vaultUrl(VAULT)}/secrets/app-secret/)`,
    BY_NAME: `@Microsoft.KeyVault(VaultName=${VAULT};SecretName=app-secret)`,
  };
  const envFile = path.join(scratch, 'app.env');
  fs.writeFileSync(envFile, `# references may come from a dotenv file\nBY_NAME="${env.BY_NAME}"\n`);
  const asIdentity = await coffer(['run', '--identity', 'web-app', '-g', 'rg-test', '--env-file', envFile, '--', ...child],
    { VAULT_URL: env.VAULT_URL, BY_URI: env.BY_URI, AUTHORITY: server.admin.authorityHost, ...trustTestCa });
  assert.equal(asIdentity.code, 7, asIdentity.stderr);
  assert.deepEqual(JSON.parse(asIdentity.stdout), { viaIdentity: true, imdsShape: true, viaUri: true, viaName: true });
  assert.doesNotMatch(asIdentity.stdout + asIdentity.stderr, /s3cr3t-value/);

  // Without --identity, references are resolved as the signed-in principal and the child gets no identity endpoint.
  const asAdmin = await coffer(['run', '--', 'node', '-e', 'console.log(JSON.stringify([process.env.BY_NAME === "s3cr3t-value", "IDENTITY_HEADER" in process.env]))'],
    { BY_NAME: env.BY_NAME });
  assert.equal(asAdmin.code, 0, asAdmin.stderr);
  // The child reports whether it got a managed-identity header, never the header itself.
  assert.deepEqual(JSON.parse(asAdmin.stdout), [true, false]);

  // An unresolvable reference stops the run before the child starts.
  await fails(['run', '--identity', created.clientId, '--', 'node', '-e', 'console.log("started")'], 1,
    /reference in MISSING could not be resolved: \(SecretNotFound\)/, { MISSING: `@Microsoft.KeyVault(VaultName=${VAULT};SecretName=nope)` });

  await ok(['identity', 'delete', '-n', 'web-app', '-g', 'rg-test']);
  await fails(['identity', 'show', '-n', 'web-app', '-g', 'rg-test'], 3, /ResourceNotFound/);
});

test('run --watch restarts the child when a referenced secret gets a new current version', async () => {
  const client = server.secretClient(VAULT);
  await client.setSecret('rotating', 'first');
  const starts = path.join(scratch, 'starts.log');
  // The child notes each start in a file (so the test knows when to rotate) and ends by itself once it sees the new value.
  const app = `const fs = require('node:fs'); const second = process.env.ROT === 'second';
    fs.appendFileSync(${JSON.stringify(starts)}, second ? 'second\\n' : 'first\\n');
    if (second) process.exit(0); setInterval(() => {}, 1000);`;
  const running = coffer(['run', '--watch', '--watch-interval', '1', '--', 'node', '-e', app], { ROT: `@Microsoft.KeyVault(VaultName=${VAULT};SecretName=rotating)` });
  const deadline = Date.now() + 30_000;
  while (!(fs.existsSync(starts) && fs.readFileSync(starts, 'utf8').includes('first')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  await client.setSecret('rotating', 'second');
  const r = await running;
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(fs.readFileSync(starts, 'utf8').trim().split('\n'), ['first', 'second']);
  assert.match(r.stderr, /secret referenced by ROT has a new version; restarting/);
});

test('run forwards signals to the child and exits with its code', async () => {
  const ready = path.join(scratch, 'ready');
  const app = `process.on('SIGTERM', () => { console.log('child got SIGTERM'); process.exit(42); });
    require('node:fs').writeFileSync(${JSON.stringify(ready)}, ''); setInterval(() => {}, 1000);`;
  const script = `node bin/coffer.js run -- node -e "$APP" & pid=$!
    for i in $(seq 300); do [ -f "$READY" ] && break; sleep 0.1; done
    kill -TERM $pid; wait $pid; echo "exit=$?"`;
  const r = await run('bash', ['-c', script], { APP: app, READY: ready });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split('\n'), ['child got SIGTERM', 'exit=42']);
});

test('identity create|show|delete --system-assigned-for an app, and `coffer run --identity APP_RESOURCE_ID`', async () => {
  const owner = `/subscriptions/${server.admin.subscriptionId}/resourceGroups/rg-test/providers/Microsoft.Web/sites/cli-app`;
  const created = await json(['identity', 'create', '--system-assigned-for', owner]);
  assert.equal(created.id, `${owner}/providers/Microsoft.ManagedIdentity/identities/default`);
  assert.equal((await json(['identity', 'show', '--system-assigned-for', owner])).principalId, created.principalId);
  await fails(['identity', 'create', '--system-assigned-for', 'not-a-resource-id'], 2, /takes a resource id/);
  await fails(['identity', 'show'], 2, /--name and --resource-group/);
  await grantSecretsUser(created.principalId);
  const app = `
    import { DefaultAzureCredential } from '@azure/identity';
    import { SecretClient } from '@azure/keyvault-secrets';
    const credential = new DefaultAzureCredential();
    const ok = (await new SecretClient(process.env.VAULT_URL, credential).getSecret('app-secret')).value === 's3cr3t-value';
    const token = (await credential.getToken(process.env.VAULT_URL.replace(/^https:\\/\\/[^.]+\\./, 'https://') + '/.default')).token;
    console.log(JSON.stringify({ ok, mirid: JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).xms_mirid }));`;
  const r = await coffer(['run', '--identity', owner, '--', 'node', '--import', './dist/net/register-localhost.js', '--input-type=module', '-e', app],
    { VAULT_URL: server.vaultUrl(VAULT), ...trustTestCa });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { ok: true, mirid: owner.toLowerCase() });
  await ok(['identity', 'delete', '--system-assigned-for', owner]);
  await fails(['identity', 'show', '--system-assigned-for', owner], 3, /has no system-assigned identity/);
});
