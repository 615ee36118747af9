import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import crypto, { type KeyObject } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHttpHeaders, RestError, type PipelinePolicy } from '@azure/core-rest-pipeline';
import { CryptographyClient, KeyClient, type JsonWebKey, type KeyVaultKey } from '@azure/keyvault-keys';
import { startTestServer, type TestServer } from '../support/server.js';
import { dataPlaneToken, managementToken, rawRequest } from '../support/raw-http.js';

/**
 * The keys data plane driven end to end by KeyClient and CryptographyClient against a real Coffer. Every signature
 * and ciphertext Coffer produces is checked by node:crypto (OpenSSL) from the public JWK alone, and every signature
 * and ciphertext OpenSSL produces is verified/decrypted by Coffer.
 */
let server: TestServer;
let client: KeyClient;
let otherClient: KeyClient;
const VAULT = 'keysvault';
const OTHER_VAULT = 'keysother';
const PREMIUM_VAULT = 'keyspremium';
const VERSION = /^[0-9a-f]{32}$/;
const API = 'api-version=2025-07-01';

before(async () => {
  server = await startTestServer();
  await server.createVault(VAULT);
  await server.createVault(OTHER_VAULT);
  await server.createVault(PREMIUM_VAULT, { sku: { family: 'A', name: 'premium' } });
  client = keyClient(VAULT);
  otherClient = keyClient(OTHER_VAULT);
});
after(() => server.close());

/** Retries honour Retry-After: this suite creates keys faster than Azure's 20 creates per 10 s, as the throttle enforces. */
const keyClient = (vault: string) =>
  new KeyClient(server.vaultUrl(vault), server.adminCredential, { retryOptions: { maxRetries: 3 } });

/**
 * A CryptographyClient in the SDK's remote-only mode. The SDK fetches the key first and, when allowed, does
 * encrypt/wrapKey/verifyData locally; its documented fallback when the `get` permission is missing (a 403) is to send
 * every operation to the vault. Answering only that GET with 403 here makes each operation reach Coffer.
 */
const remoteOnly = (kid: string) => {
  const denyGet: PipelinePolicy = {
    name: 'deny-get-key',
    sendRequest: async (request, next) => request.method === 'GET'
      ? { request, status: 403, headers: createHttpHeaders({ 'content-type': 'application/json' }), bodyAsText: '{"error":{"code":"Forbidden","message":"test: get denied"}}' }
      : next(request),
  };
  return new CryptographyClient(kid, server.adminCredential, {
    retryOptions: { maxRetries: 0 }, additionalPolicies: [{ policy: denyGet, position: 'perCall' }],
  });
};
/** The SDK's default hybrid mode: local public-key operations where it can, the vault otherwise. */
const hybrid = (kid: string) => new CryptographyClient(kid, server.adminCredential, { retryOptions: { maxRetries: 0 } });

async function restError(action: () => Promise<unknown>): Promise<RestError & { details?: any }> {
  try {
    await action();
  } catch (err) {
    assert.ok(err instanceof RestError, `expected a RestError, got ${String(err)}`);
    return err as RestError & { details?: any };
  }
  assert.fail('expected the operation to fail');
}
const innerCode = (err: RestError & { details?: any }): string | undefined => err.details?.error?.innerError?.code;

const b64u = (bytes?: Uint8Array) => Buffer.from(bytes!).toString('base64url');
const NODE_CURVE: Record<string, string> = { 'P-256': 'P-256', 'P-384': 'P-384', 'P-521': 'P-521', 'P-256K': 'secp256k1' };

/** The public key as OpenSSL sees it, built from the SDK's JsonWebKey only. */
function publicKeyOf(jwk: JsonWebKey): KeyObject {
  if (jwk.kty === 'RSA' || jwk.kty === 'RSA-HSM') return crypto.createPublicKey({ key: { kty: 'RSA', n: b64u(jwk.n), e: b64u(jwk.e) }, format: 'jwk' });
  return crypto.createPublicKey({ key: { kty: 'EC', crv: NODE_CURVE[jwk.crv!], x: b64u(jwk.x), y: b64u(jwk.y) }, format: 'jwk' });
}

