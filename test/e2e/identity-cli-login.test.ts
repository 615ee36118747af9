import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestServer } from '../support/server.js';
import { cliRunner } from '../support/cli.js';
import { selfSignedCertificate, startTestServerWithSecret, type TestServerWithSecret } from './identity-support.js';

/** `coffer login --service-principal --certificate` and `coffer ad trusted-issuer`, the built CLI against a real Coffer. */
let server: TestServer;
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-id-login-'));
const VAULT = 'certvault';
const { ok, json, fails } = cliRunner(process.cwd(), () => ({ COFFER_CONFIG_DIR: path.join(scratch, 'no-login'), COFFER_DATA_DIR: server.dataDir }));

let mgmt: TestServerWithSecret['mgmt'];
let grantSecretsUser: TestServerWithSecret['grantSecretsUser'];

before(async () => {
  ({ server, mgmt, grantSecretsUser } = await startTestServerWithSecret(VAULT));
});
after(async () => {
  await server?.close();
  fs.rmSync(scratch, { recursive: true, force: true });
});

test('login --service-principal --certificate: an assertion signed by the certificate key (x5t) signs the CLI in; a foreign certificate does not', async () => {
  const app = (await mgmt('POST', '/v1.0/applications', { displayName: 'cli-cert-app' })).body;
  const pem = path.join(scratch, 'app.pem');
  const foreignPem = path.join(scratch, 'foreign.pem');
  const certificate = await selfSignedCertificate('cli-cert-app');
  fs.writeFileSync(pem, certificate.pem, { mode: 0o600 });
  fs.writeFileSync(foreignPem, (await selfSignedCertificate('cli-cert-app')).pem, { mode: 0o600 });
  assert.equal((await mgmt('PATCH', `/v1.0/applications/${app.id}`, { keyCredentials: [{ type: 'AsymmetricX509Cert', usage: 'Verify', key: certificate.derBase64 }] })).status, 204);
  await grantSecretsUser(app.id);

  const configDir = path.join(scratch, 'cert-login');
  const env = { COFFER_DATA_DIR: undefined, COFFER_CONFIG_DIR: configDir };
  const login = (file: string) => ['login', '--service-principal', '-u', app.appId, '--certificate', file, '--tenant', server.admin.tenantId,
    '--endpoint', server.admin.managementEndpoint, '--ca-cert', path.join(server.dataDir, 'tls', 'ca.crt'), '--subscription', server.admin.subscriptionId];

  await fails(login(foreignPem), 1, /AADSTS700027/, env);
  assert.ok(!fs.existsSync(path.join(configDir, 'profile.json')));
  await fails(login(path.join(scratch, 'missing.pem')), 2, /Cannot read the certificate file/, env);
  fs.writeFileSync(path.join(scratch, 'cert-only.pem'), fs.readFileSync(pem, 'utf8').replace(/-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----/, ''));
  await fails(login(path.join(scratch, 'cert-only.pem')), 2, /private key and its PEM certificate/, env);
  await fails([...login(pem), '-p', 'also-a-secret'], 2, /instead of -p/, env);

  const loggedIn = await json(login(pem), env);
  assert.deepEqual(loggedIn[0].user, { name: app.appId, type: 'servicePrincipal' });
  // The profile names the PEM file; the key itself is never copied into it.
  const profile = fs.readFileSync(path.join(configDir, 'profile.json'), 'utf8');
  assert.equal(JSON.parse(profile).clientCertificatePath, pem);
  assert.doesNotMatch(profile, /PRIVATE KEY|clientSecret/);
  assert.equal((await ok(['keyvault', 'secret', 'show', '--vault-name', VAULT, '--name', 'app-secret', '--query', 'value', '-o', 'tsv'], env)).stdout, 's3cr3t-value\n');
  assert.equal((await json(['ad', 'signed-in-user', 'show'], env)).appId, app.appId);
  await ok(['logout'], env);
});

test('ad trusted-issuer add|list|show|subject add|remove|delete', async () => {
  const issuer = 'https://login.example.test/fabrikam/v2.0';
  const added = await json(['ad', 'trusted-issuer', 'add', '--issuer', issuer, '--jwks-uri', 'https://login.example.test/fabrikam/keys', '--audience', 'api://coffer']);
  assert.deepEqual([added.issuer, added.audience], [issuer, 'api://coffer']);
  assert.deepEqual((await json<any[]>(['ad', 'trusted-issuer', 'list'])).map((i) => i.id), [added.id]);
  await fails(['ad', 'trusted-issuer', 'add', '--issuer', issuer, '--jwks-uri', 'https://login.example.test/fabrikam/keys', '--audience', 'api://coffer'], 1, /already trusted/);
  await fails(['ad', 'trusted-issuer', 'add', '--issuer', 'https://x.example.test', '--jwks-uri', 'http://x.example.test/keys', '--audience', 'a'], 1, /https URL/);

  const sp = await json(['ad', 'sp', 'create-for-rbac', '--name', 'external-ci']);
  const spObject = await json(['ad', 'sp', 'show', '--id', sp.appId]);
  assert.deepEqual(await json(['ad', 'trusted-issuer', 'subject', 'add', '--issuer', issuer, '--external-id', 'ext-1', '--principal-id', spObject.id]),
    { externalId: 'ext-1', principalId: spObject.id });
  assert.deepEqual((await json(['ad', 'trusted-issuer', 'show', '--issuer', added.id])).subjects, [{ externalId: 'ext-1', principalId: spObject.id }]);
  await ok(['ad', 'trusted-issuer', 'subject', 'remove', '--issuer', issuer, '--external-id', 'ext-1']);
  await fails(['ad', 'trusted-issuer', 'subject', 'remove', '--issuer', issuer, '--external-id', 'ext-1'], 3, /not mapped/);
  await ok(['ad', 'trusted-issuer', 'delete', '--issuer', issuer]);
  await fails(['ad', 'trusted-issuer', 'show', '--issuer', issuer], 3, /is not trusted/);
});
