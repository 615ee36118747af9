import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { RestError } from '@azure/core-rest-pipeline';
import { CertificateClient, type CertificatePolicy } from '@azure/keyvault-certificates';
import { KeyClient } from '@azure/keyvault-keys';
import { startTestServer, type TestServer } from '../support/server.js';
import { assignRole, createPrincipal, secretClientAs } from '../support/arm.js';
import { dataPlaneToken, managementToken, rawRequest } from '../support/raw-http.js';

/**
 * Certificates through the official CertificateClient: self-signed issuance (with its poller), the managed key and
 * secret of each version, the soft-delete lifecycle, and import of what OpenSSL makes. Every downloaded container is
 * opened by the openssl command line, not by our own code.
 */
const VAULT = 'certvault';
const POLL = { intervalInMs: 50 };

let server: TestServer;
let certs: CertificateClient;
let keys: KeyClient;
let work: string;

const openssl = (args: string[], input?: string | Buffer) => execFileSync('openssl', args, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });

before(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-certs-'));
  server = await startTestServer();
  await server.createVault(VAULT);
  const url = server.vaultUrl(VAULT);
  certs = new CertificateClient(url, server.adminCredential, { retryOptions: { maxRetries: 0 } });
  keys = new KeyClient(url, server.adminCredential, { retryOptions: { maxRetries: 0 } });
});

after(async () => {
  await server?.close();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

const webPolicy: CertificatePolicy = {
  issuerName: 'Self',
  subject: 'CN=web.example.test, O=Coffer Tests',
  subjectAlternativeNames: { dnsNames: ['web.example.test', 'api.example.test'] },
  enhancedKeyUsage: ['1.3.6.1.5.5.7.3.1'],
  keyUsage: ['digitalSignature', 'keyEncipherment'],
  validityInMonths: 6,
  keyType: 'RSA',
  keySize: 2048,
  exportable: true,
  contentType: 'application/x-pkcs12',
};

async function expectError(promise: Promise<unknown>, status: number, code?: string) {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof RestError, String(err));
    assert.equal(err.statusCode, status, err.message);
    if (code) assert.equal(err.code, code);
    return true;
  });
}

test('beginCreateCertificate (Self) completes and the PFX secret carries the policy (checked by openssl)', async () => {
  const poller = await certs.beginCreateCertificate('web', webPolicy, POLL);
  const cert = await poller.pollUntilDone();
  const pending = await certs.getCertificateOperation('web', POLL);
  assert.equal(pending.getOperationState().certificateOperation?.status, 'completed');
  assert.equal(cert.name, 'web');
  assert.ok(cert.properties.version);
  assert.ok(cert.cer && cert.cer.length > 100);
  assert.equal(cert.policy?.subject, 'CN=web.example.test, O=Coffer Tests');
  assert.deepEqual(cert.policy?.subjectAlternativeNames?.dnsNames, ['web.example.test', 'api.example.test']);
  assert.equal(cert.keyId, `${server.vaultUrl(VAULT)}/keys/web/${cert.properties.version}`);
  assert.equal(cert.secretId, `${server.vaultUrl(VAULT)}/secrets/web/${cert.properties.version}`);
  const x5t = crypto.createHash('sha1').update(cert.cer!).digest();
  assert.deepEqual(Buffer.from(cert.properties.x509Thumbprint!), x5t);

  // The managed secret is the PFX with the private key (exportable policy).
  const secret = await server.secretClient(VAULT).getSecret('web');
  assert.equal(secret.properties.contentType, 'application/x-pkcs12');
  assert.equal(secret.properties.managed, true);
  assert.equal(secret.properties.certificateKeyId, cert.keyId);
  const pfxFile = path.join(work, 'web.pfx');
  fs.writeFileSync(pfxFile, Buffer.from(secret.value!, 'base64'));
  const pem = openssl(['pkcs12', '-in', pfxFile, '-passin', 'pass:', '-nodes']);
  assert.match(pem, /BEGIN PRIVATE KEY/);
  const text = openssl(['x509', '-noout', '-text', '-nameopt', 'RFC2253'], pem);
  assert.match(text, /Subject: O=Coffer Tests,CN=web\.example\.test/);
  assert.match(text, /DNS:web\.example\.test, DNS:api\.example\.test/);
  assert.match(text, /TLS Web Server Authentication/);
  assert.doesNotMatch(text, /TLS Web Client Authentication/);
  assert.match(text, /Digital Signature, Key Encipherment/);
  // The private key in the PFX is the one behind the certificate and the managed key.
  const keyPub = crypto.createPublicKey(pem).export({ format: 'jwk' });
  const managed = await keys.getKey('web');
  assert.equal(managed.properties.managed, true);
  assert.equal(managed.properties.version, cert.properties.version);
  assert.equal(Buffer.from(managed.key!.n!).toString('base64url'), keyPub.n);
  // Six months of validity.
  const days = (cert.properties.expiresOn!.getTime() - cert.properties.notBefore!.getTime()) / 86_400_000;
  assert.ok(days >= 180 && days <= 185, `validity ${days} days`);
});