/** A node-generated private key as the SDK's JsonWebKey, for import. */
function toSdkJwk(key: KeyObject): JsonWebKey {
  const jwk = key.export({ format: 'jwk' });
  const bytes = (v?: string) => (v ? new Uint8Array(Buffer.from(v, 'base64url')) : undefined);
  if (jwk.kty === 'RSA') {
    return { kty: 'RSA', n: bytes(jwk.n), e: bytes(jwk.e), d: bytes(jwk.d), p: bytes(jwk.p), q: bytes(jwk.q), dp: bytes(jwk.dp), dq: bytes(jwk.dq), qi: bytes(jwk.qi) };
  }
  const crv = Object.entries(NODE_CURVE).find(([, n]) => n === jwk.crv)![0];
  return { kty: 'EC', crv: crv as JsonWebKey['crv'], x: bytes(jwk.x), y: bytes(jwk.y), d: bytes(jwk.d) };
}

const SIGNATURES = {
  RS256: 'sha256', RS384: 'sha384', RS512: 'sha512', PS256: 'sha256', PS384: 'sha384', PS512: 'sha512',
  ES256: 'sha256', ES384: 'sha384', ES512: 'sha512', ES256K: 'sha256',
} as const;
type SignatureAlgorithm = keyof typeof SIGNATURES;
const EC_ALGORITHM: Record<string, SignatureAlgorithm> = { 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512', 'P-256K': 'ES256K' };
const RSA_ALGORITHMS: SignatureAlgorithm[] = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];

/** node:crypto's options for an algorithm: JWS signatures are R||S for ECDSA, PSS salt = hash length. */
function verifyOptions(alg: SignatureAlgorithm, key: KeyObject) {
  if (alg.startsWith('ES')) return { key, dsaEncoding: 'ieee-p1363' as const };
  if (alg.startsWith('PS')) return { key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: crypto.constants.RSA_PSS_SALTLEN_DIGEST };
  return { key };
}

/** Coffer signs a digest; OpenSSL verifies it from the public JWK; a tampered message fails. */
async function assertCofferSignatureVerifies(key: KeyVaultKey, alg: SignatureAlgorithm) {
  const data = crypto.randomBytes(100);
  const digest = crypto.createHash(SIGNATURES[alg]).update(data).digest();
  const signed = await remoteOnly(key.id!).sign(alg, digest);
  assert.equal(signed.keyID, key.id);
  const pub = publicKeyOf(key.key!);
  assert.equal(crypto.verify(SIGNATURES[alg], data, verifyOptions(alg, pub), Buffer.from(signed.result)), true, `${alg} signature must verify`);
  assert.equal(crypto.verify(SIGNATURES[alg], Buffer.concat([data, Buffer.from('x')]), verifyOptions(alg, pub), Buffer.from(signed.result)), false);
}

/** OpenSSL signs with the private key; Coffer (holding the imported key) verifies, and rejects a tampered signature. */
async function assertOpenSslSignatureVerifiesInCoffer(key: KeyVaultKey, privateKey: KeyObject, alg: SignatureAlgorithm) {
  const data = crypto.randomBytes(100);
  const digest = crypto.createHash(SIGNATURES[alg]).update(data).digest();
  const signature = crypto.sign(SIGNATURES[alg], data, verifyOptions(alg, privateKey) as crypto.SignKeyObjectInput);
  const cc = remoteOnly(key.id!);
  assert.equal((await cc.verify(alg, digest, signature)).result, true, `${alg}: Coffer must accept OpenSSL's signature`);
  const tampered = Buffer.from(signature);
  tampered[tampered.length - 1] ^= 1;
  assert.equal((await cc.verify(alg, digest, tampered)).result, false);
}

