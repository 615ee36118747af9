import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { ClientSecretCredential } from '@azure/identity';
import { CryptographyClient, KeyClient } from '@azure/keyvault-keys';
import { createVaultAsAdmin, seedTestCa } from '../support/server.js';
import { freshDatabase } from '../support/postgres.js';
import { startChildServer, type ChildServer } from '../support/child-server.js';
import { SOFTHSM_MODULE, createSoftHsmToken, inspectToken, softHsmAvailable } from '../support/softhsm.js';
import { createKeyring } from '../../src/crypto/envelope.js';
import { createBackupCodec } from '../../src/objects/collection-helpers.js';

/**
 * An HSM key's private material is provably absent from everything Coffer writes: the database (every key payload
 * decrypted with the deployment's root key holds only a token reference), every file of the data directory, the
 * backup blobs (decrypted too) and the server's logs at debug level. Keys are imported here so that their private
 * material is known and can be searched for. SoftHSM2 reports the token objects as sensitive and non-extractable,
 * and purging a key destroys its token object. The server runs as `coffer server start`, a process of its own, so
 * that its whole log output can be read.
 */
const skip = !softHsmAvailable && 'softhsm2 is not installed';
const PIN = '975310';
const LABEL = 'coffer-absence';
let token: ReturnType<typeof createSoftHsmToken> | undefined;
let dataDir: string;
let storageUrl: string | undefined;
let server: ChildServer | undefined;
let port: number;