test('EC certificate in PEM; a non-exportable key leaves the private key out of the secret', async () => {
  const ec = await (await certs.beginCreateCertificate('ec-pem', {
    issuerName: 'Self', subject: 'CN=ec.example.test', keyType: 'EC', keyCurveName: 'P-384', contentType: 'application/x-pem-file',
  }, POLL)).pollUntilDone();
  const pem = (await server.secretClient(VAULT).getSecret('ec-pem')).value!;
  assert.match(pem, /BEGIN PRIVATE KEY/);
  assert.equal(crypto.createPrivateKey(pem).asymmetricKeyDetails?.namedCurve, 'secp384r1');
  assert.match(openssl(['x509', '-noout', '-subject'], pem), /CN\s*=\s*ec\.example\.test/);
  assert.equal(ec.policy?.keyCurveName, 'P-384');

  await (await certs.beginCreateCertificate('locked', { ...webPolicy, exportable: false }, POLL)).pollUntilDone();
  const pfx = (await server.secretClient(VAULT).getSecret('locked')).value!;
  const file = path.join(work, 'locked.pfx');
  fs.writeFileSync(file, Buffer.from(pfx, 'base64'));
  const out = openssl(['pkcs12', '-in', file, '-passin', 'pass:', '-nodes']);
  assert.match(out, /BEGIN CERTIFICATE/);
  assert.doesNotMatch(out, /PRIVATE KEY/);
});

test('versions, list, policy and properties updates', async () => {
  const first = await certs.getCertificate('web');
  const second = await (await certs.beginCreateCertificate('web', webPolicy, POLL)).pollUntilDone();
  assert.notEqual(second.properties.version, first.properties.version);
  const versions: string[] = [];
  for await (const p of certs.listPropertiesOfCertificateVersions('web')) versions.push(p.version!);
  assert.deepEqual(versions.sort(), [first.properties.version!, second.properties.version!].sort());
  const older = await certs.getCertificateVersion('web', first.properties.version!);
  assert.deepEqual(Buffer.from(older.cer!), Buffer.from(first.cer!));

  const names: string[] = [];
  for await (const p of certs.listPropertiesOfCertificates()) names.push(p.name!);
  assert.ok(names.includes('web') && names.includes('ec-pem'));

  // (This SDK version returns an empty policy from updateCertificatePolicy: it never reads the response body.)
  await certs.updateCertificatePolicy('web', { ...webPolicy, validityInMonths: 3 });
  assert.equal((await certs.getCertificatePolicy('web')).validityInMonths, 3);

  const updated = await certs.updateCertificateProperties('web', '', { tags: { team: 'edge' }, enabled: false });
  assert.deepEqual(updated.properties.tags, { team: 'edge' });
  assert.equal(updated.properties.enabled, false);
  // The managed secret follows the certificate's enabled state.
  await expectError(server.secretClient(VAULT).getSecret('web'), 403);
  await certs.updateCertificateProperties('web', '', { enabled: true });
  assert.ok((await server.secretClient(VAULT).getSecret('web')).value);
});

test('delete, get deleted, recover and purge cover the managed key and secret', async () => {
  await (await certs.beginCreateCertificate('temp', webPolicy, POLL)).pollUntilDone();
  const deleted = await (await certs.beginDeleteCertificate('temp', POLL)).pollUntilDone();
  assert.equal(deleted.name, 'temp');
  assert.ok(deleted.recoveryId?.endsWith('/deletedcertificates/temp'));
  await expectError(keys.getKey('temp'), 404);
  await expectError(server.secretClient(VAULT).getSecret('temp'), 404);
  const listed: string[] = [];
  for await (const d of certs.listDeletedCertificates()) listed.push(d.name!);
  assert.ok(listed.includes('temp'));
  assert.equal((await certs.getDeletedCertificate('temp')).name, 'temp');

  await (await certs.beginRecoverDeletedCertificate('temp', POLL)).pollUntilDone();
  assert.equal((await keys.getKey('temp')).properties.managed, true);
  assert.ok((await server.secretClient(VAULT).getSecret('temp')).value);

  await (await certs.beginDeleteCertificate('temp', POLL)).pollUntilDone();
  await certs.purgeDeletedCertificate('temp');
  await expectError(certs.getDeletedCertificate('temp'), 404);
  // The name is free again for all three collections.
  await (await certs.beginCreateCertificate('temp', webPolicy, POLL)).pollUntilDone();
});