describe('create and get', () => {
  const rsa: [string, number, number?][] = [['rsa-2048', 2048], ['rsa-3072', 3072], ['rsa-4096', 4096], ['rsa-exp3', 2048, 3]];
  for (const [name, size, exponent] of rsa) {
    test(`RSA ${size}${exponent ? ` e=${exponent}` : ''}: public JWK only, verifiable signatures`, async () => {
      if (exponent) {
        // KeyClient 4.10 drops `publicExponent` from its request, so the wire field is sent directly.
        const res = await rawRequest(`${server.vaultUrl(VAULT)}/keys/${name}/create?${API}`, {
          method: 'POST', token: await dataPlaneToken(server), body: { kty: 'RSA', key_size: size, public_exponent: exponent },
        });
        assert.equal(res.status, 200);
      }
      const key = exponent ? await client.getKey(name) : await client.createRsaKey(name, { keySize: size });
      assert.equal(key.name, name);
      assert.equal(key.keyType, 'RSA');
      assert.match(key.properties.version!, VERSION);
      assert.equal(key.id, `${server.vaultUrl(VAULT)}/keys/${name}/${key.properties.version}`);
      assert.deepEqual(key.keyOperations, ['encrypt', 'decrypt', 'sign', 'verify', 'wrapKey', 'unwrapKey']);
      assert.equal(key.key!.n!.length * 8, size);
      assert.equal(BigInt(`0x${Buffer.from(key.key!.e!).toString('hex')}`), BigInt(exponent ?? 65537));
      assert.equal(key.key!.d, undefined);
      assert.equal(publicKeyOf(key.key!).asymmetricKeyDetails!.modulusLength, size);
      const got = await client.getKey(name);
      assert.deepEqual(Buffer.from(got.key!.n!), Buffer.from(key.key!.n!));
      assert.equal(got.properties.recoveryLevel, 'Recoverable+Purgeable');
      await assertCofferSignatureVerifies(key, 'PS256');
    });
  }

  for (const curve of ['P-256', 'P-384', 'P-521', 'P-256K'] as const) {
    test(`EC ${curve}: public JWK only, verifiable signatures`, async () => {
      const name = `ec-${curve.toLowerCase()}`;
      const key = await client.createEcKey(name, { curve });
      assert.equal(key.keyType, 'EC');
      assert.equal(key.key!.crv, curve);
      assert.deepEqual(key.keyOperations, ['sign', 'verify']);
      assert.equal(key.key!.d, undefined);
      assert.equal(publicKeyOf(key.key!).asymmetricKeyDetails!.namedCurve, crypto.createPublicKey({
        key: { kty: 'EC', crv: NODE_CURVE[curve], x: b64u(key.key!.x), y: b64u(key.key!.y) }, format: 'jwk',
      }).asymmetricKeyDetails!.namedCurve);
      await assertCofferSignatureVerifies(key, EC_ALGORITHM[curve]);
    });
  }

  test('the wire JSON of every read carries no private member', async () => {
    const token = await dataPlaneToken(server);
    const allowed = new Set(['kid', 'kty', 'key_ops', 'n', 'e', 'crv', 'x', 'y']);
    for (const name of ['rsa-2048', 'ec-p-256k']) {
      for (const url of [`/keys/${name}`, `/keys/${name}/versions`]) {
        const res = await rawRequest(`${server.vaultUrl(VAULT)}${url}?${API}`, { token });
        assert.equal(res.status, 200);
        for (const jwk of res.json.key ? [res.json.key] : []) {
          assert.deepEqual(Object.keys(jwk).filter((k) => !allowed.has(k)), []);
        }
        assert.doesNotMatch(res.text, /"(d|p|q|dp|dq|qi)"/);
      }
    }
  });

  test('createKey with key_ops, tags, attributes, exportable flag; an HSM type in a standard vault is refused', async () => {
    const nbf = new Date(Date.now() - 60_000);
    const exp = new Date(Date.now() + 86_400_000);
    const key = await client.createKey('with-props', 'RSA', {
      keyOps: ['sign', 'verify'], tags: { app: 'a' }, notBefore: nbf, expiresOn: exp, enabled: true,
    });
    assert.deepEqual(key.keyOperations, ['sign', 'verify']);
    assert.deepEqual(key.properties.tags, { app: 'a' });
    assert.equal(key.properties.notBefore!.getTime(), Math.floor(nbf.getTime() / 1000) * 1000);
    assert.equal(key.properties.expiresOn!.getTime(), Math.floor(exp.getTime() / 1000) * 1000);
    for (const kty of ['RSA-HSM', 'EC-HSM'] as const) {
      const err = await restError(() => client.createKey('hsm-key', kty));
      assert.equal(err.statusCode, 400);
      assert.equal(err.code, 'BadParameter');
      assert.match(err.message, /Hardware key operation not allowed on standard vault/);
    }
    const err = await restError(() => client.createRsaKey('hsm-flag', { hsm: true }));
    assert.equal(err.statusCode, 400);
    await assert.rejects(client.getKey('hsm-key'), (e: RestError) => e.statusCode === 404);
  });

  test('bad create parameters are 400 BadParameter', async () => {
    const res = await rawRequest(`${server.vaultUrl(VAULT)}/keys/bad/create?${API}`, {
      method: 'POST', token: await dataPlaneToken(server), body: { kty: 'RSA', public_exponent: 5 },
    });
    assert.equal(res.status, 400);
    assert.equal(res.json.error.code, 'BadParameter');
    for (const bad of [() => client.createRsaKey('bad', { keySize: 1024 }),
      () => client.createKey('bad', 'oct' as any), () => client.createKey('bad', 'RSA', { keyOps: ['fly' as any] }),
      () => client.createEcKey('bad', { curve: 'P-192' as any }), () => client.createRsaKey('bad_name')]) {
      const err = await restError(bad);
      assert.equal(err.statusCode, 400);
      assert.equal(err.code, 'BadParameter');
    }
    await assert.rejects(client.getKey('bad'), (e: RestError) => e.statusCode === 404 && e.code === 'KeyNotFound');
  });
});

