import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { RestError } from '@azure/core-rest-pipeline';
import { KeyClient, type KeyReleasePolicy } from '@azure/keyvault-keys';
import { SignJWT, compactVerify, createLocalJWKSet, exportJWK, type JWTPayload } from 'jose';
import { startTestServer, type TestServer } from '../support/server.js';
import { dataPlaneToken, rawRequest } from '../support/raw-http.js';

/**
 * Secure key release end to end: exportable keys with a release policy, released by KeyClient.releaseKey against an
 * attestation token minted here by a test attestation authority (an OpenID discovery document and a JWKS served on
 * loopback) that the Coffer under test is configured to trust. The released key is unwrapped here with the target
 * key's private half and must be the very private key of the vault's key.
 */
let server: TestServer;
let client: KeyClient;
let issuer: http.Server;
let authority: string;
const authorityKey = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const rogueKey = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
/** The key the attested environment (a TEE) holds: the released key is wrapped under its public half. */
const teeKey = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const API = 'api-version=2025-07-01';

before(async () => {
  issuer = http.createServer(async (req, res) => {
    const body = req.url === '/.well-known/openid-configuration'
      ? { issuer: authority, jwks_uri: `${authority}/certs` }
      : req.url === '/certs' ? { keys: [{ ...(await exportJWK(authorityKey.publicKey)), kid: 'attest-1', alg: 'RS256' }] } : undefined;
    res.writeHead(body ? 200 : 404, { 'content-type': 'application/json' }).end(JSON.stringify(body ?? {}));
  });
  await new Promise<void>((resolve) => issuer.listen(0, '127.0.0.1', resolve));
  authority = `http://127.0.0.1:${(issuer.address() as AddressInfo).port}`;
  server = await startTestServer({ attestationAuthorities: [authority] });
  await server.createVault('releasevault');
  client = new KeyClient(server.vaultUrl('releasevault'), server.adminCredential, { retryOptions: { maxRetries: 0 } });
});
after(async () => {
  await server?.close();
  issuer?.close();
});

const policyFor = (authorityUrl: string, immutable = false): KeyReleasePolicy => ({
  encodedPolicy: new TextEncoder().encode(JSON.stringify({
    version: '1.0.0',
    anyOf: [{
      authority: authorityUrl,
      allOf: [
        { claim: 'x-ms-attestation-type', equals: 'sevsnpvm' },
        { claim: 'x-ms-runtime.client-payload.tags', contains: 'prod' },
      ],
    }],
  })),
  immutable,
});

/** An attestation token as an attestation service would issue it for a TEE holding `teeKey`. */
async function attestationToken(options: { claims?: JWTPayload; signer?: crypto.KeyObject; iss?: string; exp?: number } = {}) {
  const teeJwk = await exportJWK(teeKey.publicKey);
  return new SignJWT({
    'x-ms-attestation-type': 'sevsnpvm',
    'x-ms-runtime': {
      'client-payload': { tags: ['prod', 'eu'] },
      keys: [{ kid: 'TpmEphemeralEncryptionKey', key_ops: ['encrypt'], kty: 'RSA', n: teeJwk.n, e: teeJwk.e }],
    },
    ...options.claims,
  })
    .setProtectedHeader({ alg: 'RS256', kid: 'attest-1' })
    .setIssuer(options.iss ?? authority)
    .setIssuedAt()
    .setExpirationTime(options.exp ?? Math.floor(Date.now() / 1000) + 600)
    .sign(options.signer ?? authorityKey.privateKey);
}

/** Verifies the release JWS with the deployment's published keys and unwraps the released private key. */
async function openRelease(jws: string, teePrivate = teeKey.privateKey) {
  const admin = server.admin;
  const jwks = await (await fetch(`${admin.authorityHost}/${admin.tenantId}/discovery/v2.0/keys`)).json();
  const { payload } = await compactVerify(jws, createLocalJWKSet(jwks));
  const released = JSON.parse(Buffer.from(payload).toString('utf8'));
  const blob = JSON.parse(Buffer.from(released.response.key.key.key_hsm, 'base64url').toString('utf8'));
  assert.equal(blob.header.kid, 'TpmEphemeralEncryptionKey');
  const ciphertext = Buffer.from(blob.ciphertext, 'base64url');
  const oaepHash = { CKM_RSA_AES_KEY_WRAP: 'sha1', RSA_AES_KEY_WRAP_256: 'sha256', RSA_AES_KEY_WRAP_384: 'sha384' }[blob.header.enc as string]!;
  const aesKey = crypto.privateDecrypt({ key: teePrivate, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash }, ciphertext.subarray(0, 256));
  const decipher = crypto.createDecipheriv('id-aes256-wrap-pad', aesKey, Buffer.from('a65959a6', 'hex'));
  const pkcs8 = Buffer.concat([decipher.update(ciphertext.subarray(256)), decipher.final()]);
  return { released, enc: blob.header.enc as string, privateKey: crypto.createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }) };
}

