import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { PipelinePolicy } from '@azure/core-rest-pipeline';
import type { SecretClient } from '@azure/keyvault-secrets';
import { startTestServer, type TestServer } from '../support/server.js';
import { dataPlaneToken, rawRequest } from '../support/raw-http.js';
import { restError, innerCode } from '../support/sdk-errors.js';

/**
 * The secrets data plane driven end to end by the official SDK (challenge resource verification on), against a
 * real Coffer: every operation, and every error as the SDK surfaces it.
 */
let server: TestServer;
let client: SecretClient;
let other: SecretClient;
const VAULT = 'secretsvault';
const OTHER_VAULT = 'othervault';
const VERSION = /^[0-9a-f]{32}$/;

before(async () => {
  server = await startTestServer();
  await server.createVault(VAULT);
  await server.createVault(OTHER_VAULT);
  client = server.secretClient(VAULT);
  other = server.secretClient(OTHER_VAULT);
});
after(() => server.close());

const seconds = (d: Date) => Math.floor(d.getTime() / 1000);

describe('set and get', () => {
  test('set with every property returns a complete bundle', async () => {
    const notBefore = new Date(Date.now() - 3_600_000);
    const expiresOn = new Date(Date.now() + 86_400_000);
    const set = await client.setSecret('full-secret', 'value-1', {
      contentType: 'text/plain', tags: { env: 'test', owner: 'team-a' }, enabled: true, notBefore, expiresOn,
    });
    assert.equal(set.name, 'full-secret');
    assert.equal(set.value, 'value-1');
    const p = set.properties;
    assert.match(p.version!, VERSION);
    assert.equal(p.id, `${server.vaultUrl(VAULT)}/secrets/full-secret/${p.version}`);
    assert.equal(p.vaultUrl, server.vaultUrl(VAULT));
    assert.equal(p.contentType, 'text/plain');
    assert.deepEqual(p.tags, { env: 'test', owner: 'team-a' });
    assert.equal(p.enabled, true);
    assert.equal(seconds(p.notBefore!), seconds(notBefore));
    assert.equal(seconds(p.expiresOn!), seconds(expiresOn));
    assert.ok(p.createdOn instanceof Date && p.updatedOn instanceof Date);
    assert.ok(Math.abs(p.createdOn.getTime() - Date.now()) < 60_000);
    assert.equal(p.recoveryLevel, 'Recoverable+Purgeable');
    assert.equal(p.recoverableDays, 90);
  });

  test('get returns the current version, and any version by id (SDK trailing-slash form included)', async () => {
    const v1 = await client.setSecret('versioned', 'first');
    const v2 = await client.setSecret('versioned', 'second');
    assert.notEqual(v1.properties.version, v2.properties.version);
    assert.equal((await client.getSecret('versioned')).value, 'second');
    assert.equal((await client.getSecret('versioned')).properties.version, v2.properties.version);
    const old = await client.getSecret('versioned', { version: v1.properties.version });
    assert.equal(old.value, 'first');
    assert.equal(old.properties.id, `${server.vaultUrl(VAULT)}/secrets/versioned/${v1.properties.version}`);
    // Names are case-insensitive, as in Azure; the stored spelling is kept.
    assert.equal((await client.getSecret('VERSIONED')).value, 'second');
  });

  test('values survive byte-exact: unicode, empty-ish, exactly 25600 characters', async () => {
    for (const [name, value] of [['unicode', 'päss wörd 🔑 \u0000 \n\t"\\'], ['blank', ' '], ['max-length', 'x'.repeat(25_600)]]) {
      await client.setSecret(name, value);
      assert.equal((await client.getSecret(name)).value, value);
    }
  });

  test('expired and not-yet-valid secrets are readable (as in Azure); a disabled one is 403 SecretDisabled', async () => {
    await client.setSecret('expired', 'old', { expiresOn: new Date(Date.now() - 86_400_000) });
    assert.equal((await client.getSecret('expired')).value, 'old');
    await client.setSecret('future', 'soon', { notBefore: new Date(Date.now() + 86_400_000) });
    assert.equal((await client.getSecret('future')).value, 'soon');

    await client.setSecret('disabled', 'hidden', { enabled: false });
    const err = await restError(() => client.getSecret('disabled'));
    assert.equal(err.statusCode, 403);
    assert.equal(err.code, 'Forbidden');
    assert.equal(innerCode(err), 'SecretDisabled');
    assert.ok(!err.message.includes('hidden'));
    // Its metadata is still listed, without a value.
    const versions = [];
    for await (const v of client.listPropertiesOfSecretVersions('disabled')) versions.push(v);
    assert.equal(versions.length, 1);
    assert.equal(versions[0].enabled, false);
  });
});

