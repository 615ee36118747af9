import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ClientSecretCredential } from '@azure/identity';
import { SecretClient } from '@azure/keyvault-secrets';
import { startCoffer, type CofferOptions } from '../../src/server.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { freshDatabase } from '../support/postgres.js';
import { createSoftHsmToken, inspectToken, softHsmAvailable } from '../support/softhsm.js';

/**
 * The `pkcs11` seal: Coffer's root key is kept only wrapped by an AES key inside a SoftHSM2 token, so the data
 * directory holds no root key; a restart opens everything again through the token, and the file seal cannot.
 */
const available = softHsmAvailable;
const PIN = '112233';
let token: ReturnType<typeof createSoftHsmToken> | undefined;
let server: TestServer | undefined;
let storageUrl: string | undefined;

before(async () => {
  if (!available) return;
  token = createSoftHsmToken('coffer-seal', PIN);
  storageUrl = process.env.COFFER_TEST_STORAGE_URL ? await freshDatabase(process.env.COFFER_TEST_STORAGE_URL) : undefined;
});
after(async () => {
  if (server) fs.rmSync(server.dataDir, { recursive: true, force: true });
  token?.remove();
});

test('the root key is sealed by the token: nothing on disk opens the data, a restart through the token does', { skip: !available && 'softhsm2 is not installed' }, async () => {
  const pkcs11 = token!.options;
  server = await startTestServer({ seal: 'pkcs11', pkcs11, storageUrl });
  const { dataDir } = server;
  await server.createVault('sealed');
  await server.secretClient('sealed').setSecret('kept', 'sealed-by-the-token');
  await server.coffer.close(); // the data dir stays for the restart (the harness's close() would remove it)
  assert.equal(fs.existsSync(path.join(dataDir, 'root.key')), false, 'no root key file');

  // The seal key is a sensitive, non-extractable AES key in the token.
  const view = inspectToken('coffer-seal', PIN);
  const sealKeys = view.objects('secret').filter((o) => o.label === 'coffer-root-seal');
  view.close();
  assert.equal(sealKeys.length, 1);
  assert.deepEqual([sealKeys[0].sensitive, sealKeys[0].extractable], [true, false]);

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
