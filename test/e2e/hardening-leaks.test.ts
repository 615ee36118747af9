import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import Database from 'better-sqlite3';
import pg from 'pg';
import { SignJWT, exportJWK } from 'jose';
import { ClientSecretCredential } from '@azure/identity';
import { createVaultAsAdmin, seedTestCa } from '../support/server.js';
import { freshDatabase } from '../support/postgres.js';
import { rawRequest, type RawResponse } from '../support/raw-http.js';
import { startWebhook, waitFor, type Webhook } from '../support/webhook.js';
import type { BootstrapAdminFile } from '../../src/bootstrap.js';

/**
 * Secrets never leak: a Coffer of its own (`coffer server start --log-level debug`, so every log line is read) is
 * driven through each flow that carries a secret — secret values, client secrets and passwords (right, wrong and
 * locked out), access and refresh tokens, managed-identity bindings, key release, password-protected PFX imports,
 * issuer passwords, webhook and event-hub URLs whose query strings hold keys — then every place a secret must not
 * reach is searched: the process's output, every audit record (the table and the workspace query API), every file of
 * the data directory (the raw database bytes included: values are envelope-encrypted), every table's rows, and every
 * error body.
 */
const RUN = crypto.randomBytes(6).toString('hex');
const marker = (what: string) => `leak${what}${RUN}`;
const SECRET_VALUE = marker('secretvalue');
const USER_PASSWORD = marker('Password-1');
const WRONG_PASSWORD = marker('wrongpassword');
const WRONG_CLIENT_SECRET = marker('wrongclientsecret');
const PFX_PASSWORD = marker('pfxpassword');
const ISSUER_PASSWORD = marker('issuerpassword');
const HOOK_KEY = marker('hookkey');
const HUB_KEY = marker('hubkey');
const QUERY_KEY = marker('querykey');

let dataDir: string;
let storageUrl: string | undefined;
let child: ChildProcess | undefined;
let logs = '';
let port: number;
let admin: BootstrapAdminFile;
let hook: Webhook;
let attestation: http.Server;
let authority: string;
const authorityKey = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const teeKey = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
/** Secrets learnt while the flows run (tokens, client secrets, bindings): they join the markers above. */
const learnt: Record<string, string> = {};
/** Every error body the server sent. */
const errorBodies: { what: string; text: string }[] = [];

