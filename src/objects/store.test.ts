import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openStorage, type Storage } from '../storage/engine.js';
import { createKeyring } from '../crypto/envelope.js';
import { createClock, type Clock } from '../clock.js';
import { createEndpoints } from '../endpoints.js';
import { createVaultsService } from '../control-plane/vaults.js';
import { createObjectStore, StoreError, type ObjectStore, type VaultRef, type StoredVersion } from './store.js';
import { freshDatabase } from '../../test/support/postgres.js';

/**
 * The versioned object store against a real database — a SQLite file, or a fresh PostgreSQL database when
 * COFFER_TEST_STORAGE_URL names a server: versions, pages, soft delete, recovery and purge.
 */
let dataDir: string;
let storage: Storage;
let clock: Clock;
let store: ObjectStore;
let vault: VaultRef;
let otherVault: VaultRef;
const DAY = 86_400_000;

before(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-store-'));
  const pg = process.env.COFFER_TEST_STORAGE_URL;
  storage = await openStorage({ dataDir, url: pg ? await freshDatabase(pg) : undefined });
  const keyring = createKeyring(crypto.randomBytes(32));
  clock = createClock();
  store = createObjectStore({ storage, keyring, clock });
  const vaults = createVaultsService({ storage, keyring, clock, endpoints: createEndpoints({ dnsSuffix: 'vault.localhost', publicPort: 8443 }) });
  const input = { subscriptionId: crypto.randomUUID(), resourceGroup: 'rg', location: 'local', tenantId: crypto.randomUUID() };
  vault = await vaults.create({ name: 'storevault', ...input });
  otherVault = await vaults.create({ name: 'storeothervault', ...input });
});
after(async () => {
  await storage.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

const put = (name: string, value: string, meta: Record<string, unknown> = {}, where = vault) =>
  store.create(where, 'secrets', name, Buffer.from(value), { enabled: true, ...meta });
const text = (v: StoredVersion | undefined) => v?.open().toString('utf8');

async function rejectsWith(promise: Promise<unknown>, reason: StoreError['reason']) {
  await assert.rejects(promise, (err: unknown) => err instanceof StoreError && err.reason === reason);
}

/** Collects every page of a paged listing, checking each page's size. */
async function allPages<T>(fetch: (continuation?: string) => Promise<{ items: T[]; next?: string } | undefined>, pageSize: number) {
  const items: T[] = [];
  let continuation: string | undefined;
  let pages = 0;
  do {
    const page = (await fetch(continuation))!;
    assert.ok(page.items.length <= pageSize);
    if (page.next) assert.equal(page.items.length, pageSize, 'only the last page may be short');
    items.push(...page.items);
    continuation = page.next;
    pages++;
  } while (continuation);
  return { items, pages };
}

describe('versions', () => {
  test('each create adds a 32-hex version that becomes current and links to the previous one', async () => {
    const v1 = await put('Db-Password', 'one', { tags: { a: '1' } });
    const v2 = await put('db-password', 'two');
    assert.match(v1.version, /^[0-9a-f]{32}$/);
    assert.notEqual(v1.version, v2.version);
    assert.ok(v2.seq > v1.seq);
    assert.equal(v1.meta.previousVersion, undefined);
    assert.equal(v2.meta.previousVersion, v1.version);
    assert.equal(v2.name, 'Db-Password', 'the first spelling of a name is kept');

    assert.equal(text(await store.get(vault, 'secrets', 'DB-PASSWORD')), 'two');
    assert.equal(text(await store.get(vault, 'secrets', 'db-password', v1.version)), 'one');
    assert.equal(text(await store.get(vault, 'secrets', 'db-password', v1.version.toUpperCase())), 'one');
    assert.deepEqual((await store.get(vault, 'secrets', 'db-password', v1.version))!.meta.tags, { a: '1' });
    assert.equal(await store.get(vault, 'secrets', 'db-password', '0'.repeat(32)), undefined);
    assert.equal(await store.get(vault, 'secrets', 'no-such-name'), undefined);
  });

  test('vaults and collections are separate namespaces', async () => {
    await put('shared-name', 'in vault');
    await put('shared-name', 'in other vault', {}, otherVault);
    await store.create(vault, 'keys', 'shared-name', Buffer.from('a key'), { enabled: true });
    assert.equal(text(await store.get(vault, 'secrets', 'shared-name')), 'in vault');
    assert.equal(text(await store.get(otherVault, 'secrets', 'shared-name')), 'in other vault');
    assert.equal(text(await store.get(vault, 'keys', 'shared-name')), 'a key');
    assert.equal(await store.get(otherVault, 'keys', 'shared-name'), undefined);
  });

  test('updateMeta patches one version and stamps its update time', async () => {
    const v1 = await put('patched', 'one');
    const v2 = await put('patched', 'two');
    clock.setOffset(clock.offsetMs() + 60_000);
    const updated = await store.updateMeta(vault, 'secrets', 'patched', v1.version, (m) => ({ ...m, enabled: false, contentType: 'x' }));
    assert.equal(updated!.version, v1.version);
    assert.equal(updated!.meta.enabled, false);
    assert.ok(updated!.updated >= v1.updated + 60_000);
    assert.equal(updated!.created, v1.created);
    assert.equal((await store.get(vault, 'secrets', 'patched', v1.version))!.meta.contentType, 'x');
    assert.equal((await store.get(vault, 'secrets', 'patched'))!.meta.enabled, true, 'the current version is untouched');
    const current = await store.updateMeta(vault, 'secrets', 'patched', undefined, (m) => ({ ...m, tags: { t: '1' } }));
    assert.equal(current!.version, v2.version);
    assert.equal(text(current), 'two', 'the payload is unchanged');
    assert.equal(await store.updateMeta(vault, 'secrets', 'missing', undefined, (m) => m), undefined);
  });

  test('concurrent creates of one name each get their own version, chained in order', async () => {
    const created = await Promise.all(Array.from({ length: 20 }, (_, i) => put('contended', `writer-${i}`)));
    assert.equal(new Set(created.map((v) => v.version)).size, 20);
    const { items } = await allPages((c) => store.listVersions(vault, 'secrets', 'contended', { maxResults: 25, continuation: c }), 25);
    assert.equal(items.length, 20);
    for (let i = 1; i < items.length; i++) assert.equal(items[i].meta.previousVersion, items[i - 1].version);
    assert.equal((await store.get(vault, 'secrets', 'contended'))!.version, items.at(-1)!.version);
  });

  test('a version managed by a certificate is followed only by managed versions, even when writers race', async () => {
    const first = await put('cert-managed', 'pfx 1', { managed: true });
    // Plain writers racing a certificate's renewal: every plain one is refused under the lock, the renewal lands.
    const results = await Promise.allSettled([
      put('cert-managed', 'plain a'), put('cert-managed', 'pfx 2', { managed: true }), put('cert-managed', 'plain b'),
    ]);
    assert.deepEqual(results.map((r) => r.status), ['rejected', 'fulfilled', 'rejected']);
    for (const r of [results[0], results[2]]) await rejectsWith(Promise.reject((r as PromiseRejectedResult).reason), 'ManagedByKeyVault');
    const current = (await store.get(vault, 'secrets', 'cert-managed'))!;
    assert.equal(text(current), 'pfx 2');
    assert.equal(current.meta.previousVersion, first.version);
    // A plain name stays free for plain versions; a name only becomes managed through a managed version.
    await put('plain-then-managed', 'plain');
    await put('plain-then-managed', 'pfx', { managed: true });
    await rejectsWith(put('plain-then-managed', 'plain again'), 'ManagedByKeyVault');
  });

  test('payloads are sealed at rest: the database row never holds the plaintext', async () => {
    const marker = `store-marker-${crypto.randomUUID()}`;
    const v = await put('sealed', marker);
    const row = await storage.db.selectFrom('object_versions').select(['payload', 'meta']).where('version', '=', v.version).executeTakeFirstOrThrow();
    assert.ok(!Buffer.from(row.payload).includes(Buffer.from(marker)));
    assert.ok(!row.meta.includes(marker));
    assert.equal(text(v), marker);
  });
});

describe('pagination', () => {
  test('list pages names in order with opaque cursors, skipping deleted names', async () => {
    const names = Array.from({ length: 7 }, (_, i) => `paged-${i}`);
    for (const name of names) await put(name, 'v', {}, otherVault);
    await put('paged-gone', 'v', {}, otherVault);
    await store.softDelete(otherVault, 'secrets', 'paged-gone', 7);
    const { items, pages } = await allPages((c) => store.list(otherVault, 'secrets', { maxResults: 3, continuation: c }), 3);
    const listed = items.map((v) => v.name).filter((n) => n.startsWith('paged-'));
    assert.deepEqual(listed, names);
    assert.ok(pages >= 3);
    assert.equal(new Set(items.map((v) => v.name)).size, items.length);
  });

  test('listVersions pages every version; an unknown name is undefined', async () => {
    const versions = [];
    for (let i = 0; i < 5; i++) versions.push((await put('many', `v${i}`)).version);
    const { items, pages } = await allPages((c) => store.listVersions(vault, 'secrets', 'many', { maxResults: 2, continuation: c }), 2);
    assert.deepEqual(items.map((v) => v.version), versions);
    assert.equal(pages, 3);
    assert.equal(await store.listVersions(vault, 'secrets', 'never-created', { maxResults: 2 }), undefined);
  });

  test('a bad continuation token is refused, never misread', async () => {
    const stringCursor = (await store.list(vault, 'secrets', { maxResults: 1 })).next!;
    const numberCursor = (await store.listVersions(vault, 'secrets', 'many', { maxResults: 1 }))!.next!;
    const bad = ['garbage', '!!!', Buffer.from('{"after":').toString('base64url'), Buffer.from('{"before":"a"}').toString('base64url'),
      Buffer.from('[1,2]').toString('base64url'), Buffer.from('null').toString('base64url')];
    for (const continuation of [...bad, numberCursor]) {
      await rejectsWith(store.list(vault, 'secrets', { maxResults: 5, continuation }), 'BadContinuation');
      await rejectsWith(store.listDeleted(vault, 'secrets', { maxResults: 5, continuation }), 'BadContinuation');
    }
    for (const continuation of [...bad, stringCursor]) {
      await rejectsWith(store.listVersions(vault, 'secrets', 'many', { maxResults: 5, continuation }), 'BadContinuation');
    }
  });
});

describe('soft delete, recover, purge', () => {
  test('a soft-deleted name is hidden, blocks reuse, and recovers with every version', async () => {
    const v1 = await put('lifecycle', 'one');
    const v2 = await put('lifecycle', 'two');
    const deleted = await store.softDelete(vault, 'secrets', 'lifecycle', 30);
    assert.equal(deleted!.name, 'lifecycle');
    assert.equal(deleted!.current.version, v2.version);
    assert.equal(deleted!.scheduledPurgeAt - deleted!.deletedAt, 30 * DAY);
    assert.equal(deleted!.deletedAt, (await store.getDeleted(vault, 'secrets', 'LIFECYCLE'))!.deletedAt);

    assert.equal(await store.get(vault, 'secrets', 'lifecycle'), undefined);
    assert.equal(await store.get(vault, 'secrets', 'lifecycle', v1.version), undefined);
    assert.equal(await store.listVersions(vault, 'secrets', 'lifecycle', { maxResults: 5 }), undefined);
    assert.equal(await store.updateMeta(vault, 'secrets', 'lifecycle', undefined, (m) => m), undefined);
    assert.equal(await store.exportVersions(vault, 'secrets', 'lifecycle'), undefined);
    assert.ok(!(await store.list(vault, 'secrets', { maxResults: 25 })).items.some((v) => v.name === 'lifecycle'));
    await rejectsWith(put('lifecycle', 'three'), 'DeletedButRecoverable');
    assert.equal(await store.softDelete(vault, 'secrets', 'lifecycle', 30), undefined, 'a second delete finds nothing');
    assert.equal(await store.recover(vault, 'secrets', 'never-deleted'), undefined);

    const recovered = await store.recover(vault, 'secrets', 'lifecycle');
    assert.equal(recovered!.version, v2.version);
    assert.equal(text(await store.get(vault, 'secrets', 'lifecycle', v1.version)), 'one');
    assert.equal(await store.getDeleted(vault, 'secrets', 'lifecycle'), undefined);
    assert.equal(await store.recover(vault, 'secrets', 'lifecycle'), undefined, 'recovering a live name finds nothing');
  });

  test('purge removes a deleted name and all its versions; live names cannot be purged', async () => {
    await put('purged', 'one');
    await put('purged', 'two');
    assert.equal(await store.purge(vault, 'secrets', 'purged'), false, 'a live name is not purged');
    assert.equal(text(await store.get(vault, 'secrets', 'purged')), 'two');
    await store.softDelete(vault, 'secrets', 'purged', 7);
    assert.equal(await store.purge(vault, 'secrets', 'PURGED'), true);
    assert.equal(await store.purge(vault, 'secrets', 'purged'), false);
    assert.equal(await store.getDeleted(vault, 'secrets', 'purged'), undefined);
    const fresh = await put('purged', 'reborn');
    assert.equal(fresh.meta.previousVersion, undefined);
    const versions = await store.listVersions(vault, 'secrets', 'purged', { maxResults: 25 });
    assert.deepEqual(versions!.items.map((v) => v.version), [fresh.version]);
  });

  test('listDeleted pages deleted names only', async () => {
    for (let i = 0; i < 5; i++) {
      await put(`bin-${i}`, 'v', {}, otherVault);
      await store.softDelete(otherVault, 'secrets', `bin-${i}`, 7);
    }
    await put('bin-live', 'v', {}, otherVault);
    const { items } = await allPages((c) => store.listDeleted(otherVault, 'secrets', { maxResults: 2, continuation: c }), 2);
    const names = items.map((d) => d.name);
    for (let i = 0; i < 5; i++) assert.ok(names.includes(`bin-${i}`));
    assert.ok(!names.includes('bin-live'));
    assert.deepEqual(names, [...names].sort());
  });

  test('purgeDue purges exactly the deleted names whose retention has passed', async () => {
    const now = clock.now();
    await put('due-soon', 'v');
    await put('due-later', 'v');
    await put('due-live', 'v');
    await store.softDelete(vault, 'secrets', 'due-soon', 7);
    await store.softDelete(vault, 'secrets', 'due-later', 30);
    await store.purgeDue(now + 6 * DAY);
    assert.ok(await store.getDeleted(vault, 'secrets', 'due-soon'), 'not yet due');

    const purged = await store.purgeDue(now + 8 * DAY);
    assert.ok(purged >= 1);
    assert.equal(await store.getDeleted(vault, 'secrets', 'due-soon'), undefined);
    assert.ok(await store.getDeleted(vault, 'secrets', 'due-later'));
    assert.ok(await store.get(vault, 'secrets', 'due-live'));
    assert.equal(await store.purgeDue(now + 8 * DAY), 0, 'nothing left that is due');
  });
});

describe('export and import', () => {
  test('import restores every version under a free name, and refuses a taken or deleted one', async () => {
    await put('exported', 'one', { tags: { gen: '1' } });
    await put('exported', 'two');
    const versions = (await store.exportVersions(vault, 'secrets', 'exported'))!;
    assert.deepEqual(versions.map((v) => v.payload.toString()), ['one', 'two']);

    await rejectsWith(store.importVersions(vault, 'secrets', 'exported', versions), 'AlreadyExists');
    const imported = await store.importVersions(otherVault, 'secrets', 'exported', versions);
    assert.equal(imported.version, versions[1].version);
    assert.equal(text(await store.get(otherVault, 'secrets', 'exported', versions[0].version)), 'one');
    assert.deepEqual((await store.get(otherVault, 'secrets', 'exported', versions[0].version))!.meta.tags, { gen: '1' });

    await store.softDelete(otherVault, 'secrets', 'exported', 7);
    await rejectsWith(store.importVersions(otherVault, 'secrets', 'exported', versions), 'DeletedButRecoverable');
    assert.equal(await store.exportVersions(vault, 'secrets', 'not-there'), undefined);
  });
});
