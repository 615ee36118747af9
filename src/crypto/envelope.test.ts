import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { seal, open, createKeyring, EnvelopeError } from './envelope.js';

const key = crypto.randomBytes(32);

test('sealed values open only under their own identity', () => {
  const sealed = seal(key, 'v1/secrets/db/abc', Buffer.from('hunter2'));
  assert.equal(open(key, 'v1/secrets/db/abc', sealed).toString(), 'hunter2');
  assert.throws(() => open(key, 'v1/secrets/db/abd', sealed), EnvelopeError);
  assert.throws(() => open(key, 'v2/secrets/db/abc', sealed), EnvelopeError);
});

test('ciphertext does not contain the plaintext and is not deterministic', () => {
  const a = seal(key, 'id', Buffer.from('plaintext-marker-123'));
  const b = seal(key, 'id', Buffer.from('plaintext-marker-123'));
  assert.ok(!a.includes(Buffer.from('plaintext-marker-123')));
  assert.notDeepEqual(a, b);
});

test('tampering with any byte is detected', () => {
  const sealed = seal(key, 'id', Buffer.from('value'));
  for (const i of [0, 5, 20, sealed.length - 1]) {
    const copy = Buffer.from(sealed);
    copy[i] ^= 1;
    assert.throws(() => open(key, 'id', copy), EnvelopeError);
  }
  assert.throws(() => open(key, 'id', Buffer.alloc(10)), EnvelopeError);
});

test('keyring: a vault data key is wrapped by the root key and bound to its vault', () => {
  const ring = createKeyring(key);
  const wrapped = ring.newWrappedDataKey('vault-a');
  const sealed = ring.sealValue('vault-a', wrapped, 'vault-a/secrets/x/1', Buffer.from('s3cret'));
  assert.equal(ring.openValue('vault-a', wrapped, 'vault-a/secrets/x/1', sealed).toString(), 's3cret');
  // The same wrapped key presented for another vault does not unwrap.
  assert.throws(() => createKeyring(key).openValue('vault-b', wrapped, 'vault-a/secrets/x/1', sealed), EnvelopeError);
  // A different root key cannot unwrap the data key.
  assert.throws(() => createKeyring(crypto.randomBytes(32)).openValue('vault-a', wrapped, 'vault-a/secrets/x/1', sealed), EnvelopeError);
});

test('keyring: system purposes use independent keys', () => {
  const ring = createKeyring(key);
  const sealed = ring.sealSystem('backup', 'b', Buffer.from('x'));
  assert.equal(ring.openSystem('backup', 'b', sealed).toString(), 'x');
  assert.throws(() => ring.openSystem('signing-keys', 'b', sealed), EnvelopeError);
});