test('EC certificate in a PFX: openssl opens it without a password, and it imports back into another certificate', async () => {
  const created = await (await certs.beginCreateCertificate('ec-pfx', {
    issuerName: 'Self', subject: 'CN=ec-pfx.example.test', keyType: 'EC', keyCurveName: 'P-256', contentType: 'application/x-pkcs12',
    subjectAlternativeNames: { dnsNames: ['ec-pfx.example.test'] },
  }, POLL)).pollUntilDone();
  const secret = await server.secretClient(VAULT).getSecret('ec-pfx');
  assert.equal(secret.properties.contentType, 'application/x-pkcs12');
  const file = path.join(work, 'ec.pfx');
  fs.writeFileSync(file, Buffer.from(secret.value!, 'base64'));
  const pem = openssl(['pkcs12', '-in', file, '-passin', 'pass:', '-nodes']);
  const key = crypto.createPrivateKey(pem);
  assert.equal(key.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  const cert = new crypto.X509Certificate(pem);
  assert.deepEqual(cert.raw, Buffer.from(created.cer!));
  assert.ok(cert.checkPrivateKey(key));
  assert.match(openssl(['x509', '-noout', '-ext', 'subjectAltName'], pem), /DNS:ec-pfx\.example\.test/);

  // The downloaded PFX round-trips through CertificateClient: import it (no password) under another name.
  const again = await certs.importCertificate('ec-pfx-copy', Buffer.from(secret.value!, 'base64'));
  assert.deepEqual(Buffer.from(again.cer!), Buffer.from(created.cer!));
  assert.equal(again.policy?.keyType, 'EC');
  assert.equal(again.policy?.keyCurveName, 'P-256');
  assert.equal(again.policy?.contentType, 'application/x-pkcs12');
  const managed = await keys.getKey('ec-pfx-copy');
  assert.equal(Buffer.from(managed.key!.x!).toString('base64url'), key.export({ format: 'jwk' }).x);
});

test('import a PFX (with password, with chain) and a PEM made by OpenSSL', async () => {
  const dir = path.join(work, 'import');
  fs.mkdirSync(dir);
  const f = (n: string) => path.join(dir, n);
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '30', '-subj', '/CN=Test Root']);
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('leaf.key'), '-out', f('leaf.csr'), '-subj', '/CN=imported.example.test']);
  fs.writeFileSync(f('ext'), 'subjectAltName=DNS:imported.example.test\nextendedKeyUsage=clientAuth\n');
  openssl(['x509', '-req', '-in', f('leaf.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('leaf.crt'), '-days', '20', '-extfile', f('ext')]);
  openssl(['pkcs12', '-export', '-inkey', f('leaf.key'), '-in', f('leaf.crt'), '-certfile', f('ca.crt'), '-out', f('leaf.pfx'), '-passout', 'pass:s3cret']);
  const pfx = fs.readFileSync(f('leaf.pfx'));

  const imported = await certs.importCertificate('imported-pfx', pfx, { password: 's3cret' });
  assert.equal(imported.policy?.subject, 'CN=imported.example.test');
  assert.deepEqual(imported.policy?.subjectAlternativeNames?.dnsNames, ['imported.example.test']);
  assert.deepEqual(imported.policy?.enhancedKeyUsage, ['1.3.6.1.5.5.7.3.2']);
  const leafDer = new crypto.X509Certificate(fs.readFileSync(f('leaf.crt'))).raw;
  assert.deepEqual(Buffer.from(imported.cer!), leafDer);
  // The secret (a PFX without password) carries the key and the whole chain.
  const secret = await server.secretClient(VAULT).getSecret('imported-pfx');
  fs.writeFileSync(f('back.pfx'), Buffer.from(secret.value!, 'base64'));
  const back = openssl(['pkcs12', '-in', f('back.pfx'), '-passin', 'pass:', '-nodes']);
  assert.equal(back.match(/BEGIN CERTIFICATE/g)?.length, 2);
  assert.match(back, /BEGIN PRIVATE KEY/);

  // PEM: key and certificate text as the SDK sends it.
  const pemText = fs.readFileSync(f('leaf.key'), 'utf8') + fs.readFileSync(f('leaf.crt'), 'utf8');
  const fromPem = await certs.importCertificate('imported-pem', Buffer.from(pemText), { policy: { contentType: 'application/x-pem-file', issuerName: 'Unknown' } });
  assert.deepEqual(Buffer.from(fromPem.cer!), leafDer);
  const pemSecret = (await server.secretClient(VAULT).getSecret('imported-pem')).value!;
  assert.equal(new crypto.X509Certificate(pemSecret).fingerprint256, new crypto.X509Certificate(leafDer).fingerprint256);

  // An EC PFX made by OpenSSL (PBES2/AES, OpenSSL 3's default) with no chain.
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('ec.key'), '-out', f('ec.crt'), '-days', '10', '-subj', '/CN=ec-import']);
  openssl(['pkcs12', '-export', '-inkey', f('ec.key'), '-in', f('ec.crt'), '-out', f('ec.pfx'), '-passout', 'pass:pw']);
  const ecImported = await certs.importCertificate('imported-ec', fs.readFileSync(f('ec.pfx')), { password: 'pw' });
  const ecSecret = await server.secretClient(VAULT).getSecret('imported-ec');
  // A PFX stays a PFX (password-less, as Azure's), whatever its key type.
  assert.equal(ecSecret.properties.contentType, 'application/x-pkcs12');
  fs.writeFileSync(f('ec-back.pfx'), Buffer.from(ecSecret.value!, 'base64'));
  const ecBack = openssl(['pkcs12', '-in', f('ec-back.pfx'), '-passin', 'pass:', '-nodes']);
  assert.equal(crypto.createPrivateKey(ecBack).asymmetricKeyDetails?.namedCurve, 'prime256v1');
  assert.equal(new crypto.X509Certificate(ecBack).fingerprint256, new crypto.X509Certificate(fs.readFileSync(f('ec.crt'))).fingerprint256);
  assert.equal(ecImported.policy?.keyType, 'EC');
  assert.equal(ecImported.policy?.keyCurveName, 'P-256');

  // Errors: wrong password, malformed PEM, key and certificate that do not belong together. Nothing is created.
  await expectError(certs.importCertificate('bad-import', pfx, { password: 'wrong' }), 400, 'BadParameter');
  await expectError(certs.importCertificate('bad-import', Buffer.from('-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n'),
    { policy: { contentType: 'application/x-pem-file', issuerName: 'Unknown' } }), 400, 'BadParameter');
  await expectError(certs.importCertificate('bad-import', Buffer.from(fs.readFileSync(f('ec.key'), 'utf8') + fs.readFileSync(f('leaf.crt'), 'utf8')),
    { policy: { contentType: 'application/x-pem-file', issuerName: 'Unknown' } }), 400, 'BadParameter');
  await expectError(certs.importCertificate('bad-import', Buffer.from('garbage')), 400, 'BadParameter');
  // A PFX that opens, with a policy it cannot have (zero months; a size that is not the EC key's curve's). On the wire:
  // the JS SDK's importCertificate does not send its `policy` option.
  const token = await dataPlaneToken(server);
  const importRaw = (file: string, pwd: string, policy: object) => rawRequest(`${server.vaultUrl(VAULT)}/certificates/bad-import/import?api-version=7.5`, {
    method: 'POST', token, body: { value: fs.readFileSync(f(file)).toString('base64'), pwd, policy },
  });
  for (const res of [await importRaw('leaf.pfx', 's3cret', { x509_props: { validity_months: 0 } }), await importRaw('ec.pfx', 'pw', { key_props: { key_size: 2048 } })]) {
    assert.equal(res.status, 400, res.text);
    assert.equal(res.json.error.code, 'BadParameter');
  }
  await expectError(certs.getCertificate('bad-import'), 404);
  await expectError(keys.getKey('bad-import'), 404);
});

