import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import tls from 'node:tls';
import { SignJWT, decodeJwt, decodeProtectedHeader, base64url } from 'jose';
import { startTestServer, type TestServer } from '../support/server.js';
import { dataPlaneToken, managementToken, rawRequest, type RawResponse } from '../support/raw-http.js';
import { createSettingsRepository } from '../../src/storage/settings.js';
import { unsealRootKey } from '../../src/crypto/seal.js';
import { createKeyring } from '../../src/crypto/envelope.js';
import { createSigningKeys } from '../../src/identity/signing-keys.js';

/**
 * What the SDK never sends: raw HTTPS requests with bad api-versions, malformed bodies, wrong hosts and forged
 * tokens. Every one must get an Azure-shaped 4xx (never a 5xx) and leave the vault exactly as it was.
 */
let server: TestServer;
let token: string;
let vaultBase: string;
let nonVaultBase: string;
const VAULT = 'securityvault';

before(async () => {
  server = await startTestServer();
  await server.createVault(VAULT);
  token = await dataPlaneToken(server);
  vaultBase = server.vaultUrl(VAULT);
  nonVaultBase = server.admin.managementEndpoint;
  await server.secretClient(VAULT).setSecret('existing', 'original-value');
});
after(() => server.close());

function assertAzureError(res: RawResponse, status: number, code?: string) {
  assert.equal(res.status, status, `status for body ${res.text}`);
  assert.equal(typeof res.json?.error?.code, 'string', `Azure-shaped error body: ${res.text}`);
  assert.equal(typeof res.json.error.message, 'string');
  if (code) assert.equal(res.json.error.code, code);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  assert.match(res.headers.get('x-ms-request-id') ?? '', /^[0-9a-f-]{36}$/);
}

/** The vault's observable state: every live and deleted secret with all its versions and values. */
async function vaultState() {
  const client = server.secretClient(VAULT);
  const state: Record<string, unknown> = {};
  for await (const p of client.listPropertiesOfSecrets()) {
    const versions = [];
    for await (const v of client.listPropertiesOfSecretVersions(p.name)) versions.push([v.version, v.updatedOn?.getTime(), v.enabled]);
    state[p.name] = { versions: versions.sort(), value: p.enabled ? (await client.getSecret(p.name)).value : undefined };
  }
  for await (const d of client.listDeletedSecrets()) state[`deleted:${d.name}`] = d.properties.version;
  return state;
}

describe('api-version', () => {
  test('missing or unknown api-version is 400 BadParameter; every shipped version, previews included, is accepted', async () => {
    const missing = await rawRequest(`${vaultBase}/secrets/existing`, { token });
    assertAzureError(missing, 400, 'BadParameter');
    assert.match(missing.json.error.message, /api-version/);
    for (const version of ['7.9', '2016-10-01', 'latest', '7.5-preview.9', '', '7.5&api-version=7.4']) {
      const res = await rawRequest(`${vaultBase}/secrets/existing?api-version=${version}`, { token });
      assertAzureError(res, 400, 'BadParameter');
      if (version) assert.match(res.json.error.message, /is not recognized/, version);
    }
    for (const version of ['7.0', '7.1', '7.2', '7.3', '7.4', '7.5', '7.6', '2025-07-01', '7.4-preview.1', '7.6-preview.2']) {
      const res = await rawRequest(`${vaultBase}/secrets/existing?api-version=${version}`, { token });
      assert.equal(res.status, 200, version);
      assert.equal(res.json.value, 'original-value');
    }
  });
});

