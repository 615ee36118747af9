import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { ClientSecretCredential } from '@azure/identity';
import { SecretClient } from '@azure/keyvault-secrets';
import type * as Pkcs11Types from 'pkcs11js';
import { startCoffer, type CofferOptions } from '../../src/server.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { freshDatabase } from '../support/postgres.js';

/**
 * The `pkcs11` seal: Coffer's root key is kept only wrapped by an AES key inside a SoftHSM2 token, so the data
 * directory holds no root key; a restart opens everything again through the token, and the file seal cannot.
 */
const MODULE = '/usr/lib/softhsm/libsofthsm2.so';
const available = fs.existsSync(MODULE) && fs.existsSync('/usr/bin/softhsm2-util');
const PIN = '112233';
let tokenDir: string;
let server: TestServer | undefined;
let storageUrl: string | undefined;
const pkcs11 = { module: MODULE, tokenLabel: 'coffer-seal', pin: PIN };

before(async () => {
  if (!available) return;
  tokenDir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-softhsm-seal-'));
  fs.mkdirSync(path.join(tokenDir, 'tokens'));
  fs.writeFileSync(path.join(tokenDir, 'softhsm2.conf'), `directories.tokendir = ${tokenDir}/tokens\nobjectstore.backend = file\n`);
  process.env.SOFTHSM2_CONF = path.join(tokenDir, 'softhsm2.conf');
  execFileSync('softhsm2-util', ['--init-token', '--free', '--label', 'coffer-seal', '--so-pin', '135791', '--pin', PIN], { stdio: 'ignore' });
  storageUrl = process.env.COFFER_TEST_STORAGE_URL ? await freshDatabase(process.env.COFFER_TEST_STORAGE_URL) : undefined;
});
after(async () => {
  if (server) fs.rmSync(server.dataDir, { recursive: true, force: true });
  if (tokenDir) fs.rmSync(tokenDir, { recursive: true, force: true });
});

test('the root key is sealed by the token: nothing on disk opens the data, a restart through the token does', { skip: !available && 'softhsm2 is not installed' }, async () => {
  server = await startTestServer({ seal: 'pkcs11', pkcs11, storageUrl });
  const { dataDir } = server;
  await server.createVault('sealed');
  await server.secretClient('sealed').setSecret('kept', 'sealed-by-the-token');
  await server.coffer.close(); // the data dir stays for the restart (the harness's close() would remove it)
  assert.equal(fs.existsSync(path.join(dataDir, 'root.key')), false, 'no root key file');

  // The seal key is a sensitive, non-extractable AES key in the token.
  const pkcs11js = createRequire(import.meta.url)('pkcs11js') as typeof Pkcs11Types;
  const p11 = new pkcs11js.PKCS11();
  p11.load(MODULE);
  try {
    p11.C_Initialize();
  } catch { /* the server in this process initialised the module already */ }
  const slot = p11.C_GetSlotList(true).find((s) => p11.C_GetTokenInfo(s).label.trim() === 'coffer-seal')!;
  const session = p11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION);
  p11.C_FindObjectsInit(session, [{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY }, { type: pkcs11js.CKA_LABEL, value: 'coffer-root-seal' }]);
  const handles = p11.C_FindObjects(session, 10);
  p11.C_FindObjectsFinal(session);
  assert.equal(handles.length, 1);
  const [sensitive, extractable] = p11.C_GetAttributeValue(session, handles[0], [{ type: pkcs11js.CKA_SENSITIVE }, { type: pkcs11js.CKA_EXTRACTABLE }]);
  assert.deepEqual([(sensitive.value as Buffer)[0], (extractable.value as Buffer)[0]], [1, 0]);
  p11.C_CloseSession(session);

  const options: CofferOptions = { host: '127.0.0.1', port: 0, dataDir, dnsSuffix: 'vault.localhost', seal: 'file', logLevel: 'silent', storageUrl };
  // Without the token, a root key from a file does not open this database.
  await assert.rejects(startCoffer(options), /wrong root key/);
  fs.rmSync(path.join(dataDir, 'root.key'));

  const restarted = await startCoffer({ ...options, seal: 'pkcs11', pkcs11 });
  try {
    const admin = JSON.parse(fs.readFileSync(path.join(dataDir, 'bootstrap-admin.json'), 'utf8'));
    const credential = new ClientSecretCredential(admin.tenantId, admin.clientId, admin.clientSecret, { authorityHost: admin.authorityHost, disableInstanceDiscovery: true });
    const secrets = new SecretClient(restarted.endpoints.vaultUrl('sealed'), credential, { retryOptions: { maxRetries: 0 } });
    assert.equal((await secrets.getSecret('kept')).value, 'sealed-by-the-token');
  } finally {
    await restarted.close();
  }
});

test('the pkcs11 seal without a token is refused at start', async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-seal-none-'));
  try {
    await assert.rejects(startCoffer({ host: '127.0.0.1', port: 0, dataDir, dnsSuffix: 'vault.localhost', seal: 'pkcs11', logLevel: 'silent' }),
      /needs a PKCS#11 token/);
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
