import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { RestError } from '@azure/core-rest-pipeline';
import { KeyClient, type JsonWebKey } from '@azure/keyvault-keys';
import type * as Pkcs11Types from 'pkcs11js';
import { startTestServer, type TestServer } from '../support/server.js';
import { dataPlaneToken, rawRequest } from '../support/raw-http.js';

/**
 * Premium-vault HSM keys in a SoftHSM2 token through PKCS#11: generated in the token as sensitive, non-extractable
 * objects, every private operation run there, and every signature/ciphertext checked by node:crypto from the public
 * key alone. Skipped when SoftHSM2 (Debian's softhsm2) is not installed.
 */
const MODULE = '/usr/lib/softhsm/libsofthsm2.so';
const available = fs.existsSync(MODULE) && fs.existsSync('/usr/bin/softhsm2-util');
const PIN = '246810';
const VAULT = 'hsmvault';
const API = 'api-version=2025-07-01';

let server: TestServer;
let client: KeyClient;
let tokenDir: string;

before(async () => {
  if (!available) return;
  // A token of this test's own: SoftHSM2 reads its configuration from SOFTHSM2_CONF when the module initializes.
  tokenDir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-softhsm-'));
  fs.mkdirSync(path.join(tokenDir, 'tokens'));
  fs.writeFileSync(path.join(tokenDir, 'softhsm2.conf'), `directories.tokendir = ${tokenDir}/tokens\nobjectstore.backend = file\n`);
  process.env.SOFTHSM2_CONF = path.join(tokenDir, 'softhsm2.conf');
  execFileSync('softhsm2-util', ['--init-token', '--free', '--label', 'coffer-test', '--so-pin', '135791', '--pin', PIN], { stdio: 'ignore' });
  server = await startTestServer({ pkcs11: { module: MODULE, tokenLabel: 'coffer-test', pin: PIN } });
  await server.createVault(VAULT, { sku: { family: 'A', name: 'premium' } });
  await server.createVault('hsmstandard');
  client = new KeyClient(server.vaultUrl(VAULT), server.adminCredential, { retryOptions: { maxRetries: 0 } });
});
after(async () => {
  await server?.close();
  if (tokenDir) fs.rmSync(tokenDir, { recursive: true, force: true });
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
  // The blob holds token references only: it restores where the token has the key (after a purge of the name here).
  await (await client.beginDeleteKey('hsm-p-256')).pollUntilDone();
  await client.purgeDeletedKey('hsm-p-256');
  const restored = await client.restoreKeyBackup(blob!);
  assert.equal(restored.keyType, 'EC-HSM');

  const pkcs11js = createRequire(import.meta.url)('pkcs11js') as typeof Pkcs11Types;
  const p11 = new pkcs11js.PKCS11();
  p11.load(MODULE);
  try {
    p11.C_Initialize();
  } catch { /* the server in this process initialised the module already */ }
  const slot = p11.C_GetSlotList(true).find((s) => p11.C_GetTokenInfo(s).label.trim() === 'coffer-test')!;
  const session = p11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION);
  p11.C_FindObjectsInit(session, [{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY }]);
  const handles = p11.C_FindObjects(session, 100);
  p11.C_FindObjectsFinal(session);
  assert.equal(handles.length, 5, 'RSA ×2 (rotated), EC ×3');
  for (const h of handles) {
    const [sensitive, extractable, neverExtractable] = p11.C_GetAttributeValue(session, h,
      [{ type: pkcs11js.CKA_SENSITIVE }, { type: pkcs11js.CKA_EXTRACTABLE }, { type: pkcs11js.CKA_NEVER_EXTRACTABLE }]);
    assert.deepEqual([sensitive.value, extractable.value, neverExtractable.value].map((v) => (v as Buffer)[0]), [1, 0, 1]);
  }
  p11.C_CloseSession(session);
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
