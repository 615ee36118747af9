import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { RestError } from '@azure/core-rest-pipeline';
import { KeyClient, type JsonWebKey } from '@azure/keyvault-keys';
import { startTestServer, type TestServer } from '../support/server.js';
import { createSoftHsmToken, inspectToken, softHsmAvailable } from '../support/softhsm.js';
import { dataPlaneToken, rawRequest } from '../support/raw-http.js';

/**
 * Premium-vault HSM keys in a SoftHSM2 token through PKCS#11: generated in the token as sensitive, non-extractable
 * objects, every private operation run there, and every signature/ciphertext checked by node:crypto from the public
 * key alone. Skipped when SoftHSM2 (Debian's softhsm2) is not installed.
 */
const available = softHsmAvailable;
const PIN = '246810';
const VAULT = 'hsmvault';
const API = 'api-version=2025-07-01';

let server: TestServer;
let client: KeyClient;
let token: ReturnType<typeof createSoftHsmToken> | undefined;

before(async () => {
  if (!available) return;
  token = createSoftHsmToken('coffer-test', PIN);
  server = await startTestServer({ pkcs11: token.options });
  await server.createVault(VAULT, { sku: { family: 'A', name: 'premium' } });
  await server.createVault('hsmvault2', { sku: { family: 'A', name: 'premium' } });
  await server.createVault('hsmstandard');
  client = new KeyClient(server.vaultUrl(VAULT), server.adminCredential, { retryOptions: { maxRetries: 0 } });
});
after(async () => {
  await server?.close();
  token?.remove();
});

const b64u = (bytes?: Uint8Array) => Buffer.from(bytes!).toString('base64url');
const publicKeyOf = (jwk: JsonWebKey) => jwk.kty === 'RSA-HSM'
  ? crypto.createPublicKey({ key: { kty: 'RSA', n: b64u(jwk.n), e: b64u(jwk.e) }, format: 'jwk' })
  : crypto.createPublicKey({ key: { kty: 'EC', crv: jwk.crv === 'P-256K' ? 'secp256k1' : jwk.crv!, x: b64u(jwk.x), y: b64u(jwk.y) }, format: 'jwk' });

/** A key operation over raw REST (the SDK would do the public half locally). */
async function operate(kid: string, op: string, body: object) {
  const res = await rawRequest(`${kid}/${op}?${API}`, { method: 'POST', token: await dataPlaneToken(server), body });
  assert.equal(res.status, 200, res.text);
  return res.json;
}