test('impossible policies and plain-object name clashes are refused and change nothing', async () => {
  const create = (name: string, policy: CertificatePolicy) => certs.beginCreateCertificate(name, policy, POLL);
  await expectError(create('bad', { ...webPolicy, keySize: 1000 }), 400, 'BadParameter');
  await expectError(create('bad', { ...webPolicy, contentType: 'text/plain' as never }), 400, 'BadParameter');
  await expectError(create('bad', { ...webPolicy, validityInMonths: 0 }), 400, 'BadParameter');
  await expectError(create('bad', { ...webPolicy, keyType: 'EC', keyCurveName: 'P-256K' }), 400, 'BadParameter');
  await expectError(create('bad', { ...webPolicy, keyType: 'RSA-HSM' }), 400, 'BadParameter');
  await expectError(create('bad', { ...webPolicy, enhancedKeyUsage: ['serverAuth'] }), 400, 'BadParameter');
  await expectError(create('bad', { ...webPolicy, subject: 'not a dn' }), 400, 'BadParameter');
  await expectError(create('bad', { ...webPolicy, keyType: 'EC', keyCurveName: 'P-256', keySize: 2048 }), 400, 'BadParameter');
  await expectError(create('bad', { ...webPolicy, enhancedKeyUsage: ['1.3.6.1.5.5.7.3.1', '1..2'] }), 400, 'BadParameter');
  await expectError(create('bad', { ...webPolicy, lifetimeActions: [{ action: 'AutoRenew', daysBeforeExpiry: 400 }] }), 400, 'BadParameter');
  await expectError(certs.getCertificate('bad'), 404);
  await expectError(keys.getKey('bad'), 404);
  await expectError(server.secretClient(VAULT).getSecret('bad'), 404);

  // An existing certificate is left as it was: no new version, no policy change.
  const kept = await (await create('kept', webPolicy)).pollUntilDone();
  await expectError(create('kept', { ...webPolicy, validityInMonths: 0 }), 400, 'BadParameter');
  await expectError(certs.updateCertificatePolicy('kept', { ...webPolicy, keyType: 'EC', keySize: 4096 }), 400, 'BadParameter');
  await expectError(certs.updateCertificatePolicy('kept', { ...webPolicy, enhancedKeyUsage: ['not-an-oid'] }), 400, 'BadParameter');
  const unchanged = await certs.getCertificate('kept');
  assert.equal(unchanged.properties.version, kept.properties.version);
  assert.deepEqual(unchanged.policy, kept.policy);
  assert.equal((await keys.getKey('kept')).properties.version, kept.properties.version);

  await server.secretClient(VAULT).setSecret('plain', 'value');
  await expectError(create('plain', webPolicy), 409, 'Conflict');
  await expectError(certs.getCertificate('plain'), 404);
});

