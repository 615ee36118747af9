import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cliRunner } from '../support/cli.js';
import { startTestServer, type TestServer } from '../support/server.js';

/**
 * `coffer keyvault key …` end to end: `node bin/coffer.js` (the built CLI) against a real Coffer, with every signature
 * and ciphertext checked independently by node:crypto from the public key the CLI downloads.
 */
let server: TestServer;
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-cli-keys-test-'));
const VAULT = 'cli-keys';
const PREMIUM_VAULT = 'cli-keys-premium';
// HSM keys run in a SoftHSM2 token of this test's own (Debian's softhsm2); those tests are skipped without it.
const PKCS11_MODULE = '/usr/lib/softhsm/libsofthsm2.so';
const softHsm = fs.existsSync(PKCS11_MODULE) && fs.existsSync('/usr/bin/softhsm2-util');
const PIN = '97531';
const TOKEN = 'cli-keys-test';
// Release policies may name only authorities the deployment trusts (creating a policy fetches nothing).
const ATTESTATION_AUTHORITY = 'https://attest.cli-test.example';

const { coffer, ok, json, fails } = cliRunner(scratch, () => ({ COFFER_CONFIG_DIR: path.join(scratch, 'no-login'), COFFER_DATA_DIR: server.dataDir }));

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00$/;
const cmd = (command: string, name: string, ...rest: string[]) => ['keyvault', 'key', command, '--vault-name', VAULT, '--name', name, ...rest];
const sha256 = (data: string) => crypto.createHash('sha256').update(data).digest();

async function downloadPublicKey(name: string, encoding: 'PEM' | 'DER' = 'PEM') {
  const file = path.join(scratch, `${name}-${crypto.randomUUID()}.${encoding.toLowerCase()}`);
  await ok(cmd('download', name, '--file', file, '--encoding', encoding));
  const bytes = fs.readFileSync(file);
  return encoding === 'PEM' ? crypto.createPublicKey(bytes) : crypto.createPublicKey({ key: bytes, format: 'der', type: 'spki' });
}

before(async () => {
  if (softHsm) {
    // SoftHSM2 reads SOFTHSM2_CONF when the module initializes, here and in the spawned `coffer server start`.
    const tokenDir = path.join(scratch, 'softhsm');
    fs.mkdirSync(path.join(tokenDir, 'tokens'), { recursive: true });
    fs.writeFileSync(path.join(tokenDir, 'softhsm2.conf'), `directories.tokendir = ${tokenDir}/tokens\nobjectstore.backend = file\n`);
    process.env.SOFTHSM2_CONF = path.join(tokenDir, 'softhsm2.conf');
    execFileSync('softhsm2-util', ['--init-token', '--free', '--label', TOKEN, '--so-pin', '864200', '--pin', PIN], { stdio: 'ignore' });
  }
  server = await startTestServer({
    attestationAuthorities: [ATTESTATION_AUTHORITY], ...(softHsm ? { pkcs11: { module: PKCS11_MODULE, tokenLabel: TOKEN, pin: PIN } } : {}),
  });
  await server.createVault(VAULT, { softDeleteRetentionInDays: 7 });
  await server.createVault(PREMIUM_VAULT, { sku: { family: 'A', name: 'premium' } });
});

after(async () => {
  await server?.close();
  fs.rmSync(scratch, { recursive: true, force: true });
});

test('keyvault key --help lists az\'s key commands', async () => {
  const { stdout } = await ok(['keyvault', 'key', '--help']);
  for (const c of ['create', 'import', 'show', 'list', 'list-versions', 'set-attributes', 'delete', 'list-deleted', 'show-deleted',
    'recover', 'purge', 'backup', 'restore', 'rotate', 'download', 'random', 'rotation-policy', 'encrypt', 'decrypt', 'sign', 'verify']) {
    assert.match(stdout, new RegExp(`^  ${c}\\b`, 'm'), c);
  }
});

