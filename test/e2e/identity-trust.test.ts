import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair, type JWTPayload } from 'jose';
import type { TokenCredential } from '@azure/identity';
import type { TestServer } from '../support/server.js';
import { startTestServerWithSecret, type TestServerWithSecret } from './identity-support.js';

/**
 * Trusted external issuers: an OIDC issuer of our own making (a jose key pair and a tiny JWKS server) whose tokens
 * the data plane accepts for the principals its subjects are mapped to — and nothing else.
 */
const VAULT = 'trustvault';
const ISSUER = 'https://login.example.test/contoso/v2.0';
const AUDIENCE = 'api://coffer-vaults';
let server: TestServer;
let mgmt: TestServerWithSecret['mgmt'];
let grantSecretsUser: TestServerWithSecret['grantSecretsUser'];
let readWith: TestServerWithSecret['readWith'];
let jwks: http.Server;
let jwksUri: string;
const trusted = await generateKeyPair('RS256');
const foreign = await generateKeyPair('RS256');


/** A token of the external issuer; every part can be overridden to forge a bad one. */
function externalToken(claims: JWTPayload = {}, opts: { key?: crypto.webcrypto.CryptoKey | Uint8Array; kid?: string; alg?: string; expiresAt?: number } = {}) {
  return new SignJWT({ oid: 'ext-oid-1', sub: 'pairwise-subject', ...claims })
    .setProtectedHeader({ alg: opts.alg ?? 'RS256', kid: opts.kid ?? 'k1', typ: 'JWT' })
    .setIssuer(typeof claims.iss === 'string' ? claims.iss : ISSUER)
    .setAudience(claims.aud ?? AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(opts.expiresAt ?? '10m')
    .sign(opts.key ?? trusted.privateKey);
}

const getSecret = (token: string) => fetch(`${server.vaultUrl(VAULT)}/secrets/app-secret?api-version=7.5`, { headers: { authorization: `Bearer ${token}` } })
  .then(async (r) => ({ status: r.status, body: await r.json(), challenge: r.headers.get('www-authenticate') }));

before(async () => {
  const publicJwk = { ...(await exportJWK(trusted.publicKey)), kid: 'k1', use: 'sig', alg: 'RS256' };
  jwks = http.createServer((req, res) => {
    res.writeHead(req.url === '/keys' ? 200 : 404, { 'content-type': 'application/json' });
    res.end(req.url === '/keys' ? JSON.stringify({ keys: [publicJwk] }) : '{}');
  });
  await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
  jwksUri = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/keys`;
  ({ server, mgmt, grantSecretsUser, readWith } = await startTestServerWithSecret(VAULT));
});
after(async () => {
  await server?.close();
  jwks?.close();
});

test('a trusted issuer\'s token reads a secret as the principal its oid is mapped to; forged or unmapped tokens get 401', async () => {
  const added = await mgmt('POST', '/coffer/trusted-issuers', { issuer: ISSUER, jwksUri, audience: AUDIENCE });
  assert.equal(added.status, 201, JSON.stringify(added.body));
  const app = (await mgmt('POST', '/v1.0/applications', { displayName: 'external-workload' })).body;
  const mapped = await mgmt('PUT', `/coffer/trusted-issuers/${added.body.id}/subjects/ext-oid-1`, { principalId: app.id });
  assert.deepEqual(mapped.body, { externalId: 'ext-oid-1', principalId: app.id });
  await grantSecretsUser(app.id);

  // A raw bearer token, and the SDK (challenge verification on) with a credential that hands out the external token.
  const good = await externalToken();
  assert.equal((await getSecret(good)).body.value, 's3cr3t-value');
  const credential: TokenCredential = { getToken: async () => ({ token: await externalToken(), expiresOnTimestamp: Date.now() + 600_000 }) };
  assert.equal((await readWith(credential)).value, 's3cr3t-value');
  // `sub` maps too, when the issuer sends no oid.
  await mgmt('PUT', `/coffer/trusted-issuers/${added.body.id}/subjects/only-sub`, { principalId: app.id });
  assert.equal((await getSecret(await externalToken({ oid: undefined, sub: 'only-sub' }))).status, 200);

  const hmacKey = new TextEncoder().encode(JSON.stringify(await exportJWK(trusted.publicKey)));
  const unsigned = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${Buffer.from(JSON.stringify({ iss: ISSUER, aud: AUDIENCE, oid: 'ext-oid-1', exp: Math.floor(Date.now() / 1000) + 600 })).toString('base64url')}.`;
  const [h, , sig] = good.split('.');
  const tampered = `${h}.${Buffer.from(JSON.stringify({ iss: ISSUER, aud: AUDIENCE, oid: 'someone-else', exp: Math.floor(Date.now() / 1000) + 600 })).toString('base64url')}.${sig}`;
  const attacks: [string, string, RegExp][] = [
    ['wrong audience', await externalToken({ aud: 'api://someone-else' }), /AKV10022/],
    ['unknown issuer', await externalToken({ iss: 'https://evil.example.test/v2.0' }), /AKV1003/],
    ['untrusted key with the trusted kid', await externalToken({}, { key: foreign.privateKey }), /AKV10031/],
    ['untrusted key with its own kid', await externalToken({}, { key: foreign.privateKey, kid: 'k2' }), /AKV10031/],
    ['alg none', unsigned, /AKV1003/],
    ['HS256 keyed with the public key', await externalToken({}, { key: hmacKey, alg: 'HS256' }), /AKV10031/],
    ['expired', await externalToken({}, { expiresAt: Math.floor(Date.now() / 1000) - 3600 }), /AKV10032/],
    ['tampered claims', tampered, /AKV10031/],
    ['unmapped subject', await externalToken({ oid: 'ext-oid-2', sub: 'x' }), /not mapped/],
  ];
  for (const [name, token, code] of attacks) {
    const res = await getSecret(token);
    assert.equal(res.status, 401, `${name}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.error.code, 'Unauthorized', name);
    assert.match(res.body.error.message, code, name);
    assert.match(res.challenge ?? '', /^Bearer authorization=/, name);
    assert.equal(JSON.stringify(res.body).includes('s3cr3t-value'), false);
  }
  // Data plane only: the management API does not take external tokens.
  assert.equal((await mgmt('GET', '/v1.0/me', undefined, good)).status, 401);

  // Disabling the principal, removing the mapping, or removing the issuer takes effect at once.
  assert.equal((await mgmt('PATCH', `/v1.0/servicePrincipals/${app.id}`, { accountEnabled: false })).status, 204);
  assert.equal((await getSecret(good)).status, 401);
  await mgmt('PATCH', `/v1.0/servicePrincipals/${app.id}`, { accountEnabled: true });
  assert.equal((await getSecret(good)).status, 200);
  assert.equal((await mgmt('DELETE', `/coffer/trusted-issuers/${added.body.id}/subjects/ext-oid-1`)).status, 204);
  assert.equal((await getSecret(good)).status, 401);
  await mgmt('PUT', `/coffer/trusted-issuers/${added.body.id}/subjects/ext-oid-1`, { principalId: app.id });
  assert.equal((await getSecret(good)).status, 200);
  assert.deepEqual((await mgmt('GET', `/coffer/trusted-issuers/${added.body.id}`)).body.subjects.map((s: any) => s.externalId).sort(), ['ext-oid-1', 'only-sub']);
  assert.equal((await mgmt('DELETE', `/coffer/trusted-issuers/${added.body.id}`)).status, 204);
  assert.equal((await getSecret(good)).status, 401);
  assert.deepEqual((await mgmt('GET', '/coffer/trusted-issuers')).body.value, []);
});

test('trusted issuers are the administrator\'s, and bad input is an Azure-shaped 4xx that changes nothing', async () => {
  const app = (await mgmt('POST', '/v1.0/applications', { displayName: 'not-admin' })).body;
  const password = (await mgmt('POST', `/v1.0/applications/${app.id}/addPassword`, {})).body.secretText;
  const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: app.appId, client_secret: password, scope: `${server.admin.managementEndpoint}/.default` });
  const otherToken = (await (await fetch(`${server.admin.authorityHost}/${server.admin.tenantId}/oauth2/v2.0/token`, { method: 'POST', body: form })).json()).access_token;
  assert.equal((await mgmt('POST', '/coffer/trusted-issuers', { issuer: ISSUER, jwksUri, audience: AUDIENCE }, otherToken)).status, 403);
  assert.equal((await mgmt('GET', '/coffer/trusted-issuers', undefined, otherToken)).status, 403);

  const issuer = (await mgmt('POST', '/coffer/trusted-issuers', { issuer: ISSUER, jwksUri, audience: AUDIENCE })).body;
  const group = (await mgmt('POST', '/v1.0/groups', { displayName: 'g', mailNickname: 'g' })).body;
  const bad: [string, string, unknown, number][] = [
    ['POST', '/coffer/trusted-issuers', { issuer: ISSUER, jwksUri, audience: AUDIENCE }, 409],
    ['POST', '/coffer/trusted-issuers', { issuer: 'https://other.example.test', jwksUri: 'http://keys.example.test/jwks', audience: AUDIENCE }, 400],
    ['POST', '/coffer/trusted-issuers', { issuer: 'not a url', jwksUri, audience: AUDIENCE }, 400],
    ['POST', '/coffer/trusted-issuers', { issuer: 'https://other.example.test', jwksUri }, 400],
    ['PUT', `/coffer/trusted-issuers/${issuer.id}/subjects/x`, { principalId: group.id }, 400],
    ['PUT', `/coffer/trusted-issuers/${issuer.id}/subjects/x`, { principalId: crypto.randomUUID() }, 400],
    ['PUT', `/coffer/trusted-issuers/${crypto.randomUUID()}/subjects/x`, { principalId: app.id }, 404],
    ['DELETE', `/coffer/trusted-issuers/${issuer.id}/subjects/never-mapped`, undefined, 404],
    ['DELETE', '/coffer/trusted-issuers/not-a-guid', undefined, 404],
  ];
  for (const [method, path, body, status] of bad) {
    const res = await mgmt(method, path, body);
    assert.equal(res.status, status, `${method} ${path}: ${JSON.stringify(res.body)}`);
    assert.equal(typeof res.body.error.code, 'string');
  }
  const after = (await mgmt('GET', '/coffer/trusted-issuers')).body.value;
  assert.deepEqual(after.map((i: any) => i.issuer), [ISSUER]);
  assert.deepEqual((await mgmt('GET', `/coffer/trusted-issuers/${issuer.id}`)).body.subjects, []);
});
