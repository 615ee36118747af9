import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import {
  SIGNATURE_ALGORITHMS, decrypt, encrypt, generateSoftwareKey, publicJwk, publicKeyFromJwk, signDigest, verifyDigest,
  type CurveName,
} from './key-crypto.js';

/** Each algorithm against OpenSSL's own one-shot implementation, from the public JWK alone. */
const data = Buffer.from('the message');

for (const [alg, spec] of Object.entries(SIGNATURE_ALGORITHMS)) {
  test(`${alg} signatures interoperate with node:crypto both ways`, async () => {
    const key = spec.kty === 'RSA'
      ? await generateSoftwareKey({ kty: 'RSA', size: 2048 })
      : await generateSoftwareKey({ kty: 'EC', curve: spec.curve as CurveName });
    const pub = publicKeyFromJwk(publicJwk(key));
    const digest = crypto.createHash(spec.hash).update(data).digest();
    const options = spec.kty === 'EC' ? { dsaEncoding: 'ieee-p1363' as const }
      : spec.scheme === 'pss' ? { padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: digest.length } : {};
    const ours = await signDigest(alg, key, digest);
    assert.equal(crypto.verify(spec.hash, data, { key: pub, ...options }, ours), true);
    const theirs = crypto.sign(spec.hash, data, { key, ...options });
    assert.equal(await verifyDigest(alg, pub, digest, theirs), true);
    const tampered = Buffer.from(theirs);
    tampered[5] ^= 1;
    assert.equal(await verifyDigest(alg, pub, digest, tampered), false);
  });
}

for (const [alg, oaepHash] of [['RSA1_5', undefined], ['RSA-OAEP', 'sha1'], ['RSA-OAEP-256', 'sha256']] as const) {
  test(`${alg} encryption interoperates with node:crypto both ways`, async () => {
    const key = await generateSoftwareKey({ kty: 'RSA', size: 2048 });
    const pub = publicKeyFromJwk(publicJwk(key));
    const secret = crypto.randomBytes(32);
    const padding = oaepHash ? crypto.constants.RSA_PKCS1_OAEP_PADDING : crypto.constants.RSA_PKCS1_PADDING;
    assert.deepEqual(decrypt(alg, key, crypto.publicEncrypt({ key: pub, padding, oaepHash }, secret)), secret);
    const ours = encrypt(alg, pub, secret);
    if (oaepHash) assert.deepEqual(crypto.privateDecrypt({ key, padding, oaepHash }, ours), secret);
    else assert.deepEqual(decrypt(alg, key, ours), secret);
    assert.throws(() => decrypt(alg, key, crypto.randomBytes(256)));
  });
}

test('ECDSA over a digest: many signatures per curve all verify in OpenSSL (leading zero bytes, low S for P-256K)', async () => {
  for (const [curve, hash] of [['P-256', 'sha256'], ['P-384', 'sha384'], ['P-521', 'sha512'], ['P-256K', 'sha256']] as const) {
    const key = await generateSoftwareKey({ kty: 'EC', curve });
    const pub = publicKeyFromJwk(publicJwk(key));
    const alg = Object.entries(SIGNATURE_ALGORITHMS).find(([, s]) => s.kty === 'EC' && s.curve === curve)![0];
    for (let i = 0; i < 100; i++) {
      const message = crypto.randomBytes(16);
      const signature = await signDigest(alg, key, crypto.createHash(hash).update(message).digest());
      assert.equal(crypto.verify(hash, message, { key: pub, dsaEncoding: 'ieee-p1363' }, signature), true, `${curve} #${i}`);
      if (curve === 'P-256K') {
        const s = BigInt(`0x${signature.subarray(32).toString('hex')}`);
        assert.ok(s <= 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141n >> 1n, 'low S');
      }
    }
  }
});
