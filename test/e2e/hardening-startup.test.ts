import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startCoffer } from '../../src/server.js';
import { SealError, type SealKind } from '../../src/crypto/seal.js';
import { seedTestCa } from '../support/server.js';
import { freshDatabase } from '../support/postgres.js';

// Bad start-up options are refused with a clear error before any key is made (`--seal` and COFFER_SEAL are free text).
test('an unknown seal kind is refused: no root key file is written and nothing starts', async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-seal-'));
  try {
    seedTestCa(dataDir);
    const storageUrl = process.env.COFFER_TEST_STORAGE_URL ? await freshDatabase(process.env.COFFER_TEST_STORAGE_URL) : undefined;
    await assert.rejects(
      startCoffer({ host: '127.0.0.1', port: 0, dataDir, dnsSuffix: 'vault.localhost', seal: 'bogus' as SealKind, logLevel: 'silent', storageUrl }),
      (err: unknown) => err instanceof SealError && /unknown seal 'bogus': use file, passphrase, pkcs11/.test(err.message),
    );
    assert.equal(fs.existsSync(path.join(dataDir, 'root.key')), false);
    assert.equal(fs.existsSync(path.join(dataDir, 'bootstrap-admin.json')), false);
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