test('create, show, list, list-versions, set-attributes, rotate: az 2.45 key shapes', async () => {
  const created = await json(cmd('create', 'rsa-key', '--kty', 'RSA', '--size', '3072', '--ops', 'sign', 'verify', 'encrypt', 'decrypt',
    '--tags', 'env=dev', '--expires', '2040-01-01T00:00:00Z'));
  assert.deepEqual(Object.keys(created), ['attributes', 'key', 'managed', 'releasePolicy', 'tags']);
  assert.deepEqual(Object.keys(created.attributes), ['created', 'enabled', 'expires', 'exportable', 'notBefore', 'recoverableDays', 'recoveryLevel', 'updated']);
  assert.match(created.attributes.created, ISO);
  assert.equal(created.attributes.expires, '2040-01-01T00:00:00+00:00');
  assert.equal(created.attributes.enabled, true);
  assert.equal(created.key.kty, 'RSA');
  assert.deepEqual(created.key.keyOps, ['sign', 'verify', 'encrypt', 'decrypt']);
  assert.equal(created.key.e, 'AQAB');
  assert.equal(Buffer.from(created.key.n, 'base64url').length, 384);
  assert.equal(created.key.d, undefined, 'never a private component');
  assert.deepEqual(created.tags, { env: 'dev' });
  assert.match(created.key.kid, new RegExp(`^${server.vaultUrl(VAULT)}/keys/rsa-key/[0-9a-f]{32}$`));

  assert.deepEqual(await json(cmd('show', 'rsa-key')), created);
  assert.deepEqual(await json(['keyvault', 'key', 'show', '--id', created.key.kid]), created);

  const ec = await json(cmd('create', 'ec-key', '--curve', 'P-256'));
  assert.equal(ec.key.kty, 'EC');
  assert.equal(ec.key.crv, 'P-256');
  assert.equal(ec.key.n, null);

  const list = await json(['keyvault', 'key', 'list', '--vault-name', VAULT]);
  const listed = list.find((k: { name: string }) => k.name === 'rsa-key');
  assert.deepEqual(Object.keys(listed), ['attributes', 'kid', 'managed', 'name', 'tags']);
  assert.equal(listed.kid, `${server.vaultUrl(VAULT)}/keys/rsa-key`);
  assert.equal((await ok(['keyvault', 'key', 'list', '--vault-name', VAULT, '--query', 'length(@)', '-o', 'tsv'])).stdout, `${list.length}\n`);

  const rotated = await json(cmd('rotate', 'rsa-key'));
  assert.notEqual(rotated.key.kid, created.key.kid);
  assert.equal(Buffer.from(rotated.key.n, 'base64url').length, 384);
  const versions = await json(cmd('list-versions', 'rsa-key'));
  assert.deepEqual(versions.map((v: { kid: string }) => v.kid).sort(), [created.key.kid, rotated.key.kid].sort());

  const updated = await json(cmd('set-attributes', 'rsa-key', '--enabled', 'false', '--tags', 'env=prod', '--ops', 'verify'));
  assert.equal(updated.attributes.enabled, false);
  assert.deepEqual(updated.tags, { env: 'prod' });
  assert.deepEqual(updated.key.keyOps, ['verify']);
  // A disabled key refuses operations with Azure's error.
  await fails(cmd('sign', 'rsa-key', '--algorithm', 'RS256', '--digest', sha256('x').toString('base64')), 1, /^ERROR: \(Forbidden\)/);
});