describe('service versions', () => {
  test('the SDK pinned to every service version from 7.0 on works end to end', async () => {
    for (const serviceVersion of ['7.0', '7.1', '7.2', '7.3', '7.4', '7.5', '7.6', '2025-07-01'] as const) {
      const pinned = server.secretClient(VAULT, { serviceVersion });
      const name = `api-${serviceVersion.replace(/\./g, '-')}`;
      const set = await pinned.setSecret(name, serviceVersion, { tags: { v: serviceVersion } });
      assert.equal((await pinned.getSecret(name, { version: set.properties.version })).value, serviceVersion);
      await pinned.updateSecretProperties(name, set.properties.version!, { contentType: 'text/plain' });
      const versions = [];
      for await (const v of pinned.listPropertiesOfSecretVersions(name)) versions.push(v.version);
      assert.deepEqual(versions, [set.properties.version]);
      await (await pinned.beginDeleteSecret(name)).pollUntilDone();
      await pinned.purgeDeletedSecret(name);
    }
  });
});

describe('list', () => {
  test('more than 25 secrets page through absolute nextLinks', async () => {
    const names = Array.from({ length: 30 }, (_, i) => `page-${String(i).padStart(2, '0')}`);
    for (const name of names) await client.setSecret(name, `value of ${name}`);

    const seen: { url: string; nextLink?: string }[] = [];
    const recorder: PipelinePolicy = {
      name: 'record-list-pages',
      async sendRequest(request, next) {
        const response = await next(request);
        if (new URL(request.url).pathname === '/secrets') {
          seen.push({ url: request.url, nextLink: JSON.parse(response.bodyAsText ?? '{}').nextLink ?? undefined });
        }
        return response;
      },
    };
    const recording = server.secretClient(VAULT, { additionalPolicies: [{ policy: recorder, position: 'perCall' }] });
    const listed: string[] = [];
    for await (const props of recording.listPropertiesOfSecrets()) {
      listed.push(props.name);
      assert.equal(props.id, `${server.vaultUrl(VAULT)}/secrets/${props.name}`, 'list items carry the unversioned id');
      assert.equal((props as any).value, undefined);
    }
    for (const name of names) assert.ok(listed.includes(name), `${name} listed`);
    assert.equal(new Set(listed).size, listed.length, 'no secret listed twice');
    assert.ok(seen.length >= 2, 'the listing took more than one page');
    for (let i = 0; i < seen.length - 1; i++) {
      assert.ok(seen[i].nextLink!.startsWith(`${server.vaultUrl(VAULT)}/secrets?`), `absolute nextLink: ${seen[i].nextLink}`);
      assert.equal(seen[i + 1].url, seen[i].nextLink, 'the SDK followed the nextLink as given');
    }
    assert.equal(seen.at(-1)!.nextLink, undefined);

    const pages = [];
    for await (const page of client.listPropertiesOfSecrets().byPage({ maxPageSize: 7 })) pages.push(page.length);
    assert.ok(pages.length >= 5 && pages.slice(0, -1).every((n) => n === 7), `pages of 7: ${pages}`);
  });

  test('maxresults by a raw request: honoured up to 25, the nextLink continues without overlap', async () => {
    const token = await dataPlaneToken(server);
    const base = server.vaultUrl(VAULT);
    const first = await rawRequest(`${base}/secrets?api-version=7.5&maxresults=5`, { token });
    assert.equal(first.status, 200);
    assert.equal(first.json.value.length, 5);
    assert.ok(first.json.nextLink.startsWith(`${base}/secrets?`));
    const second = await rawRequest(first.json.nextLink, { token });
    assert.equal(second.status, 200);
    assert.equal(second.json.value.length, 5);
    const ids = [...first.json.value, ...second.json.value].map((s: any) => s.id);
    assert.equal(new Set(ids).size, 10);

    for (const bad of ['0', '26', 'abc', '-1']) {
      const res = await rawRequest(`${base}/secrets?api-version=7.5&maxresults=${bad}`, { token });
      assert.equal(res.status, 400, `maxresults=${bad}`);
      assert.equal(typeof res.json.error.code, 'string');
    }
    const badToken = await rawRequest(`${base}/secrets?api-version=7.5&$skiptoken=not-a-token`, { token });
    assert.equal(badToken.status, 400);
    assert.equal(badToken.json.error.code, 'BadParameter');
  });

  test('listPropertiesOfSecretVersions lists every version with its versioned id', async () => {
    const created = [];
    for (let i = 0; i < 3; i++) created.push((await client.setSecret('many-versions', `v${i}`, { tags: { n: String(i) } })).properties.version);
    const listed = [];
    for await (const v of client.listPropertiesOfSecretVersions('many-versions')) listed.push(v);
    assert.deepEqual(listed.map((v) => v.version).sort(), [...created].sort());
    for (const v of listed) {
      assert.equal(v.id, `${server.vaultUrl(VAULT)}/secrets/many-versions/${v.version}`);
      assert.equal(v.tags!.n, String(created.indexOf(v.version)));
    }
    const err = await restError(async () => { for await (const _ of client.listPropertiesOfSecretVersions('no-such-secret')) { /* empty */ } });
    assert.equal(err.statusCode, 404);
    assert.equal(err.code, 'SecretNotFound');
  });
});