describe('malformed requests change nothing', () => {
  test('bad bodies, content types, sizes, names and routes are Azure-shaped 4xx', async () => {
    const before = await vaultState();
    const put = (name: string, body: string, contentType = 'application/json') =>
      rawRequest(`${vaultBase}/secrets/${name}?api-version=7.5`, { method: 'PUT', token, body, headers: { 'content-type': contentType } });

    for (const body of ['{"value": "x"', '{value: "x"}', '', 'null', '[]', '"just a string"', '{"value": 42}',
      '{"value": "x", "attributes": {"enabled": "yes"}}', '{"value": "x", "tags": {"a": 1}}', '{"value": "x", "attributes": {"exp": "soon"}}',
      '{"__proto__": {"polluted": true}, "value": "x"}', '{"constructor": {"prototype": {"polluted": true}}, "value": "x"}',
      // Deep nesting and very wide objects just under the body limit.
      `{"value":"x","tags":${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}}`, `{"value":"x","attributes":${'['.repeat(400_000)}${']'.repeat(400_000)}}`,
      JSON.stringify({ value: 'x', tags: Object.fromEntries(Array.from({ length: 50_000 }, (_, i) => [`k${i}`, 'v'])) })]) {
      const res = await put('existing', body);
      assert.ok(res.status >= 400 && res.status < 500, `body ${body.slice(0, 80)} -> ${res.status}`);
      assertAzureError(res, res.status);
    }
    assert.equal(({} as any).polluted, undefined);

    for (const contentType of ['text/plain', 'application/xml', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded']) {
      const res = await put('existing', contentType === 'application/x-www-form-urlencoded' ? 'value=x' : '{"value":"x"}', contentType);
      assert.ok(res.status >= 400 && res.status < 500, `${contentType} -> ${res.status}`);
      assertAzureError(res, res.status);
    }

    const huge = await put('existing', JSON.stringify({ value: 'x'.repeat(1024 * 1024 + 10) }));
    assertAzureError(huge, 413);

    for (const name of ['a'.repeat(128), 'a'.repeat(300), 'a'.repeat(5000), 'bad_name', 'bad%20name', '%2E%2E', 'x%00y', '%E0%A4%A', '%', 'a%2Fb']) {
      const res = await put(name, '{"value":"x"}');
      assert.ok(res.status >= 400 && res.status < 500, `name ${name.slice(0, 20)} -> ${res.status}`);
      assertAzureError(res, res.status);
    }

    const unknown = [
      ['GET', '/nothing-here'], ['GET', '/secrets/existing/versions/extra'], ['POST', '/secrets/existing'],
      ['GET', '/keys-that-do-not-exist'], ['DELETE', '/secrets'], ['GET', '/'], ['PUT', '/deletedsecrets/existing'],
    ];
    for (const [method, path] of unknown) {
      const res = await rawRequest(`${vaultBase}${path}?api-version=7.5`, { method, token, body: method === 'GET' || method === 'DELETE' ? undefined : { value: 'x' } });
      assert.ok(res.status === 404 || res.status === 405, `${method} ${path} -> ${res.status}`);
      assertAzureError(res, res.status);
    }

    // Data-plane routes do not exist on the management host, nor management routes on a vault host.
    const wrongHost = await rawRequest(`${nonVaultBase}/secrets/existing?api-version=7.5`, { token });
    assertAzureError(wrongHost, 404);
    const wrongHostPut = await rawRequest(`${nonVaultBase}/secrets/existing?api-version=7.5`, { method: 'PUT', token, body: { value: 'overwritten' } });
    assertAzureError(wrongHostPut, 404);
    const mgmt = await managementToken(server);
    const vaultsOnVaultHost = await rawRequest(`${vaultBase}/subscriptions/${server.admin.subscriptionId}/providers/Microsoft.KeyVault/vaults?api-version=2023-07-01`, { token: mgmt });
    assertAzureError(vaultsOnVaultHost, 404);
    const clockOnVaultHost = await rawRequest(`${vaultBase}/coffer/admin/clock/advance`, { method: 'POST', token: mgmt, body: { advance: '100d' } });
    assertAzureError(clockOnVaultHost, 404);
    const unknownVault = await rawRequest(`${server.vaultUrl('no-such-vault')}/secrets/existing?api-version=7.5`, { token });
    assertAzureError(unknownVault, 404);

    assert.deepEqual(await vaultState(), before);
  });
});

/** Writes raw bytes over TLS (for requests no HTTP client would send) and returns everything the server answers. */
function rawTls(url: string, payload: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port: Number(port), servername: hostname }, () => socket.end(payload));
    let answer = '';
    socket.on('data', (chunk) => { answer += chunk; });
    socket.on('close', () => resolve(answer));
    socket.on('error', reject);
  });
}

