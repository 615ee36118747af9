import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ClientSecretCredential } from '@azure/identity';
import { SecretClient } from '@azure/keyvault-secrets';
import { startTestServer, seedTestCa, createVaultAsAdmin } from '../support/server.js';
import { rawRequest } from '../support/raw-http.js';
import { restError } from '../support/sdk-errors.js';
import { startChildServer } from '../support/child-server.js';
import type { BootstrapAdminFile } from '../../src/bootstrap.js';

/**
 * Encryption at rest, proven from the outside: a real `coffer server start` (debug logging) stores a distinctive
 * plaintext through every secrets operation, and neither its database files nor its log output ever contain it
 * (nor the bearer token or client secret). Then: ciphertexts swapped between rows fail to open instead of
 * answering with the other row's value.
 */

/** Every spelling of `needle` a careless implementation might write: raw, UTF-16, hex, and base64 at each alignment. */
function encodings(needle: string): Buffer[] {
  const raw = Buffer.from(needle, 'utf8');
  const out = [raw, Buffer.from(needle, 'utf16le'), Buffer.from(raw.toString('hex')), Buffer.from(raw.toString('hex').toUpperCase())];
  for (let shift = 0; shift < 3; shift++) {
    // The base64 of a substring is stable once the substring starts on a 3-byte boundary.
    const aligned = raw.subarray(shift);
    const b64 = aligned.subarray(0, aligned.length - (aligned.length % 3)).toString('base64');
    out.push(Buffer.from(b64), Buffer.from(b64.replace(/\+/g, '-').replace(/\//g, '_')));
  }
  return out;
}

function assertAbsent(haystack: Buffer, needle: string, where: string, what: string) {
  for (const form of encodings(needle)) assert.ok(!haystack.includes(form), `${what} found in ${where}`);
}

/** Every file under the data dir (database, WAL, shared memory, keys), except the bootstrap credentials file. */
function dataFiles(dataDir: string): string[] {
  return fs.readdirSync(dataDir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name !== 'bootstrap-admin.json')
    .map((e) => path.join(e.parentPath ?? (e as any).path, e.name));
}

/** `coffer server start` from the sources (what bin/coffer.js runs once built), with debug logging, as a child process. */
async function startServer(dataDir: string) {
  const server = await startChildServer(['--port', '0', '--data-dir', dataDir, '--log-level', 'debug'], {
    fromSources: true, env: { ...process.env, COFFER_DATA_DIR: dataDir }, timeoutMs: 60_000,
  });
  return { ...server, output: () => Buffer.from(server.stdout() + server.stderr()) };
}

test('neither the database files nor the debug log ever hold a stored value, a token or a client secret', async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-at-rest-'));
  seedTestCa(dataDir);
  const { stop, output } = await startServer(dataDir);
  try {
    const admin = JSON.parse(fs.readFileSync(path.join(dataDir, 'bootstrap-admin.json'), 'utf8')) as BootstrapAdminFile;
    const credential = new ClientSecretCredential(admin.tenantId, admin.clientId, admin.clientSecret, {
      authorityHost: admin.authorityHost, disableInstanceDiscovery: true,
    });
    const managementToken = (await credential.getToken(`${admin.managementEndpoint}/.default`))!.token;
    for (const vault of ['atrestvault', 'atrestcopy']) await createVaultAsAdmin(admin, credential, vault);
    const vaultUrl = (name: string) => `https://${name}.${admin.vaultDnsSuffix}:${new URL(admin.managementEndpoint).port}`;
    const client = new SecretClient(vaultUrl('atrestvault'), credential, { retryOptions: { maxRetries: 0 } });
    const copy = new SecretClient(vaultUrl('atrestcopy'), credential, { retryOptions: { maxRetries: 0 } });

    const marker = `PLAINTEXT-MARKER-${crypto.randomBytes(12).toString('hex')}`;
    const v1 = await client.setSecret('marked', marker, { contentType: 'text/plain' });
    await client.setSecret('marked', `${marker}-v2`);
    assert.equal((await client.getSecret('marked', { version: v1.properties.version })).value, marker);
    await client.updateSecretProperties('marked', v1.properties.version!, { tags: { rotated: 'yes' } });
    for await (const _ of client.listPropertiesOfSecrets()) { /* walk the listing */ }
    const backup = await client.backupSecret('marked');
    await copy.restoreSecretBackup(backup!);
    assert.equal((await copy.getSecret('marked')).value, `${marker}-v2`);
    await (await client.beginDeleteSecret('marked')).pollUntilDone();
    await client.getDeletedSecret('marked');
    await (await client.beginRecoverDeletedSecret('marked')).pollUntilDone();
    // Failing requests carrying the value must not echo or log it either.
    const dataToken = (await credential.getToken(`https://${admin.vaultDnsSuffix}:${new URL(admin.managementEndpoint).port}/.default`))!.token;
    const rejected = [
      await rawRequest(`${vaultUrl('atrestvault')}/secrets/bad_name?api-version=7.5`, { method: 'PUT', token: dataToken, body: { value: marker } }),
      await rawRequest(`${vaultUrl('atrestvault')}/secrets/marked?api-version=7.5`, { method: 'PUT', token: dataToken, body: `{"value": "${marker}"` , headers: { 'content-type': 'application/json' } }),
      await rawRequest(`${vaultUrl('atrestvault')}/secrets/marked?api-version=7.5`, { method: 'PUT', token: dataToken, body: { value: marker, tags: 'not-tags' } }),
      await rawRequest(`${vaultUrl('atrestvault')}/secrets/marked?api-version=7.5`, { method: 'PUT', token: dataToken, body: { value: 42, contentType: marker } }),
      await rawRequest(`${vaultUrl('atrestvault')}/secrets/marked?api-version=9.9`, { method: 'PUT', token: dataToken, body: { value: marker } }),
      await rawRequest(`${vaultUrl('atrestvault')}/secrets/marked?api-version=7.5`, { method: 'PUT', token: `${dataToken}x`, body: { value: marker } }),
    ];
    for (const res of rejected) {
      assert.ok(res.status >= 400 && res.status < 500, `${res.status} ${res.text}`);
      assert.ok(!res.text.includes(marker), `an error response echoed the value: ${res.text}`);
    }

    const secrets: [string, string][] = [['stored value', marker], ['bearer token', dataToken], ['management token', managementToken], ['client secret', admin.clientSecret]];
    const check = (phase: string) => {
      for (const file of dataFiles(dataDir)) {
        const content = fs.readFileSync(file);
        for (const [what, value] of secrets) assertAbsent(content, value, `${phase}: ${path.relative(dataDir, file)}`, what);
      }
    };
    assert.ok(fs.existsSync(path.join(dataDir, 'coffer.db-wal')), 'the WAL is examined while the server runs');
    // Positive control: the search does see what the store keeps in clear (names and tags are not secret).
    const stored = Buffer.concat(['coffer.db', 'coffer.db-wal'].map((f) => fs.readFileSync(path.join(dataDir, f))));
    assert.ok(stored.includes(Buffer.from('"rotated":"yes"')), 'the tag written last is visible in the database files');
    check('running');
    await stop();
    check('stopped');

    const log = output();
    assert.match(log.toString('utf8'), /"url":"\/secrets\/marked".*"msg":"incoming request"/, 'debug logging was on: every request is logged');
    for (const [what, value] of secrets) assertAbsent(log, value, 'the server log', what);
  } finally {
    await stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test('ciphertexts are bound to their row: swapped payloads fail to open instead of answering the other value', async () => {
  const server = await startTestServer();
  try {
    await server.createVault('swapvault');
    await server.createVault('swapvault2');
    const client = server.secretClient('swapvault');
    const a = await client.setSecret('swap-a', 'value-of-a');
    const b = await client.setSecret('swap-b', 'value-of-b');
    const a2 = await client.setSecret('swap-a', 'value-of-a-v2');
    await server.secretClient('swapvault2').setSecret('swap-a', 'value-in-other-vault');
    const db = server.coffer.storage.db;

    const payloadOf = async (version: string) =>
      (await db.selectFrom('object_versions').select('payload').where('version', '=', version).executeTakeFirstOrThrow()).payload;
    const setPayload = (version: string, payload: Buffer) =>
      db.updateTable('object_versions').set({ payload }).where('version', '=', version).execute();
    const expectUnreadable = async (name: string, version: string | undefined, why: string) => {
      const err = await restError(() => client.getSecret(name, { version }));
      assert.equal(err.statusCode, 500, why);
      assert.ok(!err.message.includes('value-of'), 'the error does not carry a value');
    };
    async function withSwapped(x: string, y: string, why: string, verify: () => Promise<void>) {
      const [px, py] = [await payloadOf(x), await payloadOf(y)];
      await setPayload(x, py);
      await setPayload(y, px);
      await verify();
      await setPayload(x, px);
      await setPayload(y, py);
    }

    await withSwapped(a2.properties.version!, b.properties.version!, 'across names', async () => {
      await expectUnreadable('swap-a', undefined, 'swap-a holding swap-b\'s ciphertext');
      await expectUnreadable('swap-b', undefined, 'swap-b holding swap-a\'s ciphertext');
    });
    await withSwapped(a.properties.version!, a2.properties.version!, 'across versions', async () => {
      await expectUnreadable('swap-a', a.properties.version, 'version 1 holding version 2\'s ciphertext');
      await expectUnreadable('swap-a', undefined, 'version 2 holding version 1\'s ciphertext');
    });
    const otherVaultVersion = (await server.secretClient('swapvault2').getSecret('swap-a')).properties.version!;
    await withSwapped(a2.properties.version!, otherVaultVersion, 'across vaults', async () => {
      await expectUnreadable('swap-a', undefined, 'same name, other vault\'s ciphertext');
    });

    // Put back, every value reads again: the failures came from the binding, not from damage.
    assert.equal((await client.getSecret('swap-a')).value, 'value-of-a-v2');
    assert.equal((await client.getSecret('swap-a', { version: a.properties.version })).value, 'value-of-a');
    assert.equal((await client.getSecret('swap-b')).value, 'value-of-b');
  } finally {
    await server.close();
  }
});