describe('signatures: every algorithm, both directions, from the public key alone', () => {
  test('RSA: RS256/384/512 and PS256/384/512', async () => {
    const privateKey = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const imported = await client.importKey('imported-rsa-sig', toSdkJwk(privateKey));
    const created = await client.getKey('rsa-3072');
    for (const alg of RSA_ALGORITHMS) {
      await assertCofferSignatureVerifies(created, alg);
      await assertCofferSignatureVerifies(imported, alg);
      await assertOpenSslSignatureVerifiesInCoffer(imported, privateKey, alg);
    }
  });

  for (const curve of ['P-256', 'P-384', 'P-521', 'P-256K'] as const) {
    test(`EC ${curve}: ${EC_ALGORITHM[curve]}`, async () => {
      const privateKey = crypto.generateKeyPairSync('ec', { namedCurve: NODE_CURVE[curve] }).privateKey;
      const imported = await client.importKey(`imported-ec-${curve.toLowerCase()}`, toSdkJwk(privateKey));
      assert.equal(imported.key!.crv, curve);
      assert.deepEqual(Buffer.from(imported.key!.x!), Buffer.from(privateKey.export({ format: 'jwk' }).x!, 'base64url'));
      await assertCofferSignatureVerifies(imported, EC_ALGORITHM[curve]);
      await assertOpenSslSignatureVerifiesInCoffer(imported, privateKey, EC_ALGORITHM[curve]);
    });
  }

  test('signData/verifyData: the SDK hashes; verifyData runs locally for RSA and remotely for EC', async () => {
    const data = Buffer.from('document to sign');
    for (const [name, alg] of [['rsa-2048', 'RS512'], ['ec-p-384', 'ES384']] as const) {
      const key = await client.getKey(name);
      const cc = hybrid(key.id!);
      const signed = await cc.signData(alg, data);
      assert.equal(crypto.verify(SIGNATURES[alg], data, verifyOptions(alg, publicKeyOf(key.key!)), Buffer.from(signed.result)), true);
      assert.equal((await cc.verifyData(alg, data, signed.result)).result, true);
      assert.equal((await cc.verifyData(alg, Buffer.from('other'), signed.result)).result, false);
    }
  });
});

test('a versionless key id operates on the current version', async () => {
  const key = await client.getKey('ec-p-384');
  const digest = crypto.createHash('sha384').update('latest').digest();
  const signed = await remoteOnly(`${server.vaultUrl(VAULT)}/keys/ec-p-384`).sign('ES384', digest);
  assert.equal(crypto.verify('sha384', Buffer.from('latest'), { key: publicKeyOf(key.key!), dsaEncoding: 'ieee-p1363' }, Buffer.from(signed.result)), true);
});