test('the managed key and secret are read-only through the keys and secrets APIs (Azure 403 ...ManagedByKeyVault)', async () => {
  await (await certs.beginCreateCertificate('guarded', webPolicy, POLL)).pollUntilDone();
  const secrets = server.secretClient(VAULT);
  await expectError(secrets.setSecret('guarded', 'overwrite'), 403, 'Forbidden');
  await expectError(secrets.updateSecretProperties('guarded', '', { enabled: false }), 403, 'Forbidden');
  await expectError(secrets.beginDeleteSecret('guarded', POLL), 403, 'Forbidden');
  await expectError(keys.updateKeyProperties('guarded', '', { enabled: false }), 403, 'Forbidden');
  await expectError(keys.beginDeleteKey('guarded', POLL), 403, 'Forbidden');
  await expectError(keys.createRsaKey('guarded'), 403, 'Forbidden');
  await expectError(keys.rotateKey('guarded'), 403, 'Forbidden');
  // Azure's exact refusal, also for the writes the store refuses inside the version's transaction (set, create, import).
  const refusal = (verb: string, inner: string) => (err: unknown) => {
    assert.ok(err instanceof RestError, String(err));
    assert.equal(err.statusCode, 403);
    assert.equal(err.message, `Operation "${verb}" is not allowed as this object's lifetime is managed by Key Vault.`);
    // The SDK surfaces the wire's `innererror` as `innerError`.
    assert.equal((err.details as { error?: { innerError?: { code?: string } } }).error?.innerError?.code, inner);
    return true;
  };
  await assert.rejects(secrets.setSecret('guarded', 'overwrite'), refusal('set', 'SecretManagedByKeyVault'));
  await assert.rejects(keys.createEcKey('guarded'), refusal('create', 'KeyManagedByKeyVault'));
  const { d, x, y } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }) as Record<'d' | 'x' | 'y', string>;
  const bytes = (field: string) => Buffer.from(field, 'base64url');
  await assert.rejects(keys.importKey('guarded', { kty: 'EC', crv: 'P-256', d: bytes(d), x: bytes(x), y: bytes(y) }),
    refusal('import', 'KeyManagedByKeyVault'));
  await assert.rejects(secrets.updateSecretProperties('guarded', '', { enabled: false }), refusal('update', 'SecretManagedByKeyVault'));
  // Nothing changed: same value, still enabled.
  const cert = await certs.getCertificate('guarded');
  const secret = await secrets.getSecret('guarded');
  assert.equal(secret.properties.version, cert.properties.version);
  assert.equal((await keys.getKey('guarded')).properties.enabled, true);
  // The certificate itself can be deleted (and takes key and secret with it); the deleted managed ones stay locked.
  await (await certs.beginDeleteCertificate('guarded', POLL)).pollUntilDone();
  await expectError(secrets.purgeDeletedSecret('guarded'), 403, 'Forbidden');
  await expectError(keys.beginRecoverDeletedKey('guarded', POLL), 403, 'Forbidden');
});