test('RSA-HSM: every signature and decryption runs in the token and interoperates with OpenSSL', { skip: !available && 'softhsm2 is not installed' }, async () => {
  const key = await client.createKey('hsm-rsa', 'RSA-HSM', { keySize: 2048 });
  assert.equal(key.keyType, 'RSA-HSM');
  assert.equal(key.key!.d, undefined);
  const pub = publicKeyOf(key.key!);
  const data = Buffer.from('signed inside the HSM');
  for (const [alg, hash] of [['RS256', 'sha256'], ['RS384', 'sha384'], ['RS512', 'sha512'], ['PS256', 'sha256'], ['PS384', 'sha384'], ['PS512', 'sha512']]) {
    const digest = crypto.createHash(hash).update(data).digest();
    const signed = await operate(key.id!, 'sign', { alg, value: digest.toString('base64url') });
    const options = alg.startsWith('PS') ? { key: pub, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: digest.length } : { key: pub };
    assert.equal(crypto.verify(hash, data, options, Buffer.from(signed.value, 'base64url')), true, alg);
    assert.equal((await operate(key.id!, 'verify', { alg, digest: digest.toString('base64url'), value: signed.value })).value, true);
  }
  const secret = crypto.randomBytes(32);
  // SoftHSM2 implements RSA-OAEP with SHA-1 only: RSA-OAEP-256 decryption is refused with a clear 400 (encryption,
  // a public-key operation, works and OpenSSL opens it).
  const oaep256 = await operate(key.id!, 'encrypt', { alg: 'RSA-OAEP-256', value: secret.toString('base64url') });
  assert.equal(Buffer.from(oaep256.value, 'base64url').length, 256);
  const refused = await rawRequest(`${key.id}/decrypt?${API}`, { method: 'POST', token: await dataPlaneToken(server), body: { alg: 'RSA-OAEP-256', value: oaep256.value } });
  assert.equal(refused.status, 400);
  assert.match(refused.json.error.message, /not supported by this deployment's HSM/);
  for (const [alg, padding, oaepHash] of [['RSA-OAEP', crypto.constants.RSA_PKCS1_OAEP_PADDING, 'sha1'],
    ['RSA1_5', crypto.constants.RSA_PKCS1_PADDING, undefined]] as const) {
    const ciphertext = crypto.publicEncrypt({ key: pub, padding, oaepHash }, secret);
    const opened = await operate(key.id!, 'unwrapkey', { alg, value: ciphertext.toString('base64url') });
    assert.deepEqual(Buffer.from(opened.value, 'base64url'), secret, alg);
    const wrapped = await operate(key.id!, 'wrapkey', { alg, value: secret.toString('base64url') });
    assert.deepEqual(Buffer.from((await operate(key.id!, 'decrypt', { alg, value: wrapped.value })).value, 'base64url'), secret);
  }
});

test('EC-HSM: P-256, P-384, P-521 signatures verified by OpenSSL', { skip: !available && 'softhsm2 is not installed' }, async () => {
  for (const [curve, alg, hash] of [['P-256', 'ES256', 'sha256'], ['P-384', 'ES384', 'sha384'], ['P-521', 'ES512', 'sha512']] as const) {
    const key = await client.createKey(`hsm-${curve.toLowerCase()}`, 'EC-HSM', { curve });
    assert.equal(key.key!.crv, curve);
    const data = crypto.randomBytes(64);
    const digest = crypto.createHash(hash).update(data).digest();
    const signed = await operate(key.id!, 'sign', { alg, value: digest.toString('base64url') });
    assert.equal(crypto.verify(hash, data, { key: publicKeyOf(key.key!), dsaEncoding: 'ieee-p1363' }, Buffer.from(signed.value, 'base64url')), true, alg);
  }
});

test('the token holds the private keys as sensitive and non-extractable; rotate and backup stay in the token', { skip: !available && 'softhsm2 is not installed' }, async () => {
  const rotated = await client.rotateKey('hsm-rsa');
  assert.equal(rotated.keyType, 'RSA-HSM');
  const blob = await client.backupKey('hsm-p-256');
  // The blob holds token references only: it restores where the token holds the key — here into another premium vault
  // of the same deployment, where the restored key signs in the token.
  const elsewhere = new KeyClient(server.vaultUrl('hsmvault2'), server.adminCredential, { retryOptions: { maxRetries: 0 } });
  const restored = await elsewhere.restoreKeyBackup(blob!);
  assert.equal(restored.keyType, 'EC-HSM');
  const digest = crypto.createHash('sha256').update('restored').digest();
  const signed = await operate(restored.id!, 'sign', { alg: 'ES256', value: digest.toString('base64url') });
  assert.equal(crypto.verify('sha256', Buffer.from('restored'), { key: publicKeyOf(restored.key!), dsaEncoding: 'ieee-p1363' }, Buffer.from(signed.value, 'base64url')), true);

  const view = inspectToken('coffer-test', PIN);
  try {
    const keys = view.objects('private');
    assert.equal(keys.length, 5, 'RSA ×2 (rotated), EC ×3');
    for (const k of keys) assert.deepEqual([k.sensitive, k.extractable, k.neverExtractable], [true, false, true]);
  } finally {
    view.close();
  }
});

test('HSM key types: a standard vault refuses them; HSM import puts the key into the token', { skip: !available && 'softhsm2 is not installed' }, async () => {
  const standard = new KeyClient(server.vaultUrl('hsmstandard'), server.adminCredential, { retryOptions: { maxRetries: 0 } });
  const err = await standard.createKey('x', 'EC-HSM').catch((e: RestError) => e);
  assert.ok(err instanceof RestError);
  assert.equal(err.statusCode, 400);
  assert.match(err.message, /Hardware key operation not allowed on standard vault/);
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = privateKey.export({ format: 'jwk' });
  const bytes = (v?: string) => new Uint8Array(Buffer.from(v!, 'base64url'));
  const ecJwk = { kty: 'EC', crv: 'P-256', x: bytes(jwk.x), y: bytes(jwk.y), d: bytes(jwk.d) } as const;
  const refused = await standard.importKey('imp', ecJwk, { hardwareProtected: true }).catch((e: RestError) => e);
  assert.ok(refused instanceof RestError);
  assert.equal(refused.statusCode, 400);

  const imported = await client.importKey('imp', ecJwk, { hardwareProtected: true });
  assert.equal(imported.keyType, 'EC-HSM');
  assert.equal(imported.key!.d, undefined);
  const data = Buffer.from('signed by an imported HSM key');
  const signed = await operate(imported.id!, 'sign', { alg: 'ES256', value: crypto.createHash('sha256').update(data).digest().toString('base64url') });
  assert.equal(crypto.verify('sha256', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(signed.value, 'base64url')), true);

  const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const r = rsa.privateKey.export({ format: 'jwk' });
  const rsaImported = await client.importKey('imp-rsa', {
    kty: 'RSA', n: bytes(r.n), e: bytes(r.e), d: bytes(r.d), p: bytes(r.p), q: bytes(r.q), dp: bytes(r.dp), dq: bytes(r.dq), qi: bytes(r.qi),
  }, { hardwareProtected: true });
  assert.equal(rsaImported.keyType, 'RSA-HSM');
  const secret = crypto.randomBytes(32);
  const ciphertext = crypto.publicEncrypt({ key: rsa.publicKey, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, secret);
  const opened = await operate(rsaImported.id!, 'unwrapkey', { alg: 'RSA-OAEP', value: ciphertext.toString('base64url') });
  assert.deepEqual(Buffer.from(opened.value, 'base64url'), secret);
});