describe('update', () => {
  test('updateSecretProperties changes attributes, tags and content type of the current or a given version', async () => {
    const v1 = await client.setSecret('updatable', 'one', { tags: { a: '1' } });
    const v2 = await client.setSecret('updatable', 'two');
    const updated = await client.updateSecretProperties('updatable', v2.properties.version!, {
      contentType: 'application/json', tags: { b: '2' }, expiresOn: new Date('2030-01-01T00:00:00Z'),
    });
    assert.equal(updated.contentType, 'application/json');
    assert.deepEqual(updated.tags, { b: '2' });
    assert.equal(updated.expiresOn!.toISOString(), '2030-01-01T00:00:00.000Z');
    assert.equal(updated.version, v2.properties.version);
    assert.equal((updated as any).value, undefined, 'an update never returns the value');

    const got = await client.getSecret('updatable');
    assert.equal(got.value, 'two');
    assert.equal(got.properties.contentType, 'application/json');

    // The older version keeps its own tags, and can be disabled on its own.
    await client.updateSecretProperties('updatable', v1.properties.version!, { enabled: false });
    const err = await restError(() => client.getSecret('updatable', { version: v1.properties.version }));
    assert.equal(err.statusCode, 403);
    assert.equal((await client.getSecret('updatable')).value, 'two');
    await client.updateSecretProperties('updatable', v1.properties.version!, { enabled: true });
    const old = await client.getSecret('updatable', { version: v1.properties.version });
    assert.deepEqual(old.properties.tags, { a: '1' });

    const missing = await restError(() => client.updateSecretProperties('updatable', '0'.repeat(32), { enabled: false }));
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.code, 'SecretNotFound');
  });
});