before(async () => {
  attestation = http.createServer(async (req, res) => {
    const body = req.url === '/.well-known/openid-configuration' ? { issuer: authority, jwks_uri: `${authority}/certs` }
      : req.url === '/certs' ? { keys: [{ ...(await exportJWK(authorityKey.publicKey)), kid: 'attest-1', alg: 'RS256' }] } : undefined;
    res.writeHead(body ? 200 : 404, { 'content-type': 'application/json' }).end(JSON.stringify(body ?? {}));
  });
  await new Promise<void>((resolve) => attestation.listen(0, '127.0.0.1', resolve));
  authority = `http://127.0.0.1:${(attestation.address() as AddressInfo).port}`;

  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-leaks-'));
  seedTestCa(dataDir);
  storageUrl = process.env.COFFER_TEST_STORAGE_URL ? await freshDatabase(process.env.COFFER_TEST_STORAGE_URL) : undefined;
  child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'server', 'start', '--port', '0', '--data-dir', dataDir,
    '--log-level', 'debug', '--throttle', 'off', '--attestation-authority', authority, ...(storageUrl ? ['--storage', storageUrl] : [])]);
  port = await new Promise<number>((resolve, reject) => {
    child!.stdout!.on('data', (d) => {
      logs += d;
      const ready = /Coffer is ready .* on https:\/\/127\.0\.0\.1:(\d+)/.exec(logs);
      if (ready) resolve(Number(ready[1]));
    });
    child!.stderr!.on('data', (d) => { logs += d; });
    child!.on('exit', (code) => reject(new Error(`coffer exited with ${code}: ${logs.slice(-2000)}`)));
  });
  admin = JSON.parse(fs.readFileSync(path.join(dataDir, 'bootstrap-admin.json'), 'utf8'));
  const tlsFile = (name: string) => fs.readFileSync(path.join(dataDir, 'tls', name), 'utf8');
  hook = await startWebhook({ tls: { cert: tlsFile('server.crt'), key: tlsFile('server.key') } });
});
after(async () => {
  if (child && child.exitCode === null) {
    child.kill('SIGTERM');
    await new Promise((resolve) => child!.once('exit', resolve));
  }
  await hook?.close();
  attestation?.close();
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

/** One request; an error body is kept for the search. */
async function call(what: string, url: string, opts: Parameters<typeof rawRequest>[1] = {}): Promise<RawResponse> {
  const res = await rawRequest(url, opts);
  if (res.status >= 400) errorBodies.push({ what, text: res.text });
  return res;
}

async function tokenRequest(what: string, fields: Record<string, string>) {
  return call(what, `${admin.authorityHost}/${admin.tenantId}/oauth2/v2.0/token`, {
    method: 'POST', body: new URLSearchParams(fields).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
}

const filesUnder = (dir: string): string[] => fs.readdirSync(dir, { withFileTypes: true })
  .flatMap((e) => (e.isDirectory() ? filesUnder(path.join(dir, e.name)) : [path.join(dir, e.name)]));

/** A secret in the encodings a logger or a store could write it in. */
const encodings = (secret: string) => [...new Set([secret, Buffer.from(secret).toString('base64'), Buffer.from(secret).toString('base64url'), encodeURIComponent(secret)])];

function assertAbsent(haystack: Buffer | string, secrets: Record<string, string>, where: string) {
  const hay = Buffer.isBuffer(haystack) ? haystack : Buffer.from(haystack);
  for (const [name, secret] of Object.entries(secrets)) {
    for (const needle of encodings(secret)) assert.equal(hay.includes(Buffer.from(needle)), false, `${name} found in ${where}`);
  }
}

/** Every row of every table, as text (SQLite through its own reader; PostgreSQL through row_to_json). */
async function everyRow(): Promise<{ table: string; text: string }[]> {
  if (!storageUrl) {
    const db = new Database(path.join(dataDir, 'coffer.db'), { readonly: true });
    try {
      const tables = db.prepare(`select name from sqlite_master where type = 'table'`).all() as { name: string }[];
      return tables.map(({ name }) => ({
        table: name,
        text: (db.prepare(`select * from "${name}"`).all() as Record<string, unknown>[])
          .map((row) => Object.values(row).map((v) => (Buffer.isBuffer(v) ? v.toString('latin1') : String(v))).join('\u0000')).join('\n'),
      }));
    } finally {
      db.close();
    }
  }
  const client = new pg.Client({ connectionString: storageUrl });
  await client.connect();
  try {
    const tables = (await client.query(`select tablename from pg_tables where schemaname = current_schema()`)).rows.map((r) => r.tablename as string);
    const out = [];
    for (const table of tables) {
      const rows = (await client.query(`select * from "${table}"`)).rows as Record<string, unknown>[];
      out.push({ table, text: rows.map((row) => Object.values(row).map((v) => (Buffer.isBuffer(v) ? v.toString('latin1') : typeof v === 'object' ? JSON.stringify(v) : String(v))).join('\u0000')).join('\n') });
    }
    return out;
  } finally {
    await client.end();
  }
}

test('no secret value, password, token, binding, private key or URL key reaches logs, audit, files, rows or errors', async () => {
  const credential = new ClientSecretCredential(admin.tenantId, admin.clientId, admin.clientSecret, { authorityHost: admin.authorityHost, disableInstanceDiscovery: true });
  const mgmtToken = (await credential.getToken(`${admin.managementEndpoint}/.default`))!.token;
  learnt.adminClientSecret = admin.clientSecret;
  learnt.managementToken = mgmtToken;
  const arm = (what: string, method: string, p: string, body?: unknown, apiVersion?: string, token = mgmtToken) =>
    call(what, `${admin.managementEndpoint}${p}${apiVersion ? `${p.includes('?') ? '&' : '?'}api-version=${apiVersion}` : ''}`, { method, token, body });
  const rg = `/subscriptions/${admin.subscriptionId}/resourceGroups/rg-test`;

  await createVaultAsAdmin(admin, credential, 'leakvault');
  const vaultUrl = `https://leakvault.vault.localhost:${port}`;
  const vaultId = `${rg}/providers/Microsoft.KeyVault/vaults/leakvault`;
  // Audit records also flow to every kind of destination: a workspace (searched through its query API), a storage
  // account (files under the data dir) and an event hub (the webhook's received bodies).
  const ws = await arm('workspace', 'PUT', `${rg}/providers/Microsoft.OperationalInsights/workspaces/leak-ws`, { location: 'local' }, '2022-10-01');
  assert.equal(ws.status, 201, ws.text);
  assert.equal((await arm('storage', 'PUT', `${rg}/providers/Microsoft.Storage/storageAccounts/leakfiles`, { location: 'local' }, '2023-01-01')).status, 201);
  assert.equal((await arm('hub', 'PUT', `${rg}/providers/Microsoft.EventHub/namespaces/leak-hub`, { location: 'local', properties: { serviceBusEndpoint: `${hook.base}/hub` } }, '2021-11-01')).status, 201);
  const setting = await arm('setting', 'PUT', `${vaultId}/providers/Microsoft.Insights/diagnosticSettings/everywhere`, {
    properties: {
      workspaceId: ws.json.id, storageAccountId: `${rg}/providers/Microsoft.Storage/storageAccounts/leakfiles`,
      eventHubAuthorizationRuleId: `${rg}/providers/Microsoft.EventHub/namespaces/leak-hub/authorizationRules/RootManageSharedAccessKey`, eventHubName: 'audit',
      logs: [{ categoryGroup: 'allLogs', enabled: true }],
    },
  }, '2021-05-01-preview');
  assert.equal(setting.status, 200, setting.text);

  const dataToken = (await credential.getToken('https://vault.localhost/.default'))!.token;
  learnt.dataToken = dataToken;
  const vault = (what: string, method: string, p: string, body?: unknown, token = dataToken) =>
    call(what, `${vaultUrl}${p}${p.includes('?') ? '&' : '?'}api-version=7.5`, { method, token, body });

  // Secrets: set, get, and a failed write whose value must not be echoed in the error.
  assert.equal((await vault('secret set', 'PUT', '/secrets/leak', { value: SECRET_VALUE })).status, 200);
  assert.equal((await vault('secret get', 'GET', '/secrets/leak')).json.value, SECRET_VALUE);
  assert.equal((await vault('secret set, bad tags', 'PUT', '/secrets/leak', { value: SECRET_VALUE, tags: { a: 5 } })).status, 400);
  assert.equal((await vault('secret set, bad name', 'PUT', '/secrets/bad_name', { value: SECRET_VALUE })).status, 400);
  assert.equal((await vault('secret set, bad type', 'PUT', '/secrets/leak', { value: SECRET_VALUE, contentType: 5 })).status, 400);

  // Client secrets: a principal's own secret, right and wrong.
  const sp = await arm('sp', 'POST', '/coffer/admin/service-principals', { displayName: 'leak-sp' });
  assert.equal(sp.status, 201, sp.text);
  learnt.principalClientSecret = sp.json.clientSecret;
  const spToken = await tokenRequest('sp grant', { grant_type: 'client_credentials', client_id: sp.json.appId, client_secret: sp.json.clientSecret, scope: `${admin.managementEndpoint}/.default` });
  assert.equal(spToken.status, 200, spToken.text);
  learnt.principalToken = spToken.json.access_token;
  assert.equal((await tokenRequest('sp wrong secret', { grant_type: 'client_credentials', client_id: sp.json.appId, client_secret: WRONG_CLIENT_SECRET, scope: `${admin.managementEndpoint}/.default` })).status, 401);

  // Secrets put where they do not belong, in query strings, are not logged or audited either.
  await call('secret get with a key in the query', `${vaultUrl}/secrets/leak?api-version=7.5&sig=${QUERY_KEY}`, { token: dataToken });
  await call('token request with the secret in the query', `${admin.authorityHost}/${admin.tenantId}/oauth2/v2.0/token?client_secret=${QUERY_KEY}`, {
    method: 'POST', body: new URLSearchParams({ grant_type: 'client_credentials', client_id: sp.json.appId, client_secret: QUERY_KEY, scope: `${admin.managementEndpoint}/.default` }).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
  await call('management call with a key in the query', `${admin.managementEndpoint}${rg}?api-version=2022-09-01&code=${QUERY_KEY}`, { token: mgmtToken });

  // Passwords: a user signs in (with a refresh token), fails, gets locked out, and refreshes.
  assert.equal((await arm('user', 'POST', '/v1.0/users', { displayName: 'Leaky', userPrincipalName: 'leaky@coffer.test', passwordProfile: { password: USER_PASSWORD } })).status, 201);
  const signIn = (password: string) => tokenRequest('password grant', {
    grant_type: 'password', client_id: 'cli', username: 'leaky@coffer.test', password, scope: `${admin.managementEndpoint}/.default offline_access`,
  });
  const signedIn = await signIn(USER_PASSWORD);
  assert.equal(signedIn.status, 200, signedIn.text);
  learnt.userToken = signedIn.json.access_token;
  learnt.refreshToken = signedIn.json.refresh_token;
  assert.ok(learnt.refreshToken, 'a refresh token was issued');
  const refreshed = await tokenRequest('refresh', { grant_type: 'refresh_token', client_id: 'cli', refresh_token: learnt.refreshToken, scope: `${admin.managementEndpoint}/.default offline_access` });
  assert.equal(refreshed.status, 200, refreshed.text);
  learnt.refreshedToken = refreshed.json.access_token;
  learnt.secondRefreshToken = refreshed.json.refresh_token;
  assert.equal((await tokenRequest('bad refresh', { grant_type: 'refresh_token', client_id: 'cli', refresh_token: `${learnt.refreshToken}x` })).status >= 400, true);
  let locked: RawResponse | undefined;
  for (let i = 0; i < 12 && !locked; i++) {
    const res = await signIn(`${WRONG_PASSWORD}${i}`);
    assert.equal(res.status, 400);
    if (res.json.error_codes?.[0] === 50053) locked = res;
  }
  assert.ok(locked, 'the user was locked out');
  assert.equal((await signIn(USER_PASSWORD)).json.error_codes?.[0], 50053, 'locked out even with the right password');

  // Managed identity: a binding, used through IMDS (the binding travels in the path) and the App Service header.
  assert.equal((await arm('identity', 'PUT', `${rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/leak-id`, { location: 'local' }, '2023-01-31')).status, 201);
  const binding = await arm('binding', 'POST', '/coffer/managed-identity/bindings', { identity: `${rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/leak-id` });
  assert.equal(binding.status, 201, binding.text);
  learnt.binding = binding.json.identityHeader;
  const imds = await call('imds', `${binding.json.podIdentityAuthorityHost}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.localhost`, { headers: { metadata: 'true' } });
  assert.equal(imds.status, 200, imds.text);
  learnt.imdsToken = imds.json.access_token;
  const appService = await call('app service', `${binding.json.identityEndpoint}?api-version=2019-08-01&resource=https://vault.localhost`, { headers: { 'x-identity-header': learnt.binding } });
  assert.equal(appService.status, 200, appService.text);
  assert.equal((await call('imds, bad resource', `${binding.json.podIdentityAuthorityHost}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://elsewhere.example`, { headers: { metadata: 'true' } })).status, 400);

  // Key release: an imported key whose private half is known, released under an attestation token.
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  for (const part of ['d', 'p', 'q', 'dp', 'dq', 'qi'] as const) learnt[`releasable key ${part}`] = jwk[part]!;
  const policy = { version: '1.0.0', anyOf: [{ authority, allOf: [{ claim: 'x-ms-attestation-type', equals: 'sevsnpvm' }] }] };
  const imported = await vault('key import', 'PUT', '/keys/releasable', {
    key: { ...jwk, key_ops: ['sign', 'verify', 'encrypt', 'decrypt', 'wrapKey', 'unwrapKey'] }, attributes: { exportable: true },
    release_policy: { contentType: 'application/json; charset=utf-8', data: Buffer.from(JSON.stringify(policy)).toString('base64url') },
  });
  assert.equal(imported.status, 200, imported.text);
  const teeJwk = await exportJWK(teeKey.publicKey);
  const target = await new SignJWT({
    'x-ms-attestation-type': 'sevsnpvm',
    'x-ms-runtime': { keys: [{ kid: 'TpmEphemeralEncryptionKey', key_ops: ['encrypt'], kty: 'RSA', n: teeJwk.n, e: teeJwk.e }] },
  }).setProtectedHeader({ alg: 'RS256', kid: 'attest-1' }).setIssuer(authority).setIssuedAt().setExpirationTime('10m').sign(authorityKey.privateKey);
  learnt.attestationToken = target;
  const released = await vault('release', 'POST', '/keys/releasable/release', { target });
  assert.equal(released.status, 200, released.text);
  learnt.releasedKey = released.json.value;
  assert.equal((await vault('release, wrong authority', 'POST', '/keys/releasable/release', { target: `${target}x` })).status >= 400, true);

  // Certificates: a password-protected PFX import (right and wrong password), an issuer with a password.
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-leaks-pfx-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(work, 'k.pem'), '-out', path.join(work, 'c.pem'), '-subj', '/CN=leak', '-days', '30'], { stdio: 'ignore' });
    execFileSync('openssl', ['pkcs12', '-export', '-inkey', path.join(work, 'k.pem'), '-in', path.join(work, 'c.pem'), '-out', path.join(work, 'c.pfx'), '-passout', `pass:${PFX_PASSWORD}`], { stdio: 'ignore' });
    const pfx = fs.readFileSync(path.join(work, 'c.pfx')).toString('base64');
    const keyPem = fs.readFileSync(path.join(work, 'k.pem'), 'utf8');
    const der = crypto.createPrivateKey(keyPem).export({ format: 'jwk' });
    learnt['certificate key d'] = der.d!;
    assert.equal((await vault('pfx wrong password', 'POST', '/certificates/imported/import', { value: pfx, pwd: `${PFX_PASSWORD}nope` })).status, 400);
    const certImported = await vault('pfx import', 'POST', '/certificates/imported/import', { value: pfx, pwd: PFX_PASSWORD });
    assert.equal(certImported.status, 200, certImported.text);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  const issuer = await vault('issuer', 'PUT', '/certificates/issuers/leak-issuer', { provider: 'Test', credentials: { account_id: 'acct', pwd: ISSUER_PASSWORD } });
  assert.equal(issuer.status, 200, issuer.text);
  assert.ok(!issuer.text.includes(ISSUER_PASSWORD), 'the issuer password is not returned');
  assert.ok(!(await vault('issuer get', 'GET', '/certificates/issuers/leak-issuer')).text.includes(ISSUER_PASSWORD));
  assert.equal((await vault('issuer bad', 'PUT', '/certificates/issuers/leak-issuer', { provider: 'Test', credentials: { account_id: 5, pwd: ISSUER_PASSWORD } })).status, 400);

  // URLs with keys in their query: the full URL only from getFullUrl, never from GET, logs or audit.
  const subscription = `${vaultId}/providers/Microsoft.EventGrid/eventSubscriptions/leak-sub`;
  const put = await arm('subscription', 'PUT', subscription, { properties: { destination: { endpointType: 'WebHook', properties: { endpointUrl: `${hook.base}/eg?code=${HOOK_KEY}` } } } }, '2022-06-15');
  assert.equal(put.status, 201, put.text);
  assert.ok(!put.text.includes(HOOK_KEY));
  assert.ok(!(await arm('subscription get', 'GET', subscription, undefined, '2022-06-15')).text.includes(HOOK_KEY));
  assert.ok(!(await arm('subscription list', 'GET', `${vaultId}/providers/Microsoft.EventGrid/eventSubscriptions`, undefined, '2022-06-15')).text.includes(HOOK_KEY));
  const full = await arm('getFullUrl', 'POST', `${subscription}/getFullUrl`, undefined, '2022-06-15');
  assert.equal(full.json.endpointUrl, `${hook.base}/eg?code=${HOOK_KEY}`);
  assert.equal((await arm('subscription bad', 'PUT', subscription, { properties: { destination: { endpointType: 'WebHook', properties: { endpointUrl: `http://example.com/eg?code=${HOOK_KEY}` } } } }, '2022-06-15')).status, 400);
  // An event-hub namespace's endpoint is shown by GET (it is the namespace's address): one carrying a key is refused.
  for (const endpoint of [`${hook.base}/hub?sig=${HUB_KEY}`, `${hook.base}/hub#${HUB_KEY}`, `https://user:${HUB_KEY}@127.0.0.1:1/hub`]) {
    const hub = await arm('hub with a key', 'PUT', `${rg}/providers/Microsoft.EventHub/namespaces/keyed-hub`, { location: 'local', properties: { serviceBusEndpoint: endpoint } }, '2021-11-01');
    assert.equal(hub.status, 400, hub.text);
  }
  // An event the webhook receives (so the delivery path, with its URL, has run) before anything is searched.
  assert.equal((await vault('secret set 2', 'PUT', '/secrets/trigger', { value: SECRET_VALUE })).status, 200);
  await waitFor('an event delivery', () => hook.events('/eg').length > 0);

  const secrets: Record<string, string> = {
    SECRET_VALUE, USER_PASSWORD, WRONG_PASSWORD, WRONG_CLIENT_SECRET, PFX_PASSWORD, ISSUER_PASSWORD, HOOK_KEY, QUERY_KEY, ...learnt,
  };
  const notInLogsOrAudit: Record<string, string> = { ...secrets, HUB_KEY };
  const { adminClientSecret: _bootstrapFileHoldsIt, ...notInFiles } = notInLogsOrAudit;

  // Audit: through the workspace query API (once the records have arrived), then the table itself.
  const customerId = ws.json.properties.customerId;
  const query = async () => (await arm('query', 'POST', `/v1/workspaces/${customerId}/query`, { query: 'AzureDiagnostics' })).json;
  let queried = await query();
  for (const deadline = Date.now() + 20_000; queried.tables[0].rows.length < 20 && Date.now() < deadline;) {
    await new Promise((r) => setTimeout(r, 200));
    queried = await query();
  }
  assert.ok(queried.tables[0].rows.length > 0);
  assertAbsent(JSON.stringify(queried), notInLogsOrAudit, 'the workspace query results');
  const rows = await everyRow();
  const audit = rows.find((r) => r.table === 'audit_events')!;
  assert.ok(audit.text.length > 0);
  assertAbsent(audit.text, notInLogsOrAudit, 'the audit_events table');
  for (const row of rows) assertAbsent(row.text, notInFiles, `the ${row.table} table`);
  for (const file of filesUnder(dataDir)) {
    if (path.basename(file) === 'bootstrap-admin.json') continue;
    assertAbsent(fs.readFileSync(file), notInLogsOrAudit, file);
  }
  assertAbsent(fs.readFileSync(path.join(dataDir, 'bootstrap-admin.json')), notInFiles, 'bootstrap-admin.json');
  assert.ok(logs.length > 1000, 'debug logs were captured');
  assertAbsent(logs, notInLogsOrAudit, 'the server log');
  assert.ok(errorBodies.length >= 10);
  // What left the process: audit records POSTed to the event hub, and Event Grid events (which name, never carry, values).
  await waitFor('audit records at the event hub', () => hook.received.some((r) => r.path.startsWith('/hub/audit/messages')), 20_000);
  const sent = hook.received.filter((r) => r.path.startsWith('/hub') || r.path.startsWith('/eg'));
  const { HOOK_KEY: _inTheUrlItIsSentTo, ...notInPaths } = notInLogsOrAudit;
  for (const r of sent) {
    assertAbsent(`${JSON.stringify(r.headers)}\n${r.body}`, notInLogsOrAudit, `a request to ${r.path.split('?')[0]}`);
    assertAbsent(r.path, notInPaths, `the path of a request to ${r.path.split('?')[0]}`);
  }
  assert.ok(filesUnder(dataDir).some((f) => f.includes('insights-logs-auditevent')), 'the storage account received audit files');
  for (const { what, text } of errorBodies) assertAbsent(text, notInLogsOrAudit, `the error body of ${what}`);
});