test('sign with the vault, verify with node:crypto from the downloaded public key (RSA and EC), and back', async () => {
  await ok(cmd('create', 'signer', '--kty', 'RSA'));
  const publicKey = await downloadPublicKey('signer');
  const message = 'the message';
  for (const [alg, hash, padding] of [['RS256', 'sha256', crypto.constants.RSA_PKCS1_PADDING], ['PS384', 'sha384', crypto.constants.RSA_PKCS1_PSS_PADDING]] as const) {
    const digest = crypto.createHash(hash).update(message).digest();
    const signed = await json(cmd('sign', 'signer', '--algorithm', alg, '--digest', digest.toString('base64')));
    assert.deepEqual(Object.keys(signed), ['algorithm', 'kid', 'signature']);
    assert.equal(signed.algorithm, alg);
    assert.ok(crypto.verify(hash, Buffer.from(message), { key: publicKey, padding, saltLength: crypto.constants.RSA_PSS_SALTLEN_DIGEST },
      Buffer.from(signed.signature, 'base64')), `${alg} verifies with node:crypto`);
    const verified = await json(cmd('verify', 'signer', '--algorithm', alg, '--digest', digest.toString('base64'), '--signature', signed.signature));
    assert.equal(verified.isValid, true);
    assert.equal(verified.kid, `${server.vaultUrl(VAULT)}/keys/signer`);
  }
  // A signature made outside the vault verifies inside it; a wrong one does not.
  const digest = sha256(message);
  const wrong = Buffer.alloc(256, 1).toString('base64');
  assert.equal((await json(cmd('verify', 'signer', '--algorithm', 'RS256', '--digest', digest.toString('base64'), '--signature', wrong))).isValid, false);

  await ok(cmd('create', 'ec-signer', '--kty', 'EC', '--curve', 'P-384'));
  const ecPublic = await downloadPublicKey('ec-signer', 'DER');
  assert.equal(ecPublic.asymmetricKeyDetails?.namedCurve, 'secp384r1');
  const ecDigest = crypto.createHash('sha384').update(message).digest();
  const ecSigned = await json(cmd('sign', 'ec-signer', '--algorithm', 'ES384', '--digest', ecDigest.toString('base64')));
  assert.ok(crypto.verify('sha384', Buffer.from(message), { key: ecPublic, dsaEncoding: 'ieee-p1363' }, Buffer.from(ecSigned.signature, 'base64')));

  await fails(cmd('sign', 'ec-signer', '--algorithm', 'ES384', '--digest', sha256(message).toString('base64')), 1, /^ERROR: \(BadParameter\)/);
  await fails(cmd('sign', 'signer', '--algorithm', 'ES256', '--digest', digest.toString('base64')), 1, /^ERROR: \(BadParameter\)/);
  await fails(cmd('sign', 'signer', '--algorithm', 'XS256', '--digest', digest.toString('base64')), 2, /XS256/);
});

test('encrypt/decrypt with --data-type, interoperable with node:crypto', async () => {
  await ok(cmd('create', 'crypter', '--kty', 'RSA', '--ops', 'encrypt', 'decrypt'));
  const publicKey = await downloadPublicKey('crypter');
  const encrypted = await json(cmd('encrypt', 'crypter', '--algorithm', 'RSA-OAEP-256', '--value', 'hello keys', '--data-type', 'plaintext'));
  assert.deepEqual(Object.keys(encrypted), ['algorithm', 'kid', 'result']);
  assert.equal(Buffer.from(encrypted.result, 'base64').length, 256);
  const decrypted = await json(cmd('decrypt', 'crypter', '--algorithm', 'RSA-OAEP-256', '--value', encrypted.result, '--data-type', 'plaintext'));
  assert.equal(decrypted.result, 'hello keys');

  // Encrypted by node:crypto with the downloaded public key, decrypted by the vault (base64 in and out).
  const secret = crypto.randomBytes(32);
  const local = crypto.publicEncrypt({ key: publicKey, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, secret);
  const back = await json(cmd('decrypt', 'crypter', '--algorithm', 'RSA-OAEP', '--value', local.toString('base64')));
  assert.equal(back.result, secret.toString('base64'));

  await fails(cmd('encrypt', 'crypter', '--algorithm', 'RSA-OAEP', '--value', 'not base64!'), 2, /--value/);
  await fails(cmd('decrypt', 'crypter', '--algorithm', 'RSA-OAEP', '--value', Buffer.alloc(256).toString('base64')), 1, /^ERROR: \(BadParameter\) The ciphertext could not be decrypted/);
});

test('import a password-protected PEM private key (RSA and EC)', async () => {
  const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pemFile = path.join(scratch, 'import-rsa.pem');
  fs.writeFileSync(pemFile, rsa.privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'pem-pass' }));
  const imported = await json(cmd('import', 'imported-rsa', '--pem-file', pemFile, '--pem-password', 'pem-pass', '--ops', 'sign', 'verify'));
  assert.equal(imported.key.kty, 'RSA');
  assert.equal(imported.key.n, rsa.publicKey.export({ format: 'jwk' }).n);
  assert.deepEqual(imported.key.keyOps, ['sign', 'verify']);
  // The vault signs with the imported private key: node:crypto verifies with the original public key.
  const signed = await json(cmd('sign', 'imported-rsa', '--algorithm', 'RS256', '--digest', sha256('m').toString('base64')));
  assert.ok(crypto.verify('sha256', Buffer.from('m'), rsa.publicKey, Buffer.from(signed.signature, 'base64')));

  const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'secp256k1' });
  const ecImported = await json(cmd('import', 'imported-ec', '--pem-string', ec.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string));
  assert.equal(ecImported.key.crv, 'P-256K');
  assert.equal(ecImported.key.x, ec.publicKey.export({ format: 'jwk' }).x);

  await fails(cmd('import', 'bad', '--pem-file', pemFile, '--pem-password', 'wrong'), 1, /Cannot read a PEM private key/);
  await fails(cmd('import', 'bad', '--pem-file', path.join(scratch, 'missing.pem')), 1, /Cannot read/);
  await fails(cmd('import', 'bad'), 2, /usage error/);
  await fails(cmd('import', 'bad', '--pem-file', pemFile, '--pem-password', 'pem-pass', '--protection', 'hsm'), 1,
    /^ERROR: \(BadParameter\) Hardware key operation not allowed on standard vault/);
});