describe('soft delete, recover, purge', () => {
  test('beginDeleteSecret, getDeletedSecret, listDeletedSecrets, set conflict, beginRecoverDeletedSecret', async () => {
    const set = await client.setSecret('deletable', 'keep me', { tags: { t: 'x' } });
    const poller = await client.beginDeleteSecret('deletable');
    const deleted = await poller.pollUntilDone();
    assert.equal(deleted.name, 'deletable');
    assert.equal(deleted.recoveryId, `${server.vaultUrl(VAULT)}/deletedsecrets/deletable`);
    assert.ok(deleted.deletedOn instanceof Date);
    assert.ok(deleted.properties.deletedOn instanceof Date);
    const purgeAfterMs = deleted.scheduledPurgeDate!.getTime() - deleted.deletedOn!.getTime();
    assert.equal(purgeAfterMs, 90 * 86_400_000);
    assert.equal(deleted.value, undefined);

    const gone = await restError(() => client.getSecret('deletable'));
    assert.equal(gone.statusCode, 404);
    assert.equal(gone.code, 'SecretNotFound');

    const fetched = await client.getDeletedSecret('deletable');
    assert.equal(fetched.properties.version, set.properties.version);
    assert.deepEqual(fetched.properties.tags, { t: 'x' });
    assert.equal(fetched.value, undefined);

    const deletedNames = [];
    for await (const d of client.listDeletedSecrets()) {
      deletedNames.push(d.name);
      if (d.name === 'deletable') assert.equal(d.recoveryId, `${server.vaultUrl(VAULT)}/deletedsecrets/deletable`);
    }
    assert.ok(deletedNames.includes('deletable'));

    const conflict = await restError(() => client.setSecret('deletable', 'again'));
    assert.equal(conflict.statusCode, 409);
    assert.equal(conflict.code, 'Conflict');
    assert.equal(innerCode(conflict), 'ObjectIsDeletedButRecoverable');

    const again = await restError(() => client.beginDeleteSecret('deletable').then((p) => p.pollUntilDone()));
    assert.equal(again.statusCode, 404);

    const recovered = await (await client.beginRecoverDeletedSecret('deletable')).pollUntilDone();
    assert.equal(recovered.version, set.properties.version);
    assert.equal((await client.getSecret('deletable')).value, 'keep me');
    const notDeleted = await restError(() => client.getDeletedSecret('deletable'));
    assert.equal(notDeleted.statusCode, 404);
    assert.equal(notDeleted.code, 'SecretNotFound');
  });

  test('purgeDeletedSecret removes it for good, and frees the name', async () => {
    await client.setSecret('purgeable', 'old life');
    await (await client.beginDeleteSecret('purgeable')).pollUntilDone();
    await client.purgeDeletedSecret('purgeable');
    const err = await restError(() => client.getDeletedSecret('purgeable'));
    assert.equal(err.statusCode, 404);
    assert.equal(err.code, 'SecretNotFound');
    const purgeAgain = await restError(() => client.purgeDeletedSecret('purgeable'));
    assert.equal(purgeAgain.statusCode, 404);
    const recoverGone = await restError(() => client.beginRecoverDeletedSecret('purgeable').then((p) => p.pollUntilDone()));
    assert.equal(recoverGone.statusCode, 404);

    const fresh = await client.setSecret('purgeable', 'new life');
    const versions = [];
    for await (const v of client.listPropertiesOfSecretVersions('purgeable')) versions.push(v.version);
    assert.deepEqual(versions, [fresh.properties.version], 'no version of the purged secret survives');
  });

  test('a purge-protected vault refuses purge (403) but still recovers', async () => {
    await server.createVault('protectedvault', { enablePurgeProtection: true });
    const protectedClient = server.secretClient('protectedvault');
    const set = await protectedClient.setSecret('guarded', 'v');
    assert.equal(set.properties.recoveryLevel, 'Recoverable');
    await (await protectedClient.beginDeleteSecret('guarded')).pollUntilDone();
    const err = await restError(() => protectedClient.purgeDeletedSecret('guarded'));
    assert.equal(err.statusCode, 403);
    assert.equal(err.code, 'Forbidden');
    assert.match(err.message, /purge protection is enabled/);
    assert.equal((await protectedClient.getDeletedSecret('guarded')).name, 'guarded');
    await (await protectedClient.beginRecoverDeletedSecret('guarded')).pollUntilDone();
    assert.equal((await protectedClient.getSecret('guarded')).value, 'v');
  });

  test('purging a live secret is 404 and deletes nothing', async () => {
    await client.setSecret('still-live', 'here');
    const err = await restError(() => client.purgeDeletedSecret('still-live'));
    assert.equal(err.statusCode, 404);
    assert.equal((await client.getSecret('still-live')).value, 'here');
  });
});

describe('backup and restore', () => {
  test('a backup restores every version into the same vault after purge, and into another vault', async () => {
    const v1 = await client.setSecret('backed-up', 'first', { tags: { gen: '1' }, contentType: 'text/plain' });
    const v2 = await client.setSecret('backed-up', 'second', { tags: { gen: '2' } });
    const blob = await client.backupSecret('backed-up');
    assert.ok(blob instanceof Uint8Array && blob.length > 0);
    assert.ok(!Buffer.from(blob!).includes(Buffer.from('second')), 'the backup blob is encrypted');

    const existing = await restError(() => client.restoreSecretBackup(blob!));
    assert.equal(existing.statusCode, 409);
    assert.equal(existing.code, 'Conflict');

    await (await client.beginDeleteSecret('backed-up')).pollUntilDone();
    const whileDeleted = await restError(() => client.restoreSecretBackup(blob!));
    assert.equal(whileDeleted.statusCode, 409);
    await client.purgeDeletedSecret('backed-up');

    const restored = await client.restoreSecretBackup(blob!);
    assert.equal(restored.name, 'backed-up');
    assert.equal(restored.version, v2.properties.version);
    assert.equal((await client.getSecret('backed-up')).value, 'second');
    const first = await client.getSecret('backed-up', { version: v1.properties.version });
    assert.equal(first.value, 'first');
    assert.equal(first.properties.contentType, 'text/plain');
    assert.deepEqual(first.properties.tags, { gen: '1' });

    const elsewhere = await other.restoreSecretBackup(blob!);
    assert.equal(elsewhere.id, `${server.vaultUrl(OTHER_VAULT)}/secrets/backed-up/${v2.properties.version}`);
    assert.equal((await other.getSecret('backed-up', { version: v1.properties.version })).value, 'first');
  });

  test('a corrupt or foreign backup blob is 400 and restores nothing', async () => {
    await client.setSecret('to-corrupt', 'value');
    const blob = Buffer.from((await client.backupSecret('to-corrupt'))!);
    const tampered = Buffer.from(blob);
    tampered[tampered.length - 5] ^= 0x55;
    for (const bad of [tampered, Buffer.from('not a backup at all'), blob.subarray(0, 20)]) {
      const err = await restError(() => other.restoreSecretBackup(bad));
      assert.equal(err.statusCode, 400);
      assert.equal(err.code, 'BadParameter');
    }
    const none = await restError(() => other.getSecret('to-corrupt'));
    assert.equal(none.statusCode, 404);

    const missing = await restError(() => client.backupSecret('never-existed'));
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.code, 'SecretNotFound');
  });
});

