import 'reflect-metadata';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto, { webcrypto } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as x509 from '@peculiar/x509';
import { startTestServer, type TestServer } from '../support/server.js';
import { cliRunner } from '../support/cli.js';
import { ROLE_IDS } from '../../src/gates/authorization/builtin-roles.js';

/** `coffer login --service-principal --certificate` and `coffer ad trusted-issuer`, the built CLI against a real Coffer. */
x509.cryptoProvider.set(webcrypto as unknown as Crypto);
let server: TestServer;
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-id-login-'));
const VAULT = 'certvault';
const { coffer, ok, json, fails } = cliRunner(process.cwd(), () => ({ COFFER_CONFIG_DIR: path.join(scratch, 'no-login'), COFFER_DATA_DIR: server.dataDir }));

async function adminCall(method: string, urlPath: string, body?: unknown) {
  const token = (await server.adminCredential.getToken(`${server.admin.managementEndpoint}/.default`))!.token;
  const res = await fetch(`${server.admin.managementEndpoint}${urlPath}`, {
    method, headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** A self-signed RSA certificate and its key, as one PEM file (what az's --certificate takes). */
async function certificatePem(file: string) {
  const alg = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 };
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01', name: 'CN=cli-cert-app', notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 86_400_000), keys, signingAlgorithm: alg,
  });
  const keyPem = x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY');
  fs.writeFileSync(file, `${keyPem}\n${cert.toString('pem')}\n`, { mode: 0o600 });
  return Buffer.from(cert.rawData).toString('base64');
}

before(async () => {
  server = await startTestServer();
  await server.createVault(VAULT, { enableRbacAuthorization: true });
  await server.secretClient(VAULT).setSecret('app-secret', 's3cr3t-value');
});
after(async () => {
  await server?.close();
  fs.rmSync(scratch, { recursive: true, force: true });
});

test('login --service-principal --certificate: an assertion signed by the certificate key (x5t) signs the CLI in; a foreign certificate does not', async () => {
  const app = (await adminCall('POST', '/v1.0/applications', { displayName: 'cli-cert-app' })).body;
  const pem = path.join(scratch, 'app.pem');
  const foreignPem = path.join(scratch, 'foreign.pem');
  const certificate = await certificatePem(pem);
  await certificatePem(foreignPem);
  assert.equal((await adminCall('PATCH', `/v1.0/applications/${app.id}`, { keyCredentials: [{ type: 'AsymmetricX509Cert', usage: 'Verify', key: certificate }] })).status, 204);
  const scope = `/subscriptions/${server.admin.subscriptionId}/resourceGroups/rg-test/providers/Microsoft.KeyVault/vaults/${VAULT}`;
  await adminCall('PUT', `${scope}/providers/Microsoft.Authorization/roleAssignments/${crypto.randomUUID()}?api-version=2022-04-01`, {
    properties: { roleDefinitionId: `/subscriptions/${server.admin.subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/${ROLE_IDS.keyVaultSecretsUser}`, principalId: app.id },
  });

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