describe('encryption and key wrapping', () => {
  let privateKey: KeyObject;
  let imported: KeyVaultKey;
  before(async () => {
    privateKey = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    imported = await client.importKey('imported-rsa-enc', toSdkJwk(privateKey));
  });

  /** OpenSSL decrypts what Coffer encrypted (RSA1_5 through the openssl CLI: node refuses PKCS#1 v1.5 decryption). */
  function openSslDecrypt(alg: string, ciphertext: Uint8Array): Buffer {
    if (alg === 'RSA1_5') {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-keys-'));
      try {
        fs.writeFileSync(path.join(dir, 'key.pem'), privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
        return execFileSync('openssl', ['pkeyutl', '-decrypt', '-inkey', path.join(dir, 'key.pem'), '-pkeyopt', 'rsa_padding_mode:pkcs1'], { input: Buffer.from(ciphertext) });
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }
    return crypto.privateDecrypt({ key: privateKey, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: alg === 'RSA-OAEP' ? 'sha1' : 'sha256' }, ciphertext);
  }
  const openSslEncrypt = (alg: string, jwk: JsonWebKey, plaintext: Buffer) => crypto.publicEncrypt({
    key: publicKeyOf(jwk),
    padding: alg === 'RSA1_5' ? crypto.constants.RSA_PKCS1_PADDING : crypto.constants.RSA_PKCS1_OAEP_PADDING,
    oaepHash: alg === 'RSA-OAEP-256' ? 'sha256' : 'sha1',
  }, plaintext);

  for (const alg of ['RSA1_5', 'RSA-OAEP', 'RSA-OAEP-256'] as const) {
    test(`${alg}: encrypt/decrypt and wrapKey/unwrapKey in both directions`, async () => {
      const cc = remoteOnly(imported.id!);
      const plaintext = crypto.randomBytes(32);
      const encrypted = await cc.encrypt({ algorithm: alg, plaintext });
      assert.equal(encrypted.keyID, imported.id);
      assert.deepEqual(openSslDecrypt(alg, encrypted.result), plaintext);
      assert.deepEqual(Buffer.from((await cc.decrypt({ algorithm: alg, ciphertext: encrypted.result })).result), plaintext);
      assert.deepEqual(Buffer.from((await cc.decrypt({ algorithm: alg, ciphertext: openSslEncrypt(alg, imported.key!, plaintext) })).result), plaintext);

      const wrapped = await cc.wrapKey(alg, plaintext);
      assert.deepEqual(openSslDecrypt(alg, wrapped.result), plaintext);
      assert.deepEqual(Buffer.from((await cc.unwrapKey(alg, openSslEncrypt(alg, imported.key!, plaintext))).result), plaintext);

      // The hybrid client encrypts and wraps locally where the SDK can (RSA1_5, RSA-OAEP); Coffer opens the result.
      const local = hybrid(imported.id!);
      const localEncrypted = await local.encrypt({ algorithm: alg, plaintext });
      assert.deepEqual(Buffer.from((await local.decrypt({ algorithm: alg, ciphertext: localEncrypted.result })).result), plaintext);
      const localWrapped = await local.wrapKey(alg, plaintext);
      assert.deepEqual(Buffer.from((await local.unwrapKey(alg, localWrapped.result)).result), plaintext);
    });
  }

  test('a created key (private key never left Coffer) decrypts what OpenSSL encrypted to its public JWK', async () => {
    const key = await client.getKey('rsa-4096');
    const plaintext = crypto.randomBytes(64);
    for (const alg of ['RSA1_5', 'RSA-OAEP', 'RSA-OAEP-256'] as const) {
      const result = await remoteOnly(key.id!).decrypt({ algorithm: alg, ciphertext: openSslEncrypt(alg, key.key!, plaintext) });
      assert.deepEqual(Buffer.from(result.result), plaintext);
    }
  });

  test('a local-only CryptographyClient built from the public JWK interoperates with Coffer', async () => {
    const key = await client.getKey('rsa-2048');
    const local = new CryptographyClient(key.key!);
    const plaintext = crypto.randomBytes(16);
    const encrypted = await local.encrypt({ algorithm: 'RSA-OAEP', plaintext });
    assert.deepEqual(Buffer.from((await remoteOnly(key.id!).decrypt({ algorithm: 'RSA-OAEP', ciphertext: encrypted.result })).result), plaintext);
    // The SDK verifies locally with PKCS#1 v1.5 whatever the algorithm, so RS384 (not PS*) is what it can check.
    const signed = await remoteOnly(key.id!).signData('RS384', plaintext);
    assert.equal((await local.verifyData('RS384', plaintext, signed.result)).result, true);
  });
});

describe('operation errors', () => {
  test('wrong algorithm for the key type, bad digest length, EC encryption', async () => {
    const rsa = await client.getKey('rsa-2048');
    const ec = await client.getKey('ec-p-256');
    const cases: [() => Promise<unknown>, RegExp][] = [
      [() => remoteOnly(rsa.id!).sign('ES256', Buffer.alloc(32)), /algorithm/i],
      [() => remoteOnly(ec.id!).sign('RS256', Buffer.alloc(32)), /algorithm/i],
      [() => remoteOnly(ec.id!).sign('ES384', Buffer.alloc(48)), /algorithm/i],
      [() => remoteOnly(rsa.id!).sign('RS256', Buffer.alloc(31)), /digest length/i],
      [() => remoteOnly(ec.id!).sign('ES256', Buffer.alloc(64)), /digest length/i],
      [() => remoteOnly(ec.id!).verify('ES256', Buffer.alloc(20), Buffer.alloc(64)), /digest length/i],
      [() => remoteOnly(rsa.id!).encrypt({ algorithm: 'RSA-OAEP', plaintext: Buffer.alloc(300) }), /too long/i],
      [() => remoteOnly(rsa.id!).decrypt({ algorithm: 'RSA-OAEP', ciphertext: Buffer.alloc(256, 7) }), /could not be decrypted/i],
    ];
    for (const [action, message] of cases) {
      const err = await restError(action);
      assert.equal(err.statusCode, 400);
      assert.equal(err.code, 'BadParameter');
      assert.match(err.message, message);
    }
    const ecEncrypting = await client.createEcKey('ec-with-encrypt', { keyOps: ['sign', 'encrypt'] });
    const err = await restError(() => remoteOnly(ecEncrypting.id!).encrypt({ algorithm: 'RSA-OAEP', plaintext: Buffer.alloc(8) }));
    assert.equal(err.statusCode, 400);
    assert.equal(err.code, 'BadParameter');
  });

  test('key_ops not permitted: 403 KeyOperationForbidden', async () => {
    const key = await client.getKey('with-props');
    const err = await restError(() => remoteOnly(key.id!).encrypt({ algorithm: 'RSA-OAEP', plaintext: Buffer.alloc(8) }));
    assert.equal(err.statusCode, 403);
    assert.equal(err.code, 'Forbidden');
    assert.equal(err.message, 'Operation encrypt is not permitted on this key.');
    assert.equal(innerCode(err), 'KeyOperationForbidden');
    const ec = await client.getKey('ec-p-256');
    assert.equal(innerCode(await restError(() => remoteOnly(ec.id!).wrapKey('RSA-OAEP', Buffer.alloc(8)))), 'KeyOperationForbidden');
  });

  test('a disabled key refuses every operation; expired and not-yet-valid keys refuse sign/encrypt but still decrypt/verify', async () => {
    const key = await client.createRsaKey('validity');
    const plaintext = Buffer.from('protected before expiry');
    const ciphertext = (await remoteOnly(key.id!).encrypt({ algorithm: 'RSA-OAEP-256', plaintext })).result;
    const digest = crypto.createHash('sha256').update(plaintext).digest();
    const signature = (await remoteOnly(key.id!).sign('RS256', digest)).result;

    await client.updateKeyProperties('validity', key.properties.version!, { enabled: false });
    for (const action of [() => remoteOnly(key.id!).sign('RS256', digest), () => remoteOnly(key.id!).decrypt({ algorithm: 'RSA-OAEP-256', ciphertext })]) {
      const err = await restError(action);
      assert.equal(err.statusCode, 403);
      assert.match(err.message, /not allowed on a disabled key/);
      assert.equal(innerCode(err), 'KeyDisabled');
    }

    await client.updateKeyProperties('validity', key.properties.version!, { enabled: true, expiresOn: new Date(Date.now() - 60_000) });
    const expired = await restError(() => remoteOnly(key.id!).sign('RS256', digest));
    assert.equal(expired.statusCode, 403);
    assert.match(expired.message, /expired key/);
    assert.equal(innerCode(await restError(() => remoteOnly(key.id!).encrypt({ algorithm: 'RSA-OAEP', plaintext }))), 'KeyExpired');
    assert.deepEqual(Buffer.from((await remoteOnly(key.id!).decrypt({ algorithm: 'RSA-OAEP-256', ciphertext })).result), plaintext);
    assert.equal((await remoteOnly(key.id!).verify('RS256', digest, signature)).result, true);

    await client.updateKeyProperties('validity', key.properties.version!, { expiresOn: new Date(Date.now() + 7_200_000), notBefore: new Date(Date.now() + 3_600_000) });
    const early = await restError(() => remoteOnly(key.id!).sign('RS256', digest));
    assert.equal(early.statusCode, 403);
    assert.equal(innerCode(early), 'KeyNotYetValid');
  });

  test('unknown key and version: 404 KeyNotFound', async () => {
    for (const action of [() => client.getKey('missing'), () => client.getKey('rsa-2048', { version: '0'.repeat(32) }),
      () => remoteOnly(`${server.vaultUrl(VAULT)}/keys/missing/${'0'.repeat(32)}`).sign('RS256', Buffer.alloc(32)),
      () => client.updateKeyProperties('missing', '', { enabled: false }), () => client.rotateKey('missing')]) {
      const err = await restError(action);
      assert.equal(err.statusCode, 404);
      assert.equal(err.code, 'KeyNotFound');
    }
  });
});

describe('lifecycle', () => {
  test('versions, list, update of tags, key_ops and attributes', async () => {
    const first = await client.createEcKey('versioned', { curve: 'P-256' });
    const second = await client.createEcKey('versioned', { curve: 'P-384', tags: { v: '2' } });
    assert.notEqual(first.properties.version, second.properties.version);
    assert.equal((await client.getKey('versioned')).key!.crv, 'P-384');
    assert.equal((await client.getKey('versioned', { version: first.properties.version })).key!.crv, 'P-256');
    const versions = [];
    for await (const p of client.listPropertiesOfKeyVersions('versioned')) versions.push(p.version);
    assert.deepEqual(versions, [first.properties.version, second.properties.version]);
    const names = [];
    for await (const p of client.listPropertiesOfKeys()) names.push(p.name);
    assert.ok(names.includes('versioned') && names.includes('rsa-2048'));
    let pages = 0;
    for await (const page of client.listPropertiesOfKeys().byPage({ maxPageSize: 3 })) {
      pages++;
      assert.ok(page.length <= 3);
    }
    assert.ok(pages >= 3);

    const updated = await client.updateKeyProperties('versioned', first.properties.version!, { tags: { updated: 'yes' }, keyOps: ['verify'] });
    assert.deepEqual(updated.properties.tags, { updated: 'yes' });
    assert.deepEqual(updated.keyOperations, ['verify']);
    assert.equal((await client.getKey('versioned')).properties.tags?.v, '2');
  });

  test('delete, get/list deleted, 409 on the deleted name, recover, purge', async () => {
    const key = await client.createRsaKey('deletable');
    const deleted = await (await client.beginDeleteKey('deletable')).pollUntilDone();
    assert.equal(deleted.properties.recoveryId, `${server.vaultUrl(VAULT)}/deletedkeys/deletable`);
    assert.ok(deleted.properties.deletedOn instanceof Date);
    assert.ok(deleted.properties.scheduledPurgeDate! > deleted.properties.deletedOn!);
    assert.deepEqual(Buffer.from(deleted.key!.n!), Buffer.from(key.key!.n!));
    assert.equal((await client.getDeletedKey('deletable')).name, 'deletable');
    const listed = [];
    for await (const d of client.listDeletedKeys()) listed.push(d.name);
    assert.ok(listed.includes('deletable'));
    await assert.rejects(client.getKey('deletable'), (e: RestError) => e.statusCode === 404);

    const conflict = await restError(() => client.createRsaKey('deletable'));
    assert.equal(conflict.statusCode, 409);
    assert.equal(conflict.code, 'Conflict');
    assert.equal(innerCode(conflict), 'ObjectIsDeletedButRecoverable');

    const recovered = await (await client.beginRecoverDeletedKey('deletable')).pollUntilDone();
    assert.equal(recovered.id, key.id);
    await (await client.beginDeleteKey('deletable')).pollUntilDone();
    await client.purgeDeletedKey('deletable');
    const gone = await restError(() => client.getDeletedKey('deletable'));
    assert.equal(gone.statusCode, 404);
    assert.equal(gone.code, 'KeyNotFound');
    await client.createRsaKey('deletable');
  });

  test('backup and restore into another vault: the restored key decrypts and verifies what the original produced', async () => {
    const key = await client.createRsaKey('portable');
    await client.createRsaKey('portable');
    const plaintext = Buffer.from('carried across vaults');
    const ciphertext = (await remoteOnly(key.id!).encrypt({ algorithm: 'RSA-OAEP-256', plaintext })).result;
    const blob = await client.backupKey('portable');
    assert.ok(blob && blob.length > 100);
    assert.ok(!Buffer.from(blob).toString('latin1').includes(Buffer.from(key.key!.n!).toString('base64url').slice(0, 40)), 'the backup blob is sealed');

    const restored = await otherClient.restoreKeyBackup(blob!);
    assert.equal(restored.name, 'portable');
    const versions = [];
    for await (const p of otherClient.listPropertiesOfKeyVersions('portable')) versions.push(p.version);
    assert.equal(versions.length, 2);
    const oldVersion = `${server.vaultUrl(OTHER_VAULT)}/keys/portable/${key.properties.version}`;
    assert.deepEqual(Buffer.from((await remoteOnly(oldVersion).decrypt({ algorithm: 'RSA-OAEP-256', ciphertext })).result), plaintext);

    const exists = await restError(() => client.restoreKeyBackup(blob!));
    assert.equal(exists.statusCode, 409);
    const corrupt = Buffer.from(blob!);
    corrupt[corrupt.length - 3] ^= 1;
    const bad = await restError(() => otherClient.restoreKeyBackup(corrupt));
    assert.equal(bad.statusCode, 400);
    const secretBlob = await server.secretClient(VAULT).setSecret('s', 'v').then(() => server.secretClient(VAULT).backupSecret('s'));
    assert.equal((await restError(() => otherClient.restoreKeyBackup(secretBlob!))).statusCode, 400);
  });

  test('rotate creates a new version of the same type, size and key_ops', async () => {
    const key = await client.createRsaKey('rotating', { keySize: 3072, keyOps: ['sign', 'verify'], tags: { t: '1' } });
    const rotated = await client.rotateKey('rotating');
    assert.notEqual(rotated.properties.version, key.properties.version);
    assert.equal(rotated.key!.n!.length, 384);
    assert.notDeepEqual(Buffer.from(rotated.key!.n!), Buffer.from(key.key!.n!));
    assert.deepEqual(rotated.keyOperations, ['sign', 'verify']);
    assert.deepEqual(rotated.properties.tags, { t: '1' });
    const ec = await client.rotateKey('ec-p-256k');
    assert.equal(ec.key!.crv, 'P-256K');
  });

  test('rotation policy: default, update, validation, and automatic rotation by the scheduler under an advanced clock', async () => {
    const key = await client.createEcKey('auto-rotate', { curve: 'P-256' });
    const initial = await client.getKeyRotationPolicy('auto-rotate');
    assert.equal(initial.id, `${server.vaultUrl(VAULT)}/keys/auto-rotate/rotationpolicy`);
    assert.deepEqual(initial.lifetimeActions, [{ action: 'Notify', timeBeforeExpiry: 'P30D', timeAfterCreate: undefined }]);

    const policy = await client.updateKeyRotationPolicy('auto-rotate', {
      expiresIn: 'P90D',
      lifetimeActions: [{ action: 'Rotate', timeAfterCreate: 'P30D' }, { action: 'Notify', timeBeforeExpiry: 'P10D' }],
    });
    assert.equal(policy.expiresIn, 'P90D');
    assert.deepEqual(policy.lifetimeActions?.map((a) => [a.action, a.timeAfterCreate ?? a.timeBeforeExpiry]), [['Rotate', 'P30D'], ['Notify', 'P10D']]);
    assert.ok(policy.createdOn instanceof Date);
    assert.equal((await client.getKeyRotationPolicy('auto-rotate')).expiresIn, 'P90D');

    for (const bad of [{ lifetimeActions: [{ action: 'Rotate' as const, timeAfterCreate: 'soon' }] },
      { lifetimeActions: [{ action: 'Rotate' as const, timeAfterCreate: 'P1D' }] },
      { lifetimeActions: [{ action: 'Notify' as const, timeAfterCreate: 'P30D' }] }]) {
      assert.equal((await restError(() => client.updateKeyRotationPolicy('auto-rotate', bad))).statusCode, 400);
    }

    const coffer = server.coffer;
    await coffer.scheduler.runNow();
    assert.equal((await client.getKey('auto-rotate')).properties.version, key.properties.version, 'not due yet');
    {
      // The administrator's clock advance (it runs the scheduler before answering).
      const res = await rawRequest(`${server.admin.managementEndpoint}/coffer/admin/clock/advance`, {
        method: 'POST', token: await managementToken(server), body: { advance: '31d' },
      });
      assert.equal(res.status, 200);
      const current = await client.getKey('auto-rotate');
      assert.notEqual(current.properties.version, key.properties.version);
      assert.equal(current.key!.crv, 'P-256');
      // The new version expires as the policy says, and keeps the policy.
      assert.equal(current.properties.expiresOn!.getTime() - current.properties.createdOn!.getTime(), 90 * 86_400_000);
      assert.equal((await client.getKeyRotationPolicy('auto-rotate')).expiresIn, 'P90D');
      await coffer.scheduler.runNow();
      assert.equal((await client.getKey('auto-rotate')).properties.version, current.properties.version, 'a fresh version is not rotated again');
    }
  });

  test('getRandomBytes: 1..128 bytes, fresh each call', async () => {
    const a = await client.getRandomBytes(128);
    const b = await client.getRandomBytes(128);
    assert.equal(a.length, 128);
    assert.notDeepEqual(Buffer.from(a), Buffer.from(b));
    assert.equal((await client.getRandomBytes(1)).length, 1);
    for (const count of [0, 129]) {
      const err = await restError(() => client.getRandomBytes(count));
      assert.equal(err.statusCode, 400);
    }
  });
});

describe('premium vault', () => {
  test('HSM key types without a PKCS#11 module are refused with a clear 400, software keys work', async () => {
    const premium = keyClient(PREMIUM_VAULT);
    const err = await restError(() => premium.createKey('hsm', 'RSA-HSM'));
    assert.equal(err.statusCode, 400);
    assert.match(err.message, /PKCS#11/);
    const key = await premium.createEcKey('soft', { curve: 'P-521' });
    await assertCofferSignatureVerifies(key, 'ES512');
  });
});