describe('errors as the SDK sees them', () => {
  test('404 SecretNotFound with Azure wording', async () => {
    const err = await restError(() => client.getSecret('does-not-exist'));
    assert.equal(err.statusCode, 404);
    assert.equal(err.code, 'SecretNotFound');
    assert.match(err.message, /A secret with \(name\/id\) does-not-exist was not found in this key vault/);
    const byVersion = await restError(() => client.getSecret('versioned', { version: 'f'.repeat(32) }));
    assert.equal(byVersion.statusCode, 404);
    assert.equal(byVersion.code, 'SecretNotFound');
  });

  test('names outside ^[0-9a-zA-Z-]{1,127}$ are 400 for every operation', async () => {
    const bad = ['under_score', 'dot.ted', 'a'.repeat(128), 'spa ce', 'ümlaut', 'sl%2Fash'];
    for (const name of bad) {
      const err = await restError(() => client.setSecret(name, 'v'));
      assert.equal(err.statusCode, 400, `set ${name}`);
      assert.equal(err.code, 'BadParameter');
      assert.match(err.message, /^The request URI contains an invalid name: /);
    }
    for (const op of [
      () => client.getSecret('under_score'),
      () => client.updateSecretProperties('under_score', '', { enabled: false }),
      () => client.backupSecret('under_score'),
      () => client.getDeletedSecret('under_score'),
      () => client.purgeDeletedSecret('under_score'),
    ]) {
      const err = await restError(op);
      assert.equal(err.statusCode, 400);
    }
    assert.equal((await client.setSecret('a'.repeat(127), 'longest name')).name, 'a'.repeat(127));
    const names = [];
    for await (const p of client.listPropertiesOfSecrets()) names.push(p.name);
    for (const name of bad) assert.ok(!names.includes(name));
  });

  test('a value over 25600 characters and more than 15 tags are 400 and store nothing', async () => {
    const long = await restError(() => client.setSecret('too-long', 'x'.repeat(25_601)));
    assert.equal(long.statusCode, 400);
    assert.equal(long.code, 'BadParameter');
    const tags = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`t${i}`, 'v']));
    const tooMany = await restError(() => client.setSecret('too-many-tags', 'v', { tags }));
    assert.equal(tooMany.statusCode, 400);
    assert.equal(tooMany.code, 'BadParameter');
    for (const name of ['too-long', 'too-many-tags']) {
      assert.equal((await restError(() => client.getSecret(name))).statusCode, 404);
    }
    await client.setSecret('tag-update', 'v');
    const updateTags = await restError(() => client.updateSecretProperties('tag-update', '', { tags }));
    assert.equal(updateTags.statusCode, 400);
    assert.deepEqual((await client.getSecret('tag-update')).properties.tags, undefined);
  });
});

describe('concurrency', () => {
  test('30 concurrent sets of one name create 30 distinct versions, one of them current', async () => {
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => client.setSecret('contended', `writer-${i}`)));
    const written = new Set(results.map((r) => r.properties.version));
    assert.equal(written.size, 30);
    const listed = [];
    for await (const v of client.listPropertiesOfSecretVersions('contended')) listed.push(v.version);
    assert.equal(listed.length, 30);
    assert.deepEqual(new Set(listed), written);
    const current = await client.getSecret('contended');
    assert.ok(written.has(current.properties.version));
    assert.equal(current.value, results.find((r) => r.properties.version === current.properties.version)!.value);
  });
});
