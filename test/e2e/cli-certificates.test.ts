import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cliRunner } from '../support/cli.js';
import { startTestServer, type TestServer } from '../support/server.js';

/**
 * `coffer keyvault certificate …` end to end: `node bin/coffer.js` (the built CLI) against a real Coffer, with the
 * certificates it downloads read back by OpenSSL and the PFX it imports made by OpenSSL.
 */
let server: TestServer;
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-cli-certificates-test-'));
const VAULT = 'cli-certs';

const { ok, json, fails } = cliRunner(scratch, () => ({ COFFER_CONFIG_DIR: path.join(scratch, 'no-login'), COFFER_DATA_DIR: server.dataDir }));

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00$/;
const cmd = (command: string, name: string, ...rest: string[]) => ['keyvault', 'certificate', command, '--vault-name', VAULT, '--name', name, ...rest];
const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: scratch, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const scratchFile = (name: string) => path.join(scratch, `${crypto.randomUUID()}-${name}`);

/** az's default policy with the given subject and SAN, written to a file for `--policy @file`. */
async function policyFile(subject: string, dnsName: string) {
  const policy = await json(['keyvault', 'certificate', 'get-default-policy']);
  policy.x509CertificateProperties.subject = subject;
  policy.x509CertificateProperties.subjectAlternativeNames = { dnsNames: [dnsName] };
  const file = scratchFile('policy.json');
  fs.writeFileSync(file, JSON.stringify(policy));
  return file;
}

before(async () => {
  server = await startTestServer();
  await server.createVault(VAULT, { softDeleteRetentionInDays: 7 });
});

after(async () => {
  await server?.close();
  fs.rmSync(scratch, { recursive: true, force: true });
});

test('keyvault certificate --help lists az\'s certificate commands', async () => {
  const { stdout } = await ok(['keyvault', 'certificate', '--help']);
  for (const c of ['create', 'import', 'show', 'list', 'list-versions', 'set-attributes', 'download', 'delete', 'list-deleted', 'show-deleted',
    'recover', 'purge', 'backup', 'restore', 'get-default-policy', 'pending', 'issuer', 'contact']) {
    assert.match(stdout, new RegExp(`^  ${c}\\b`, 'm'), c);
  }
});

test('get-default-policy prints az\'s default self-signed policy', async () => {
  const policy = await json(['keyvault', 'certificate', 'get-default-policy']);
  assert.equal(policy.issuerParameters.name, 'Self');
  assert.deepEqual(policy.keyProperties, { curve: null, exportable: true, keySize: 2048, keyType: 'RSA', reuseKey: true });
  assert.equal(policy.secretProperties.contentType, 'application/x-pkcs12');
  assert.equal(policy.x509CertificateProperties.subject, 'CN=CLIGetDefaultPolicy');
  assert.equal(policy.x509CertificateProperties.validityInMonths, 12);
});