before(async () => {
  if (!softHsmAvailable) return;
  token = createSoftHsmToken(LABEL, PIN);
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-absence-'));
  seedTestCa(dataDir);
  storageUrl = process.env.COFFER_TEST_STORAGE_URL ? await freshDatabase(process.env.COFFER_TEST_STORAGE_URL) : undefined;
  server = await startChildServer([
    '--port', '0', '--data-dir', dataDir, '--log-level', 'debug', '--throttle', 'off', '--scheduler-interval', '1s',
    '--pkcs11-module', SOFTHSM_MODULE, '--pkcs11-token', LABEL, ...(storageUrl ? ['--storage', storageUrl] : []),
  ], { fromSources: true, env: { ...process.env, COFFER_PKCS11_PIN: PIN } });
  port = server.port;
});
after(async () => {
  await server?.stop();
  token?.remove();
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

/** Every file under a directory, recursively. */
const filesUnder = (dir: string): string[] => fs.readdirSync(dir, { withFileTypes: true })
  .flatMap((e) => (e.isDirectory() ? filesUnder(path.join(dir, e.name)) : [path.join(dir, e.name)]));

/** A private component in every encoding Coffer or a logger could write it in. */
const encodings = (secret: Buffer) => [secret, Buffer.from(secret.toString('base64')), Buffer.from(secret.toString('base64url')), Buffer.from(secret.toString('hex'))];

function assertAbsent(haystack: Buffer, secrets: Buffer[], where: string) {
  for (const secret of secrets) {
    for (const needle of encodings(secret)) assert.equal(haystack.includes(needle), false, `private material found in ${where}`);
  }
}

/** Every key version's row: vault id, name key, version, sealed payload, and the vault's wrapped data key. */
async function keyRows(): Promise<{ vault_id: string; name_key: string; version: string; payload: Buffer; wrapped_data_key: Buffer; meta: string }[]> {
  const sql = `select v.vault_id, v.name_key, v.version, v.payload, v.meta, vaults.wrapped_data_key from object_versions v
    join vaults on vaults.id = v.vault_id where v.collection = 'keys'`;
  if (!storageUrl) {
    const db = new Database(path.join(dataDir, 'coffer.db'), { readonly: true });
    try {
      return db.prepare(sql).all() as any;
    } finally {
      db.close();
    }
  }
  const client = new pg.Client({ connectionString: storageUrl });
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

test('HSM keys: private material absent from database, data dir, backups and logs; token objects sensitive; purge destroys them', { skip }, async () => {
  const admin = JSON.parse(fs.readFileSync(path.join(dataDir, 'bootstrap-admin.json'), 'utf8'));
  const credential = new ClientSecretCredential(admin.tenantId, admin.clientId, admin.clientSecret, { authorityHost: admin.authorityHost, disableInstanceDiscovery: true });
  await createVaultAsAdmin(admin, credential, 'absence', { sku: { family: 'A', name: 'premium' } });
  const client = new KeyClient(`https://absence.vault.localhost:${port}`, credential, { retryOptions: { maxRetries: 0 } });

  const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({ format: 'jwk' });
  const b = (v?: string) => Buffer.from(v!, 'base64url');
  const secrets = [b(rsa.d), b(rsa.p), b(rsa.q), b(rsa.dp), b(rsa.dq), b(rsa.qi), b(ec.d)];
  const rsaKey = await client.importKey('imported-rsa', {
    kty: 'RSA', n: b(rsa.n), e: b(rsa.e), d: b(rsa.d), p: b(rsa.p), q: b(rsa.q), dp: b(rsa.dp), dq: b(rsa.dq), qi: b(rsa.qi),
  }, { hardwareProtected: true });
  const ecKey = await client.importKey('imported-ec', { kty: 'EC', crv: 'P-384', x: b(ec.x), y: b(ec.y), d: b(ec.d) }, { hardwareProtected: true });
  assert.deepEqual([rsaKey.keyType, ecKey.keyType], ['RSA-HSM', 'EC-HSM']);
  await client.createKey('generated', 'RSA-HSM');
  for (const [key, alg, size] of [[rsaKey, 'RS256', 32], [ecKey, 'ES384', 48]] as const) {
    const signed = await new CryptographyClient(key.id!, credential).sign(alg, crypto.randomBytes(size));
    assert.ok(signed.result.length > 0);
  }
  const blobs = await Promise.all(['imported-rsa', 'imported-ec', 'generated'].map((name) => client.backupKey(name)));

  // The database: every key payload, decrypted with the deployment's root key, is a token reference and nothing else.
  const keyring = createKeyring(Buffer.from(fs.readFileSync(path.join(dataDir, 'root.key'), 'utf8').trim(), 'base64'));
  const rows = await keyRows();
  assert.equal(rows.length, 3);
  for (const row of rows) {
    const payload = keyring.openValue(row.vault_id, row.wrapped_data_key, `${row.vault_id}/keys/${row.name_key}/${row.version}`, row.payload);
    assert.deepEqual(Object.keys(JSON.parse(payload.toString('utf8'))), ['pkcs11Id'], `${row.name_key}'s payload is a reference`);
    assertAbsent(Buffer.concat([payload, Buffer.from(row.meta)]), secrets, `the ${row.name_key} row`);
  }
  // Backups: the blob and the document inside it.
  const codec = createBackupCodec(keyring, 'keys');
  for (const blob of blobs) {
    assertAbsent(Buffer.from(blob!), secrets, 'a backup blob');
    const doc = codec.open(Buffer.from(blob!).toString('base64url'));
    for (const v of doc.versions) {
      assert.deepEqual(Object.keys(JSON.parse(Buffer.from(v.payload, 'base64').toString('utf8'))), ['pkcs11Id']);
      assertAbsent(Buffer.from(JSON.stringify(doc)), secrets, 'a backup document');
    }
  }
  // Every file of the data directory (the SQLite database and its WAL, audit logs, settings…) and the debug logs.
  for (const file of filesUnder(dataDir)) assertAbsent(fs.readFileSync(file), secrets, file);
  const logs = server!.stdout() + server!.stderr();
  assert.match(logs, /incoming request/, 'the server logged every request (debug level)');
  assertAbsent(Buffer.from(logs), secrets, 'the server logs');

  // The token: sensitive, non-extractable objects, one per key version.
  const view = inspectToken(LABEL, PIN);
  try {
    const objects = view.objects('private');
    assert.equal(objects.length, 3);
    for (const o of objects) assert.deepEqual([o.sensitive, o.extractable], [true, false]);

    // Purging a key destroys its token object (after the collection job's grace period, under an advanced clock).
    const purgedId = rows.find((r) => r.name_key === 'imported-ec')!.meta.match(/"hsmId":"([0-9a-f]+)"/)![1];
    await (await client.beginDeleteKey('imported-ec')).pollUntilDone();
    await client.purgeDeletedKey('imported-ec');
    const management = (await credential.getToken(`${admin.managementEndpoint}/.default`))!.token;
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`${admin.managementEndpoint}/coffer/admin/clock/advance`, {
        method: 'POST', headers: { authorization: `Bearer ${management}`, 'content-type': 'application/json' }, body: JSON.stringify({ advance: '2m' }),
      });
      assert.equal(res.status, 200, await res.text());
    }
    const remaining = view.objects('private').map((o) => o.id);
    assert.equal(remaining.length, 2);
    assert.equal(remaining.includes(purgedId), false, 'the purged key\'s token object is destroyed');
  } finally {
    view.close();
  }
});
