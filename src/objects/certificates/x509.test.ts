import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { CertificateInputError, certificateFacts, issueSelfSigned, parsePem, parsePfx, secretValue, PEM, PKCS12 } from './x509.js';
import { addMonths } from './policy.js';

const openssl = (args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] });

function opensslPfx(extra: string[] = []) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-x509-'));
  const f = (n: string) => path.join(dir, n);
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('k'), '-out', f('c'), '-days', '2', '-subj', '/CN=unit']);
  openssl(['pkcs12', '-export', '-inkey', f('k'), '-in', f('c'), '-out', f('p'), '-passout', 'pass:pw', ...extra]);
  const result = { pfx: fs.readFileSync(f('p')), cert: fs.readFileSync(f('c')), key: fs.readFileSync(f('k'), 'utf8') };
  fs.rmSync(dir, { recursive: true, force: true });
  return result;
}

test('self-signed certificate carries the requested subject, SANs, EKUs, key usage and validity', async () => {
  const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const notBefore = new Date('2030-01-31T00:00:00Z');
  const der = await issueSelfSigned(privateKey, {
    subject: 'CN=unit.test', dnsNames: ['a.test'], emails: ['ops@unit.test'], ekus: ['1.3.6.1.5.5.7.3.2'],
    keyUsage: ['digitalSignature'], notBefore, notAfter: addMonths(notBefore, 1),
  });
  const facts = certificateFacts(der);
  assert.equal(facts.subject, 'CN=unit.test');
  assert.deepEqual(facts.dnsNames, ['a.test']);
  assert.deepEqual(facts.emails, ['ops@unit.test']);
  assert.deepEqual(facts.ekus, ['1.3.6.1.5.5.7.3.2']);
  assert.deepEqual(facts.keyUsage, ['digitalSignature']);
  assert.equal(new Date(facts.exp * 1000).toISOString(), '2030-02-28T00:00:00.000Z');
  assert.ok(new crypto.X509Certificate(der).verify(crypto.createPublicKey(privateKey)));
});

test('PFX from OpenSSL (default PBES2 and legacy) opens with its password, and only with it', () => {
  for (const extra of [[], ['-legacy']]) {
    let made;
    try { made = opensslPfx(extra); } catch { continue; /* -legacy needs OpenSSL 3's legacy provider */ }
    const parsed = parsePfx(made.pfx, 'pw');
    assert.deepEqual(parsed.chain[0], new crypto.X509Certificate(made.cert).raw);
    assert.throws(() => parsePfx(made.pfx, 'nope'), CertificateInputError);
  }
  assert.throws(() => parsePfx(Buffer.from('junk'), 'pw'), CertificateInputError);
});

test('secret values round-trip: PFX without password and PEM', () => {
  const made = opensslPfx();
  const { key, chain } = parsePem(made.key + made.cert.toString());
  const pfx = Buffer.from(secretValue(PKCS12, chain, key), 'base64');
  assert.deepEqual(parsePfx(pfx, undefined).chain, chain);
  const pem = secretValue(PEM, chain, key);
  assert.deepEqual(parsePem(pem).chain, chain);
  assert.doesNotMatch(secretValue(PEM, chain, undefined), /PRIVATE KEY/);
});