async function restError(action: () => Promise<unknown>): Promise<RestError> {
  const err = await action().then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof RestError, `expected a RestError, got ${String(err)}`);
  return err;
}

test('an exportable RSA key is released under the attested key and unwraps to its own private key', async () => {
  const key = await client.createRsaKey('release-rsa', { keySize: 2048, exportable: true, releasePolicy: policyFor(authority) });
  assert.equal(key.properties.exportable, true);
  assert.equal(key.properties.releasePolicy?.immutable, false);
  assert.equal(key.properties.releasePolicy?.contentType, 'application/json; charset=utf-8');
  assert.deepEqual(JSON.parse(new TextDecoder().decode(key.properties.releasePolicy!.encodedPolicy)).anyOf[0].authority, authority);

  const { value } = await client.releaseKey('release-rsa', await attestationToken(), { nonce: 'fresh-1', version: key.properties.version });
  const { released, enc, privateKey } = await openRelease(value!);
  assert.equal(enc, 'CKM_RSA_AES_KEY_WRAP');
  assert.equal(released.request.nonce, 'fresh-1');
  assert.equal(released.response.key.key.kid, key.id);
  assert.equal(released.response.key.key.d, undefined, 'no clear private member in the JWS');
  // The released key is the vault key's private half: same modulus, and what it signs verifies with the vault's key.
  assert.equal(privateKey.export({ format: 'jwk' }).n, Buffer.from(key.key!.n!).toString('base64url'));
  const digest = crypto.createHash('sha256').update('released').digest();
  const digestInfo = Buffer.concat([Buffer.from('3031300d060960864801650304020105000420', 'hex'), digest]);
  const signature = crypto.privateEncrypt({ key: privateKey, padding: crypto.constants.RSA_PKCS1_PADDING }, digestInfo);
  const vaultVerdict = await rawRequest(`${key.id}/verify?${API}`, {
    method: 'POST', token: await dataPlaneToken(server),
    body: { alg: 'RS256', digest: digest.toString('base64url'), value: signature.toString('base64url') },
  });
  assert.equal(vaultVerdict.json.value, true);
});

test('an imported exportable EC key is released with RSA_AES_KEY_WRAP_256', async () => {
  const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = privateKey.export({ format: 'jwk' });
  const bytes = (v?: string) => new Uint8Array(Buffer.from(v!, 'base64url'));
  const imported = await client.importKey('release-ec', { kty: 'EC', crv: 'P-256', x: bytes(jwk.x), y: bytes(jwk.y), d: bytes(jwk.d) },
    { exportable: true, releasePolicy: policyFor(`${authority}/`) });
  assert.equal(imported.properties.exportable, true);
  const { value } = await client.releaseKey('release-ec', await attestationToken(), { algorithm: 'RSA_AES_KEY_WRAP_256' });
  const opened = await openRelease(value!);
  assert.equal(opened.enc, 'RSA_AES_KEY_WRAP_256');
  assert.equal(opened.privateKey.export({ format: 'jwk' }).d, jwk.d);
});

test('release is refused when the token does not satisfy the policy or is not from a trusted authority', async () => {
  await client.createEcKey('release-guarded', { curve: 'P-256', exportable: true, releasePolicy: policyFor(authority) });
  const attempts: [string, Promise<string>, number][] = [
    ['claim not equal', attestationToken({ claims: { 'x-ms-attestation-type': 'sgx' } }), 403],
    ['claim not contained', attestationToken({ claims: { 'x-ms-runtime': { 'client-payload': { tags: ['dev'] }, keys: [] } } }), 403],
    ['signed by another key', attestationToken({ signer: rogueKey.privateKey }), 403],
    ['expired', attestationToken({ exp: Math.floor(Date.now() / 1000) - 3600 }), 403],
    ['another issuer', attestationToken({ iss: 'https://attacker.example' }), 403],
    ['not a JWT', Promise.resolve('not-a-token'), 400],
  ];
  for (const [why, token, status] of attempts) {
    const err = await restError(async () => client.releaseKey('release-guarded', await token));
    assert.equal(err.statusCode, status, why);
  }
  // A token that satisfies the policy but carries no key to wrap under.
  const keyless = await restError(async () => client.releaseKey('release-guarded', await attestationToken({
    claims: { 'x-ms-runtime': { 'client-payload': { tags: ['prod'] } } },
  })));
  assert.equal(keyless.statusCode, 400);
  assert.match(keyless.message, /no RSA public key/);
  // The key was never changed by the refusals: a good token still releases it.
  assert.ok((await client.releaseKey('release-guarded', await attestationToken())).value);
});