test('delete, list-deleted, show-deleted, recover, backup, purge, restore', async () => {
  const created = await json(cmd('create', 'lifecycle', '--kty', 'EC', '--curve', 'P-521'));
  const backupFile = path.join(scratch, 'lifecycle.backup');
  await ok(cmd('backup', 'lifecycle', '--file', backupFile));
  assert.ok(fs.statSync(backupFile).size > 0);

  const deleted = await json(cmd('delete', 'lifecycle'));
  assert.equal(deleted.recoveryId, `${server.vaultUrl(VAULT)}/deletedkeys/lifecycle`);
  assert.match(deleted.deletedDate, ISO);
  assert.match(deleted.scheduledPurgeDate, ISO);
  const listed = await json(['keyvault', 'key', 'list-deleted', '--vault-name', VAULT]);
  assert.ok(listed.some((k: { name: string; recoveryId: string }) => k.name === 'lifecycle' && k.recoveryId === deleted.recoveryId));
  assert.equal((await json(['keyvault', 'key', 'show-deleted', '--id', deleted.recoveryId])).key.kid, created.key.kid);
  await fails(cmd('show', 'lifecycle'), 3, /^ERROR: \(KeyNotFound\)/);

  assert.equal((await json(cmd('recover', 'lifecycle'))).key.kid, created.key.kid);
  assert.equal((await json(cmd('show', 'lifecycle'))).key.x, created.key.x);

  await ok(cmd('delete', 'lifecycle'));
  assert.equal((await ok(cmd('purge', 'lifecycle'))).stdout, '');
  await fails(cmd('show-deleted', 'lifecycle'), 3, /^ERROR: \(KeyNotFound\)/);
  const restored = await json(['keyvault', 'key', 'restore', '--vault-name', VAULT, '--file', backupFile]);
  assert.equal(restored.key.kid, created.key.kid);
  assert.equal(restored.key.x, created.key.x);
  await fails(['keyvault', 'key', 'restore', '--vault-name', VAULT, '--file', path.join(scratch, 'missing.backup')], 1, /Cannot read/);
});

test('random bytes and the rotation policy', async () => {
  const random = await json(['keyvault', 'key', 'random', '--vault-name', VAULT, '--count', '24']);
  assert.equal(Buffer.from(random.value, 'base64').length, 24);
  await fails(['keyvault', 'key', 'random', '--vault-name', VAULT, '--count', '0'], 2, /--count/);

  await ok(cmd('create', 'rotating'));
  const policyFile = path.join(scratch, 'policy.json');
  fs.writeFileSync(policyFile, JSON.stringify({
    lifetimeActions: [{ trigger: { timeAfterCreate: 'P90D' }, action: { type: 'Rotate' } }, { trigger: { timeBeforeExpiry: 'P30D' }, action: { type: 'Notify' } }],
    attributes: { expiryTime: 'P1Y' },
  }));
  const updated = await json(['keyvault', 'key', 'rotation-policy', 'update', '--vault-name', VAULT, '--name', 'rotating', '--value', `@${policyFile}`]);
  assert.equal(updated.expiresIn, 'P1Y');
  assert.deepEqual(updated.lifetimeActions.map((a: { action: string }) => a.action.toLowerCase()).sort(), ['notify', 'rotate']);
  const rotate = updated.lifetimeActions.find((a: { action: string }) => a.action.toLowerCase() === 'rotate');
  assert.equal(rotate.timeAfterCreate, 'P90D');
  const shown = await json(['keyvault', 'key', 'rotation-policy', 'show', '--vault-name', VAULT, '--name', 'rotating']);
  assert.deepEqual(shown.lifetimeActions, updated.lifetimeActions);
  assert.equal(shown.id, `${server.vaultUrl(VAULT)}/keys/rotating/rotationpolicy`);

  // az's SDK-shaped JSON (flattened action, snake case) is accepted too.
  const sdkShaped = await json(['keyvault', 'key', 'rotation-policy', 'update', '--vault-name', VAULT, '--name', 'rotating',
    '--value', JSON.stringify({ lifetime_actions: [{ action: 'Rotate', time_before_expiry: 'P7D' }], expires_in: 'P60D' })]);
  assert.equal(sdkShaped.expiresIn, 'P60D');
  assert.equal(sdkShaped.lifetimeActions[0].timeBeforeExpiry, 'P7D');
  await fails(['keyvault', 'key', 'rotation-policy', 'update', '--vault-name', VAULT, '--name', 'rotating', '--value', '{nope'], 2, /not valid JSON/);
});