test('create (waits for issuance), show, download PEM and DER, list, list-versions, set-attributes', async () => {
  const policy = await policyFile('CN=cli.example.test', 'cli.example.test');
  const operation = await json(cmd('create', 'web', '--policy', `@${policy}`, '--tags', 'env=dev'));
  assert.equal(operation.status, 'completed');
  assert.equal(operation.issuerParameters.name, 'Self');
  assert.match(operation.target, new RegExp(`^${server.vaultUrl(VAULT)}/certificates/web$`));

  const shown = await json(cmd('show', 'web'));
  assert.deepEqual(Object.keys(shown), ['attributes', 'cer', 'contentType', 'id', 'kid', 'name', 'policy', 'sid', 'tags', 'x509Thumbprint', 'x509ThumbprintHex']);
  assert.match(shown.id, new RegExp(`^${server.vaultUrl(VAULT)}/certificates/web/[0-9a-f]{32}$`));
  assert.equal(shown.name, 'web');
  assert.match(shown.kid, /\/keys\/web\//);
  assert.match(shown.sid, /\/secrets\/web\//);
  assert.match(shown.attributes.created, ISO);
  assert.match(shown.attributes.expires, ISO);
  assert.equal(shown.attributes.enabled, true);
  assert.deepEqual(shown.tags, { env: 'dev' });
  assert.equal(shown.policy.x509CertificateProperties.subject, 'CN=cli.example.test');
  assert.deepEqual(shown.policy.x509CertificateProperties.subjectAlternativeNames.dnsNames, ['cli.example.test']);
  assert.equal(shown.policy.keyProperties.keyType, 'RSA');
  const der = Buffer.from(shown.cer, 'base64');
  assert.equal(shown.x509ThumbprintHex, crypto.createHash('sha1').update(der).digest('hex').toUpperCase());

  const pem = scratchFile('web.pem');
  await ok(cmd('download', 'web', '--file', pem));
  assert.match(openssl('x509', '-in', pem, '-noout', '-subject'), /CN\s*=\s*cli\.example\.test/);
  assert.match(openssl('x509', '-in', pem, '-noout', '-ext', 'subjectAltName'), /DNS:cli\.example\.test/);
  const derFile = scratchFile('web.der');
  await ok(cmd('download', 'web', '--file', derFile, '--encoding', 'DER'));
  assert.deepEqual(fs.readFileSync(derFile), der);
  assert.match(openssl('x509', '-inform', 'DER', '-in', derFile, '-noout', '-subject'), /CN\s*=\s*cli\.example\.test/);
  await fails(cmd('download', 'web', '--file', derFile), 1, /already exists/);

  await ok(cmd('create', 'web', '--policy', `@${policy}`));
  const versions = await json(cmd('list-versions', 'web'));
  assert.equal(versions.length, 2);
  const listed = await json(['keyvault', 'certificate', 'list', '--vault-name', VAULT]);
  assert.deepEqual(listed.map((c: any) => c.name), ['web']);
  assert.match(listed[0].x509ThumbprintHex, /^[0-9A-F]{40}$/);

  assert.ok(versions.some((v: any) => v.id === shown.id));
  const oldShown = await json(cmd('show', 'web', '--version', shown.id.split('/').pop()));
  assert.equal(oldShown.id, shown.id);
  assert.equal((await json(['keyvault', 'certificate', 'show', '--id', shown.id])).id, shown.id);

  const updated = await json(cmd('set-attributes', 'web', '--enabled', 'false', '--tags', 'env=prod'));
  assert.equal(updated.attributes.enabled, false);
  assert.deepEqual(updated.tags, { env: 'prod' });
});

test('create through the integrated CA issuer: the certificate is issued by Coffer\'s CA', async () => {
  const policy = await json(['keyvault', 'certificate', 'get-default-policy']);
  policy.issuerParameters.name = 'CofferCA';
  policy.x509CertificateProperties.subject = 'CN=ca-issued.example.test';
  const operation = await json(cmd('create', 'ca-issued', '--policy', JSON.stringify(policy)));
  assert.equal(operation.status, 'completed');
  const pem = scratchFile('ca-issued.pem');
  await ok(cmd('download', 'ca-issued', '--file', pem));
  assert.match(openssl('x509', '-in', pem, '-noout', '-subject'), /CN\s*=\s*ca-issued\.example\.test/);
  assert.match(openssl('x509', '-in', pem, '-noout', '-issuer'), /Coffer Integrated CA/);
});

test('bad input: a policy that is not JSON, an impossible policy, a missing certificate', async () => {
  const impossible = await json(['keyvault', 'certificate', 'get-default-policy']);
  impossible.keyProperties.keySize = 123;
  await fails(cmd('create', 'bad', '--policy', JSON.stringify(impossible)), 1, /^ERROR: \(\w+\)/);
  await fails(cmd('show', 'bad'), 3, /not found/i);
  await fails(cmd('create', 'bad', '--policy', '{not json'), 2, /--policy: not valid JSON/);
  await fails(cmd('create', 'bad', '--policy', '[]'), 2, /must be a JSON object/);
  await fails(cmd('show', 'missing'), 3, /not found/i);
});

test('import of an OpenSSL PFX (with password) and PEM', async () => {
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'imported.key', '-out', 'imported.crt', '-days', '30', '-subj', '/CN=imported.example.test');
  openssl('pkcs12', '-export', '-inkey', 'imported.key', '-in', 'imported.crt', '-out', 'imported.pfx', '-passout', 'pass:pfx-pass');
  const imported = await json(cmd('import', 'imported', '--file', path.join(scratch, 'imported.pfx'), '--password', 'pfx-pass'));
  assert.equal(imported.name, 'imported');
  assert.equal(imported.policy.secretProperties.contentType, 'application/x-pkcs12');
  const expectedDer = new crypto.X509Certificate(fs.readFileSync(path.join(scratch, 'imported.crt'))).raw;
  assert.deepEqual(Buffer.from(imported.cer, 'base64'), expectedDer);

  await fails(cmd('import', 'wrong-password', '--file', path.join(scratch, 'imported.pfx'), '--password', 'nope'), 1, /\(BadParameter\)|\(InvalidPassword\)|password/i);
  await fails(cmd('show', 'wrong-password'), 3, /not found/i);
  const malformed = scratchFile('malformed.pem');
  fs.writeFileSync(malformed, '-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n');
  await fails(cmd('import', 'malformed', '--file', malformed), 1, /^ERROR: \(\w+\)/);
  await fails(cmd('show', 'malformed'), 3, /not found/i);
  await fails(cmd('import', 'no-file', '--file', path.join(scratch, 'absent.pfx')), 1, /Cannot read/);

  const pemFile = path.join(scratch, 'imported-combined.pem');
  fs.writeFileSync(pemFile, fs.readFileSync(path.join(scratch, 'imported.key'), 'utf8') + fs.readFileSync(path.join(scratch, 'imported.crt'), 'utf8'));
  const fromPem = await json(cmd('import', 'imported-pem', '--file', pemFile));
  assert.equal(fromPem.policy.secretProperties.contentType, 'application/x-pem-file');
  assert.deepEqual(Buffer.from(fromPem.cer, 'base64'), expectedDer);
});

test('delete, list-deleted, show-deleted, recover, backup, restore, purge', async () => {
  const policy = await policyFile('CN=lifecycle.example.test', 'lifecycle.example.test');
  await ok(cmd('create', 'lifecycle', '--policy', `@${policy}`));
  const backup = scratchFile('lifecycle.bak');
  await ok(cmd('backup', 'lifecycle', '--file', backup));

  const deleted = await json(cmd('delete', 'lifecycle'));
  assert.match(deleted.recoveryId, new RegExp(`/deletedcertificates/lifecycle$`));
  assert.match(deleted.deletedDate, ISO);
  assert.match(deleted.scheduledPurgeDate, ISO);
  const listedDeleted = await json(['keyvault', 'certificate', 'list-deleted', '--vault-name', VAULT]);
  assert.ok(listedDeleted.some((c: any) => c.name === 'lifecycle'));
  assert.equal((await json(cmd('show-deleted', 'lifecycle'))).name, 'lifecycle');

  const recovered = await json(cmd('recover', 'lifecycle'));
  assert.equal(recovered.name, 'lifecycle');
  assert.equal((await json(cmd('show', 'lifecycle'))).policy.x509CertificateProperties.subject, 'CN=lifecycle.example.test');

  await ok(cmd('delete', 'lifecycle'));
  await ok(cmd('purge', 'lifecycle'));
  await fails(cmd('show-deleted', 'lifecycle'), 3, /not found/i);

  const restored = await json(['keyvault', 'certificate', 'restore', '--vault-name', VAULT, '--file', backup]);
  assert.equal(restored.name, 'lifecycle');
});

test('pending show, merge (a CSR signed by an OpenSSL CA), pending delete', async () => {
  const pendingCmd = (command: string, name: string, ...rest: string[]) => ['keyvault', 'certificate', 'pending', command, '--vault-name', VAULT, '--name', name, ...rest];
  const policy = await json(['keyvault', 'certificate', 'get-default-policy']);
  policy.issuerParameters.name = 'Unknown';
  policy.x509CertificateProperties.subject = 'CN=csr.example.test';
  const operation = await json(cmd('create', 'csr', '--policy', JSON.stringify(policy)));
  assert.equal(operation.status, 'inProgress', 'an Unknown issuer waits for a merge: create does not wait for it');
  const pending = await json(pendingCmd('show', 'csr'));
  assert.equal(pending.status, 'inProgress');
  const csrFile = scratchFile('csr.pem');
  fs.writeFileSync(csrFile, `-----BEGIN CERTIFICATE REQUEST-----\n${pending.csr}\n-----END CERTIFICATE REQUEST-----\n`);
  assert.match(openssl('req', '-in', csrFile, '-noout', '-subject'), /CN\s*=\s*csr\.example\.test/);

  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '30', '-subj', '/CN=CLI Test CA');
  const signed = scratchFile('signed.pem');
  openssl('x509', '-req', '-in', csrFile, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', signed, '-days', '10');
  const chain = scratchFile('chain.pem');
  fs.writeFileSync(chain, fs.readFileSync(signed, 'utf8') + fs.readFileSync(path.join(scratch, 'ca.crt'), 'utf8'));
  const merged = await json(pendingCmd('merge', 'csr', '--file', chain));
  assert.equal(merged.name, 'csr');
  assert.deepEqual(Buffer.from(merged.cer, 'base64'), new crypto.X509Certificate(fs.readFileSync(signed)).raw);

  await ok(cmd('create', 'csr-cancelled', '--policy', JSON.stringify(policy)));
  const removed = await json(pendingCmd('delete', 'csr-cancelled'));
  assert.equal(removed.status, 'inProgress');
  await fails(pendingCmd('show', 'csr-cancelled'), 3, /not found/i);
});

test('issuer create, show, update, list, delete', async () => {
  const issuerCmd = (command: string, ...rest: string[]) => ['keyvault', 'certificate', 'issuer', command, '--vault-name', VAULT, ...rest];
  const created = await json(issuerCmd('create', '--issuer-name', 'partner', '--provider-name', 'Test', '--account-id', 'acct-1', '--password', 'issuer-secret', '--organization-id', 'org-1'));
  assert.equal(created.provider, 'Test');
  assert.deepEqual(created.credentials, { accountId: 'acct-1', password: null });
  assert.equal(created.organizationDetails.id, 'org-1');
  assert.equal(created.attributes.enabled, true);
  assert.match(created.id, new RegExp(`^${server.vaultUrl(VAULT)}/certificates/issuers/partner$`));
  assert.ok(!JSON.stringify(created).includes('issuer-secret'), 'the password is write-only');

  const updated = await json(issuerCmd('update', '--issuer-name', 'partner', '--disabled'));
  assert.equal(updated.attributes.enabled, false);
  assert.equal((await json(issuerCmd('show', '--issuer-name', 'partner'))).credentials.accountId, 'acct-1');
  assert.deepEqual(await json(issuerCmd('list')), [{ id: created.id, provider: 'Test' }]);
  await ok(issuerCmd('delete', '--issuer-name', 'partner'));
  await fails(issuerCmd('show', '--issuer-name', 'partner'), 3, /not found/i);
});

test('issuer admin add, list, delete (the organization id is kept)', async () => {
  const issuerCmd = (...rest: string[]) => ['keyvault', 'certificate', 'issuer', ...rest, '--vault-name', VAULT, '--issuer-name', 'admins'];
  await ok(issuerCmd('create', '--provider-name', 'Test', '--organization-id', 'org-9'));
  const added = await json(issuerCmd('admin', 'add', '--email', 'ada@example.test', '--first-name', 'Ada', '--last-name', 'Lovelace', '--phone', '555-0101'));
  assert.deepEqual(added, { email: 'ada@example.test', firstName: 'Ada', lastName: 'Lovelace', phone: '555-0101' });
  await ok(issuerCmd('admin', 'add', '--email', 'bob@example.test'));
  await fails(issuerCmd('admin', 'add', '--email', 'ADA@example.test'), 1, /already exists/);
  assert.deepEqual(await json(issuerCmd('admin', 'list')), [added, { email: 'bob@example.test', firstName: null, lastName: null, phone: null }]);
  const issuer = await json(issuerCmd('show'));
  assert.equal(issuer.organizationDetails.id, 'org-9');
  assert.equal(issuer.organizationDetails.adminDetails.length, 2);

  const { stdout } = await ok(issuerCmd('admin', 'delete', '--email', 'ada@example.test'));
  assert.equal(stdout, '');
  await fails(issuerCmd('admin', 'delete', '--email', 'ada@example.test'), 3, /not found/);
  assert.deepEqual((await json(issuerCmd('admin', 'list'))).map((a: any) => a.email), ['bob@example.test']);
  await fails(['keyvault', 'certificate', 'issuer', 'admin', 'list', '--vault-name', VAULT, '--issuer-name', 'missing'], 3, /not found/i);
});

test('create --validity overrides the policy; list and list-deleted --include-pending (with --maxresults) show a certificate awaiting its merge', async () => {
  const policy = await policyFile('CN=short.example.test', 'short.example.test');
  await ok(cmd('create', 'short', '--policy', `@${policy}`, '--validity', '6'));
  const short = await json(cmd('show', 'short'));
  assert.equal(short.policy.x509CertificateProperties.validityInMonths, 6);
  const days = (Date.parse(short.attributes.expires) - Date.parse(short.attributes.notBefore)) / 86_400_000;
  assert.ok(days >= 180 && days <= 185, `validity ${days} days`);
  await fails(cmd('create', 'short', '--policy', `@${policy}`, '--validity', '0'), 2, /--validity/);

  const unknown = JSON.parse(fs.readFileSync(policy, 'utf8'));
  unknown.issuerParameters.name = 'Unknown';
  const unknownFile = scratchFile('unknown.json');
  fs.writeFileSync(unknownFile, JSON.stringify(unknown));
  await ok(cmd('create', 'awaiting', '--policy', `@${unknownFile}`));
  const list = (...flags: string[]) => json(['keyvault', 'certificate', 'list', '--vault-name', VAULT, ...flags]);
  const names = (items: any[]) => items.map((c) => c.name);
  assert.ok(!names(await list()).includes('awaiting'));
  assert.ok(names(await list('--include-pending')).includes('awaiting'));
  assert.ok(!names(await list('--include-pending', 'false')).includes('awaiting'));
  assert.equal((await list('--include-pending', '--maxresults', '1')).length, 1);
  await ok(['keyvault', 'certificate', 'pending', 'delete', '--vault-name', VAULT, '--name', 'awaiting']);

  // Deleted while still waiting for its merge, a certificate is listed among the deleted ones with --include-pending only.
  await ok(cmd('create', 'awaiting-gone', '--policy', `@${unknownFile}`));
  await ok(cmd('delete', 'awaiting-gone'));
  const listDeleted = (...flags: string[]) => json(['keyvault', 'certificate', 'list-deleted', '--vault-name', VAULT, ...flags]);
  assert.ok(!names(await listDeleted()).includes('awaiting-gone'));
  assert.ok(names(await listDeleted('--include-pending')).includes('awaiting-gone'));
  await ok(cmd('purge', 'awaiting-gone'));
});

test('contact add, list, delete', async () => {
  const contactCmd = (command: string, ...rest: string[]) => ['keyvault', 'certificate', 'contact', command, '--vault-name', VAULT, ...rest];
  await ok(contactCmd('add', '--email', 'ops@example.test', '--name', 'Ops'));
  const added = await json(contactCmd('add', '--email', 'sec@example.test', '--phone', '555-0100'));
  assert.deepEqual(added.contactList, [
    { emailAddress: 'ops@example.test', name: 'Ops', phone: null },
    { emailAddress: 'sec@example.test', name: null, phone: '555-0100' },
  ]);
  assert.match(added.id, /\/certificates\/contacts$/);
  assert.deepEqual((await json(contactCmd('list'))).contactList, added.contactList);
  const remaining = await json(contactCmd('delete', '--email', 'ops@example.test'));
  assert.deepEqual(remaining.contactList.map((c: any) => c.emailAddress), ['sec@example.test']);
  await fails(contactCmd('delete', '--email', 'nobody@example.test'), 3, /No contact/);
  await ok(contactCmd('delete', '--email', 'sec@example.test'));
  await fails(contactCmd('list'), 3, /not found/i);
});