test('exportability rules: policy required, trusted authorities only, non-exportable keys never released', async () => {
  const noPolicy = await restError(() => client.createRsaKey('no-policy', { exportable: true }));
  assert.equal(noPolicy.statusCode, 400);
  assert.match(noPolicy.message, /must have a release policy/);
  const untrusted = await restError(() => client.createRsaKey('untrusted', { exportable: true, releasePolicy: policyFor('https://attest.example.net') }));
  assert.equal(untrusted.statusCode, 400);
  assert.match(untrusted.message, /not trusted by this Coffer deployment/);
  const garbage = await restError(() => client.createRsaKey('garbage', { exportable: true, releasePolicy: { encodedPolicy: new TextEncoder().encode('{"anyOf":') } }));
  assert.equal(garbage.statusCode, 400);
  const policyOnly = await restError(() => client.createRsaKey('policy-only', { releasePolicy: policyFor(authority) }));
  assert.equal(policyOnly.statusCode, 400);
  for (const name of ['no-policy', 'untrusted', 'garbage', 'policy-only']) {
    assert.equal((await restError(() => client.getKey(name))).statusCode, 404, `${name} was not created`);
  }

  await client.createRsaKey('plain', { keySize: 2048 });
  const notExportable = await restError(async () => client.releaseKey('plain', await attestationToken()));
  assert.equal(notExportable.statusCode, 400);
  assert.match(notExportable.message, /not exportable/);
  const badEnc = await rawRequest(`${server.vaultUrl('releasevault')}/keys/release-guarded/release?${API}`, {
    method: 'POST', token: await dataPlaneToken(server), body: { target: await attestationToken(), enc: 'A256KW' },
  });
  assert.equal(badEnc.status, 400);
});

test('a mutable policy can be replaced; an immutable one never, and rotation carries the policy', async () => {
  const mutable = await client.createRsaKey('release-mutable', { keySize: 2048, exportable: true, releasePolicy: policyFor(authority) });
  const stricter: KeyReleasePolicy = {
    encodedPolicy: new TextEncoder().encode(JSON.stringify({ version: '1.0.0', anyOf: [{ authority, allOf: [{ claim: 'x-ms-attestation-type', equals: 'tdxvm' }] }] })),
    immutable: true,
  };
  const updated = await client.updateKeyProperties('release-mutable', mutable.properties.version!, { releasePolicy: stricter });
  assert.equal(updated.properties.releasePolicy?.immutable, true);
  // The new policy applies at once: the SEV-SNP token no longer qualifies.
  assert.equal((await restError(async () => client.releaseKey('release-mutable', await attestationToken()))).statusCode, 403);
  assert.ok((await client.releaseKey('release-mutable', await attestationToken({ claims: { 'x-ms-attestation-type': 'tdxvm' } }))).value);
  const refused = await restError(() => client.updateKeyProperties('release-mutable', mutable.properties.version!, { releasePolicy: policyFor(authority) }));
  assert.equal(refused.statusCode, 400);
  assert.match(refused.message, /immutable/);
  const current = await client.getKey('release-mutable');
  assert.equal(current.properties.releasePolicy?.immutable, true);
  const rotated = await client.rotateKey('release-mutable');
  assert.equal(rotated.properties.exportable, true);
  assert.equal(rotated.properties.releasePolicy?.immutable, true);
  // Disabled keys are not released.
  await client.updateKeyProperties('release-mutable', rotated.properties.version!, { enabled: false });
  const disabled = await restError(async () => client.releaseKey('release-mutable', await attestationToken({ claims: { 'x-ms-attestation-type': 'tdxvm' } })));
  assert.equal(disabled.statusCode, 403);
});