test('errors: usage (2), not found (3), service refusals (1)', async () => {
  await fails(['keyvault', 'key', 'show', '--name', 'x'], 2, /usage error/);
  await fails(cmd('show', 'no-such-key'), 3, /^ERROR: \(KeyNotFound\)/);
  await fails(cmd('create', 'k', '--kty', 'OCT'), 2, /--kty/);
  await fails(cmd('create', 'k', '--kty', 'RSA', '--size', '1000'), 1, /^ERROR: \(BadParameter\) The specified RSA key size 1000/);
  // A standard vault refuses HSM protection with Azure's error.
  await fails(cmd('create', 'k', '--kty', 'RSA', '--protection', 'hsm'), 1, /^ERROR: \(BadParameter\) Hardware key operation not allowed on standard vault/);
  await fails(cmd('download', 'no-such-key', '--file', path.join(scratch, 'never.pem')), 3, /KeyNotFound/);
  assert.ok(!fs.existsSync(path.join(scratch, 'never.pem')));
});

test('server start: the PKCS#11 options are checked before anything starts', async () => {
  const dataDir = path.join(scratch, 'pkcs11-data');
  await fails(['server', 'start', '--data-dir', dataDir, '--pkcs11-module', '/nonexistent.so'], 2, /COFFER_PKCS11_PIN/, { COFFER_PKCS11_PIN: undefined });
  await fails(['server', 'start', '--data-dir', dataDir, '--pkcs11-module', '/nonexistent.so', '--pkcs11-pin-env', 'MY_PIN'], 2, /MY_PIN/);
  await fails(['server', 'start', '--data-dir', dataDir, '--pkcs11-module', '/m.so', '--pkcs11-slot', '0', '--pkcs11-token', 't'], 2, /not both/, { COFFER_PKCS11_PIN: '1234' });
  await fails(['server', 'start', '--data-dir', dataDir, '--pkcs11-token', 't'], 2, /need --pkcs11-module/);
  await fails(['server', 'start', '--data-dir', dataDir, '--pkcs11-slot', '-1'], 2, /slot index/);
});

test('HSM keys in a premium vault: --protection hsm and -HSM types, signatures checked by node:crypto', { skip: !softHsm && 'SoftHSM2 not installed' }, async () => {
  const premium = (command: string, name: string, ...rest: string[]) =>
    ['keyvault', 'key', command, '--vault-name', PREMIUM_VAULT, '--name', name, ...rest];
  const rsa = await json(premium('create', 'hsm-rsa', '--kty', 'RSA', '--protection', 'hsm', '--size', '2048'));
  assert.equal(rsa.key.kty, 'RSA-HSM');
  const ec = await json(premium('create', 'hsm-ec', '--kty', 'EC-HSM', '--curve', 'P-256'));
  assert.equal(ec.key.kty, 'EC-HSM');
  for (const [name, alg, options] of [['hsm-rsa', 'RS256', {}], ['hsm-ec', 'ES256', { dsaEncoding: 'ieee-p1363' }]] as const) {
    const file = path.join(scratch, `${name}.pem`);
    await ok(premium('download', name, '--file', file));
    const signed = await json(premium('sign', name, '--algorithm', alg, '--digest', sha256('hsm').toString('base64')));
    assert.ok(crypto.verify('sha256', Buffer.from('hsm'), { key: crypto.createPublicKey(fs.readFileSync(file)), ...options }, Buffer.from(signed.signature, 'base64')), alg);
  }
});