describe('requests the HTTP parser rejects', () => {
  test('an oversized URL or malformed HTTP gets an Azure-shaped 4xx', async () => {
    const tooLong = await rawRequest(`${vaultBase}/secrets/${'a'.repeat(20_000)}?api-version=7.5`, { token });
    assertAzureError(tooLong, 431);
    const host = new URL(vaultBase).host;
    for (const request of [
      'GARBAGE\r\n\r\n',
      `GET /secrets/existing?api-version=7.5 HTTP/1.1\r\nHost: ${host}\r\nContent-Length: abc\r\n\r\n`,
      `GET /secrets/existing?api-version=7.5 HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabc`,
    ]) {
      const answer = await rawTls(vaultBase, request);
      const [head, body] = answer.split('\r\n\r\n');
      assert.match(head, /^HTTP\/1\.1 400 /, JSON.stringify(request));
      assert.match(head, /x-ms-request-id: [0-9a-f-]{36}/);
      assert.equal(JSON.parse(body).error.code, 'BadRequest');
    }
  });
});

describe('headers', () => {
  test('every response carries x-ms-request-id; vault responses carry x-ms-keyvault-* headers', async () => {
    const ok = await rawRequest(`${vaultBase}/secrets/existing?api-version=7.5`, { token, headers: { 'x-ms-client-request-id': 'my-correlation-id' } });
    assert.equal(ok.status, 200);
    assert.match(ok.headers.get('x-ms-request-id')!, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.equal(ok.headers.get('x-ms-client-request-id'), 'my-correlation-id');
    assert.ok(ok.headers.get('x-ms-keyvault-service-version'));
    assert.ok(ok.headers.get('x-ms-keyvault-region'));
    assert.match(ok.headers.get('x-ms-keyvault-network-info')!, /^conn_type=IPv[46];addr=[^;]+;act_addr_fam=InterNetwork(V6)?;$/);
    assert.match(ok.headers.get('content-type')!, /^application\/json/);
    assert.equal(ok.headers.get('cache-control'), 'no-cache');

    const second = await rawRequest(`${vaultBase}/secrets/existing?api-version=7.5`, { token });
    assert.notEqual(second.headers.get('x-ms-request-id'), ok.headers.get('x-ms-request-id'));

    const health = await rawRequest(`${nonVaultBase}/healthz`);
    assert.equal(health.status, 200);
    assert.ok(health.headers.get('x-ms-request-id'));
    assert.equal(health.headers.get('x-ms-keyvault-service-version'), null);

    const denied = await rawRequest(`${vaultBase}/secrets/existing?api-version=7.5`, { token: null });
    assert.ok(denied.headers.get('x-ms-request-id'));
    assert.ok(denied.headers.get('x-ms-keyvault-service-version'));
  });
});

describe('authentication', () => {
  const challenge = () => {
    const port = new URL(vaultBase).port;
    return `Bearer authorization="${server.admin.authorityHost}/${server.admin.tenantId}", resource="https://vault.localhost:${port}"`;
  };

  async function assertUnauthorized(tokenValue: string | null, what: string) {
    const res = await rawRequest(`${vaultBase}/secrets/existing?api-version=7.5`, { token: tokenValue });
    assert.equal(res.status, 401, `${what}: ${res.text}`);
    assertAzureError(res, 401, 'Unauthorized');
    assert.equal(res.headers.get('www-authenticate'), challenge(), what);
    assert.ok(!res.text.includes('original-value'));
    return res;
  }

  test('an unauthenticated request gets the exact Key Vault challenge', async () => {
    const res = await assertUnauthorized(null, 'no token');
    assert.match(res.json.error.message, /AKV10000/);
    // The challenge comes before the api-version and the vault are looked at (strangers learn nothing).
    const noVersion = await rawRequest(`${vaultBase}/secrets/existing`, { token: null });
    assert.equal(noVersion.status, 401);
    assert.equal(noVersion.headers.get('www-authenticate'), challenge());
    const noVault = await rawRequest(`${server.vaultUrl('no-such-vault')}/secrets/existing?api-version=7.5`, { token: null });
    assert.equal(noVault.status, 401);
    for (const header of ['Basic dXNlcjpwYXNz', 'Bearer', 'Bearer a b', `bearer${token}`]) {
      const r = await rawRequest(`${vaultBase}/secrets/existing?api-version=7.5`, { headers: { authorization: header } });
      assert.equal(r.status, 401, header.slice(0, 12));
      assert.equal(r.headers.get('www-authenticate'), challenge());
    }
  });

  test('forged, misaddressed and expired tokens are 401', async () => {
    const claims = decodeJwt(token);
    const { kid } = decodeProtectedHeader(token);
    const settings = createSettingsRepository(server.coffer.storage.db);
    const keyring = createKeyring(await unsealRootKey({ kind: 'file', dataDir: server.dataDir }, settings));
    const signingKey = await createSigningKeys({ db: server.coffer.storage.db, keyring }).current();
    const realPublicKey = crypto.createPublicKey(signingKey.privateKey);
    const now = Math.floor(Date.now() / 1000);
    const sign = (payload: Record<string, unknown>, key: crypto.KeyObject = signingKey.privateKey, keyId = kid) =>
      new SignJWT({ ...claims, ...payload }).setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: keyId }).sign(key);

    // Sanity: a token re-signed with the real key and unchanged claims is accepted, so each rejection below is
    // due to the one thing changed.
    const resigned = await sign({});
    assert.equal((await rawRequest(`${vaultBase}/secrets/existing?api-version=7.5`, { token: resigned })).status, 200);

    const encode = (obj: object) => base64url.encode(JSON.stringify(obj));
    const unsigned = `${encode({ alg: 'none', typ: 'JWT' })}.${encode(claims)}.`;
    await assertUnauthorized(unsigned, 'alg none');
    const noneWithKid = `${encode({ alg: 'none', typ: 'JWT', kid })}.${encode(claims)}.`;
    await assertUnauthorized(noneWithKid, 'alg none with a real kid');

    const hmacKey = realPublicKey.export({ format: 'pem', type: 'spki' });
    const hsHeader = encode({ alg: 'HS256', typ: 'JWT', kid });
    const hsPayload = encode(claims);
    const hsSignature = crypto.createHmac('sha256', hmacKey).update(`${hsHeader}.${hsPayload}`).digest('base64url');
    await assertUnauthorized(`${hsHeader}.${hsPayload}.${hsSignature}`, 'HS256 keyed with the public key');

    const foreign = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    await assertUnauthorized(await sign({}, foreign), 'foreign RSA key, real kid');
    await assertUnauthorized(await sign({}, foreign, 'attacker-kid'), 'foreign RSA key, unknown kid');
    const tamperedPayload = token.split('.');
    tamperedPayload[1] = encode({ ...claims, oid: crypto.randomUUID() });
    await assertUnauthorized(tamperedPayload.join('.'), 'payload changed after signing');

    await assertUnauthorized(await sign({ aud: server.admin.managementEndpoint }), 'management audience');
    await assertUnauthorized(await sign({ aud: 'https://vault.azure.net' }), 'Azure audience');
    await assertUnauthorized(await sign({ aud: 'https://other.localhost' }), 'foreign audience');
    await assertUnauthorized(await managementToken(server), 'a real management token');
    await assertUnauthorized(await sign({ iss: 'https://login.microsoftonline.com/common/v2.0' }), 'wrong issuer');
    await assertUnauthorized(await sign({ iss: `${server.admin.authorityHost}/${crypto.randomUUID()}/v2.0` }), 'issuer of another tenant');
    await assertUnauthorized(await sign({ tid: crypto.randomUUID() }), 'wrong tenant claim');
    await assertUnauthorized(await sign({ exp: now - 3600, iat: now - 7200, nbf: now - 7200 }), 'expired');
    await assertUnauthorized(await sign({ nbf: now + 3600, iat: now, exp: now + 7200 }), 'not yet valid');
    await assertUnauthorized(await sign({ oid: crypto.randomUUID() }), 'unknown principal');
    await assertUnauthorized('not.a.jwt', 'garbage');
  });
});