test('Unknown issuer: the pending operation carries a CSR; merge accepts only the certificate for the pending key', async () => {
  const dir = path.join(work, 'ca');
  fs.mkdirSync(dir);
  const f = (n: string) => path.join(dir, n);
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '30', '-subj', '/CN=External CA']);

  const poller = await certs.beginCreateCertificate('external', {
    issuerName: 'Unknown', subject: 'CN=external.example.test', subjectAlternativeNames: { dnsNames: ['external.example.test'] },
  }, POLL);
  const pending = await certs.getCertificateOperation('external', POLL);
  const state = pending.getOperationState().certificateOperation!;
  assert.equal(state.status, 'inProgress');
  assert.ok(state.csr && state.csr.length > 100);
  const csrPem = `-----BEGIN CERTIFICATE REQUEST-----\n${Buffer.from(state.csr).toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
  fs.writeFileSync(f('req.csr'), csrPem);
  // OpenSSL verifies the request's self-signature and sees the requested subject and SANs.
  const text = openssl(['req', '-in', f('req.csr'), '-noout', '-text', '-verify']);
  assert.match(text, /CN\s*=\s*external\.example\.test/);
  assert.match(text, /DNS:external\.example\.test/);
  fs.writeFileSync(f('ext'), 'subjectAltName=DNS:external.example.test\n');
  openssl(['x509', '-req', '-in', f('req.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('signed.crt'), '-days', '10', '-extfile', f('ext')]);
  const signed = new crypto.X509Certificate(fs.readFileSync(f('signed.crt'))).raw;
  const caDer = new crypto.X509Certificate(fs.readFileSync(f('ca.crt'))).raw;

  // A certificate for another key, or bytes that are no certificate, are refused and the request stays pending.
  await expectError(certs.mergeCertificate('external', [caDer]), 400, 'BadParameter');
  await expectError(certs.mergeCertificate('external', [Buffer.from('not a certificate')]), 400, 'BadParameter');
  assert.equal((await certs.getCertificateOperation('external', POLL)).getOperationState().certificateOperation?.status, 'inProgress');

  const merged = await certs.mergeCertificate('external', [signed, caDer]);
  assert.deepEqual(Buffer.from(merged.cer!), signed);
  const done = await poller.pollUntilDone();
  assert.equal(done.properties.version, merged.properties.version);
  // The secret holds the key generated inside Coffer and the chain; openssl verifies the leaf against the CA.
  const pfx = (await server.secretClient(VAULT).getSecret('external')).value!;
  fs.writeFileSync(f('out.pfx'), Buffer.from(pfx, 'base64'));
  const pem = openssl(['pkcs12', '-in', f('out.pfx'), '-passin', 'pass:', '-nodes']);
  assert.equal(pem.match(/BEGIN CERTIFICATE/g)?.length, 2);
  fs.writeFileSync(f('leaf.pem'), fs.readFileSync(f('signed.crt')));
  assert.match(openssl(['verify', '-CAfile', f('ca.crt'), f('leaf.pem')]), /OK/);
  assert.equal((await keys.getKey('external')).properties.version, merged.properties.version);
  await expectError(certs.mergeCertificate('external', [signed]), 404, 'PendingCertificateNotFound');

  // A request that is deleted before its merge leaves nothing behind: no certificate, no managed key.
  await certs.beginCreateCertificate('abandoned', { issuerName: 'Unknown', subject: 'CN=abandoned' }, POLL);
  assert.equal((await keys.getKey('abandoned')).properties.managed, true);
  await certs.deleteCertificateOperation('abandoned');
  await expectError(certs.getCertificate('abandoned'), 404);
  await expectError(keys.getKey('abandoned'), 404);
  await expectError(certs.getCertificateOperation('abandoned', POLL), 404);
});

test('a certificate still waiting for its merge is deleted like any other: listed as deleted with includePending, recovered back to waiting, purged', async () => {
  await certs.beginCreateCertificate('awaiting', { issuerName: 'Unknown', subject: 'CN=awaiting' }, POLL);
  const created = await certs.getCertificate('awaiting');

  const deleted = await (await certs.beginDeleteCertificate('awaiting', POLL)).pollUntilDone();
  assert.equal(deleted.name, 'awaiting');
  assert.equal(deleted.properties.version, created.properties.version);
  assert.ok(deleted.recoveryId?.endsWith('/deletedcertificates/awaiting'));
  assert.equal(deleted.cer, undefined, 'no certificate was ever issued');
  assert.equal(deleted.policy?.issuerName, 'Unknown');
  await expectError(certs.getCertificate('awaiting'), 404);
  await expectError(certs.getCertificateOperation('awaiting', POLL), 404);
  await expectError(keys.getKey('awaiting'), 404);
  assert.equal((await certs.getDeletedCertificate('awaiting')).properties.version, created.properties.version);
  // As in Azure, a certificate that was never completely provisioned is listed only with includePending.
  const listed = async (includePending?: boolean) => {
    const names: string[] = [];
    for await (const d of certs.listDeletedCertificates({ includePending })) names.push(d.name!);
    return names;
  };
  assert.ok(!(await listed()).includes('awaiting'));
  assert.ok((await listed(true)).includes('awaiting'));
  // The name stays taken while it is recoverable.
  await expectError(certs.beginCreateCertificate('awaiting', webPolicy, POLL), 409);

  // Recovered, it waits for its merge again, with the same request.
  await (await certs.beginRecoverDeletedCertificate('awaiting', POLL)).pollUntilDone();
  const operation = (await certs.getCertificateOperation('awaiting', POLL)).getOperationState().certificateOperation!;
  assert.equal(operation.status, 'inProgress');
  assert.equal((await certs.getCertificate('awaiting')).properties.version, created.properties.version);
  assert.equal((await keys.getKey('awaiting')).properties.managed, true);
  await expectError(certs.getDeletedCertificate('awaiting'), 404);
  const pendingNames: string[] = [];
  for await (const c of certs.listPropertiesOfCertificates({ includePending: true })) pendingNames.push(c.name!);
  assert.ok(pendingNames.includes('awaiting'));

  // Deleted again and purged: nothing is left, and the name is free.
  await (await certs.beginDeleteCertificate('awaiting', POLL)).pollUntilDone();
  await certs.purgeDeletedCertificate('awaiting');
  await expectError(certs.getDeletedCertificate('awaiting'), 404);
  await expectError(keys.getDeletedKey('awaiting'), 404);
  await (await certs.beginCreateCertificate('awaiting', webPolicy, POLL)).pollUntilDone();
});

test('backup and restore carry the certificate with its managed key and secret', async () => {
  const created = await (await certs.beginCreateCertificate('saved', webPolicy, POLL)).pollUntilDone();
  const secretBefore = (await server.secretClient(VAULT).getSecret('saved')).value;
  const blob = await certs.backupCertificate('saved');
  assert.ok(blob && blob.length > 100);
  await expectError(certs.restoreCertificateBackup(blob!), 409, 'Conflict');

  await (await certs.beginDeleteCertificate('saved', POLL)).pollUntilDone();
  await certs.purgeDeletedCertificate('saved');
  const restored = await certs.restoreCertificateBackup(blob!);
  assert.equal(restored.properties.version, created.properties.version);
  assert.deepEqual(Buffer.from(restored.cer!), Buffer.from(created.cer!));
  assert.equal((await server.secretClient(VAULT).getSecret('saved')).value, secretBefore);
  assert.equal((await keys.getKey('saved')).properties.managed, true);

  await expectError(certs.restoreCertificateBackup(Buffer.from('not a backup')), 400, 'BadParameter');
});

test('Azure semantics: secret-read on a certificate vault is key extraction (Key Vault Secrets User gets the private key)', async () => {
  const rbacVault = 'certrbac';
  await server.createVault(rbacVault, { enableRbacAuthorization: true });
  const adminCerts = new CertificateClient(server.vaultUrl(rbacVault), server.adminCredential, { retryOptions: { maxRetries: 0 } });
  await (await adminCerts.beginCreateCertificate('tls', webPolicy, POLL)).pollUntilDone();

  const reader = await createPrincipal(server, 'cert-secret-reader');
  const vaultId = `/subscriptions/${server.admin.subscriptionId}/resourceGroups/rg-test/providers/Microsoft.KeyVault/vaults/${rbacVault}`;
  await assignRole(server, vaultId, '4633458b-17de-408a-b874-0445c86b69e6', reader.objectId); // Key Vault Secrets User
  // No certificate or key permission at all...
  await expectError(new CertificateClient(server.vaultUrl(rbacVault), reader.credential, { retryOptions: { maxRetries: 0 } }).getCertificate('tls'), 403);
  await expectError(new KeyClient(server.vaultUrl(rbacVault), reader.credential, { retryOptions: { maxRetries: 0 } }).getKey('tls'), 403);
  // ...yet the managed secret hands over the private key.
  const pfx = (await secretClientAs(server, rbacVault, reader.credential).getSecret('tls')).value!;
  const file = path.join(work, 'extracted.pfx');
  fs.writeFileSync(file, Buffer.from(pfx, 'base64'));
  assert.match(openssl(['pkcs12', '-in', file, '-passin', 'pass:', '-nodes']), /BEGIN PRIVATE KEY/);
});

test('certificate contacts: set, get, delete', async () => {
  await expectError(certs.getContacts(), 404);
  const set = await certs.setContacts([{ email: 'ops@example.test', name: 'Ops', phone: '555-0100' }, { email: 'sec@example.test' }]);
  assert.deepEqual(set?.map((c) => c?.email), ['ops@example.test', 'sec@example.test']);
  const got = await certs.getContacts();
  assert.deepEqual(got?.[0], { email: 'ops@example.test', name: 'Ops', phone: '555-0100' });
  await expectError(certs.setContacts([{ email: 'not-an-email' }]), 400, 'BadParameter');
  assert.equal((await certs.getContacts())?.length, 2);
  // (This SDK version maps deleteContacts' raw body through the model names, so it always returns [].)
  await certs.deleteContacts();
  await expectError(certs.getContacts(), 404);
});

test('certificate issuers: set, get, update, list, delete; the account password is never returned', async () => {
  const issuer = await certs.createIssuer('digi', 'DigiCert', {
    accountId: 'acct-1', password: 'issuer-secret',
    organizationId: 'org-1', administratorContacts: [{ email: 'admin@example.test', firstName: 'Ada', lastName: 'Admin' }],
  });
  assert.equal(issuer.provider, 'DigiCert');
  assert.equal(issuer.accountId, 'acct-1');
  assert.equal(issuer.password, undefined);
  const got = await certs.getIssuer('digi');
  assert.equal(got.organizationId, 'org-1');
  assert.equal(got.administratorContacts?.[0].email, 'admin@example.test');
  assert.equal(got.password, undefined);
  const updated = await certs.updateIssuer('digi', { provider: 'GlobalSign' });
  assert.equal(updated.provider, 'GlobalSign');
  assert.equal(updated.accountId, 'acct-1');
  const listed: string[] = [];
  // (This SDK version yields the raw items, {id, provider}, without a parsed name.)
  for await (const i of certs.listPropertiesOfIssuers()) listed.push(`${i.id}:${i.provider}`);
  assert.deepEqual(listed, [`${server.vaultUrl(VAULT)}/certificates/issuers/digi:GlobalSign`]);
  assert.equal((await certs.deleteIssuer('digi')).provider, 'GlobalSign');
  await expectError(certs.getIssuer('digi'), 404);
  await expectError(certs.updateIssuer('digi', { provider: 'x' }), 404);
  await expectError(certs.createIssuer('Self', 'x'), 400, 'BadParameter');
});

test('integrated CA (CofferCA): issues with no manual step; the chain verifies against the downloadable root', async () => {
  const cert = await (await certs.beginCreateCertificate('ca-issued', {
    issuerName: 'CofferCA', subject: 'CN=ca.example.test', subjectAlternativeNames: { dnsNames: ['ca.example.test'] },
    enhancedKeyUsage: ['1.3.6.1.5.5.7.3.1'], keyUsage: ['digitalSignature', 'keyEncipherment'], validityInMonths: 3,
  }, POLL)).pollUntilDone();
  const root = await fetch(`${server.admin.managementEndpoint}/coffer/certificate-ca.pem`).then((r) => r.text());
  assert.match(root, /BEGIN CERTIFICATE/);
  const rootFile = path.join(work, 'coffer-root.pem');
  fs.writeFileSync(rootFile, root);
  assert.match(openssl(['x509', '-noout', '-text'], root), /CA:TRUE/);
  // The secret's PFX holds leaf and root; openssl verifies the leaf against the downloaded root.
  const pfx = (await server.secretClient(VAULT).getSecret('ca-issued')).value!;
  fs.writeFileSync(path.join(work, 'ca-issued.pfx'), Buffer.from(pfx, 'base64'));
  const pem = openssl(['pkcs12', '-in', path.join(work, 'ca-issued.pfx'), '-passin', 'pass:', '-nodes', '-clcerts']);
  const leafFile = path.join(work, 'ca-issued.pem');
  fs.writeFileSync(leafFile, pem.slice(pem.indexOf('-----BEGIN CERTIFICATE')));
  assert.match(openssl(['verify', '-CAfile', rootFile, leafFile]), /OK/);
  const text = openssl(['x509', '-noout', '-text'], fs.readFileSync(leafFile));
  assert.match(text, /DNS:ca\.example\.test/);
  assert.match(text, /TLS Web Server Authentication/);
  assert.equal(new crypto.X509Certificate(Buffer.from(cert.cer!)).issuer, new crypto.X509Certificate(root).subject);
});

// Last: it advances the deployment's clock.
test('AutoRenew: the scheduler renews a self-signed certificate under an advanced clock (new version, new validity)', async () => {
  const first = await (await certs.beginCreateCertificate('renewing', {
    ...webPolicy, validityInMonths: 1, lifetimeActions: [{ action: 'AutoRenew', lifetimePercentage: 50 }],
  }, POLL)).pollUntilDone();
  await server.coffer.scheduler.runNow();
  assert.equal((await certs.getCertificate('renewing')).properties.version, first.properties.version, 'not due yet');

  // The administrator's clock advance runs the scheduler before answering.
  const res = await rawRequest(`${server.admin.managementEndpoint}/coffer/admin/clock/advance`, {
    method: 'POST', token: await managementToken(server), body: { advance: '20d' },
  });
  assert.equal(res.status, 200);
  const renewed = await certs.getCertificate('renewing');
  assert.notEqual(renewed.properties.version, first.properties.version);
  assert.ok(renewed.properties.notBefore!.getTime() >= first.properties.notBefore!.getTime() + 19 * 86_400_000);
  assert.ok(renewed.properties.expiresOn!.getTime() > first.properties.expiresOn!.getTime());
  // The managed key and secret moved to the new version with it.
  assert.equal((await keys.getKey('renewing')).properties.version, renewed.properties.version);
  assert.equal((await server.secretClient(VAULT).getSecret('renewing')).properties.version, renewed.properties.version);
  await server.coffer.scheduler.runNow();
  assert.equal((await certs.getCertificate('renewing')).properties.version, renewed.properties.version, 'renewal resets the clock');
});