test('server start --pkcs11-module/--pkcs11-token/--pkcs11-pin-env opens the token', { skip: !softHsm && 'SoftHSM2 not installed' }, async () => {
  const dataDir = path.join(scratch, 'pkcs11-server');
  const child = spawn(process.execPath, [path.resolve('bin/coffer.js'), 'server', 'start', '--data-dir', dataDir, '--port', '0',
    '--pkcs11-module', PKCS11_MODULE, '--pkcs11-token', TOKEN, '--pkcs11-pin-env', 'CLI_KEYS_PIN', '--log-level', 'silent'], {
    env: { ...process.env, CLI_KEYS_PIN: PIN }, cwd: scratch,
  });
  try {
    const output = await new Promise<string>((resolve, reject) => {
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => {
        stdout += d;
        if (stdout.includes('Coffer is ready')) resolve(stdout);
      });
      child.stderr.on('data', (d) => { stderr += d; });
      child.on('close', (code) => reject(new Error(`coffer server start exited ${code}: ${stderr}`)));
    });
    assert.match(output, /Coffer is ready/);
  } finally {
    child.kill('SIGTERM');
  }
  // A wrong PIN stops the start with the token's error.
  const wrong = await coffer(['server', 'start', '--data-dir', path.join(scratch, 'pkcs11-wrong'), '--port', '0',
    '--pkcs11-module', PKCS11_MODULE, '--pkcs11-token', TOKEN, '--log-level', 'silent'], { COFFER_PKCS11_PIN: '000000' });
  assert.notEqual(wrong.code, 0);
  assert.match(wrong.stderr, /CKR_PIN_INCORRECT/);
});

test('key create/import/set-attributes --exportable --policy [--immutable]: the release policy as az sends and prints it', async () => {
  const policy = { version: '1.0.0', anyOf: [{ authority: ATTESTATION_AUTHORITY, allOf: [{ claim: 'x-ms-attestation-type', equals: 'sevsnpvm' }] }] };
  const policyFile = path.join(scratch, 'release-policy.json');
  fs.writeFileSync(policyFile, JSON.stringify(policy));
  const created = await json(cmd('create', 'cli-exportable', '--kty', 'RSA', '--exportable', 'true', '--policy', policyFile));
  assert.equal(created.attributes.exportable, true);
  assert.equal(created.releasePolicy.contentType, 'application/json; charset=utf-8');
  assert.deepEqual(JSON.parse(Buffer.from(created.releasePolicy.encodedPolicy, 'base64url').toString('utf8')), policy);
  assert.equal(created.releasePolicy.immutable, false);

  const stricter = { ...policy, anyOf: [{ ...policy.anyOf[0], allOf: [{ claim: 'x-ms-attestation-type', equals: 'tdxvm' }] }] };
  const updated = await json(cmd('set-attributes', 'cli-exportable', '--policy', JSON.stringify(stricter), '--immutable', 'true'));
  assert.equal(updated.releasePolicy.immutable, true);
  await fails(cmd('set-attributes', 'cli-exportable', '--policy', JSON.stringify(policy)), 1, /^ERROR: \(BadParameter\).*immutable/);

  const pem = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  const imported = await json(cmd('import', 'cli-exportable-ec', '--pem-string', pem, '--exportable', '--policy', `@${policyFile}`));
  assert.equal(imported.attributes.exportable, true);
  assert.ok(imported.releasePolicy.encodedPolicy);

  const untrusted = { ...policy, anyOf: [{ ...policy.anyOf[0], authority: 'https://evil.example' }] };
  await fails(cmd('create', 'cli-untrusted', '--exportable', '--policy', JSON.stringify(untrusted)), 1, /^ERROR: \(BadParameter\).*not trusted/);
  await fails(cmd('create', 'cli-no-policy', '--exportable'), 1, /^ERROR: \(BadParameter\).*release policy/);
  await fails(cmd('create', 'cli-immutable-alone', '--immutable'), 2, /--immutable needs --policy/);
});
