import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inTransaction, openStorage, type Storage } from '../storage/engine.js';
import { createGenerationCache, createGenerationReader, type GenerationCache } from '../storage/generation.js';
import { createKeyring } from '../crypto/envelope.js';
import { createClock } from '../clock.js';
import { createEndpoints } from '../endpoints.js';
import { createVaultsService, type Vault } from '../control-plane/vaults.js';
import { createObjectStore, type ObjectStore } from '../objects/store.js';
import { createEventGrid, type EventGrid } from './event-grid.js';
import { eventsDb } from './tables.js';
import { createExpiryEventsJob } from './expiry-job.js';
import { freshDatabase } from '../../test/support/postgres.js';
import { startWebhook, type Webhook } from '../../test/support/webhook.js';

/**
 * Event Grid's publishing of new versions, against a real database (a SQLite file, or a fresh PostgreSQL database
 * when COFFER_TEST_STORAGE_URL names a server), with two "nodes": two event grids over the same database, each with
 * its own generation cache, as two Coffer processes have.
 */
let dataDir: string;
let storage: Storage;
let store: ObjectStore;
let vault: Vault;
let webhook: Webhook;
const nodes: { cache: GenerationCache; events: EventGrid }[] = [];

before(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-event-grid-'));
  const pg = process.env.COFFER_TEST_STORAGE_URL;
  storage = await openStorage({ dataDir, url: pg ? await freshDatabase(pg) : undefined });
  const keyring = createKeyring(crypto.randomBytes(32));
  const clock = createClock();
  const endpoints = createEndpoints({ dnsSuffix: 'vault.localhost', publicPort: 8443 });
  store = createObjectStore({ storage, keyring, clock });
  const vaults = createVaultsService({ storage, keyring, clock, endpoints });
  vault = await vaults.create({ name: 'eventgridvault', subscriptionId: crypto.randomUUID(), resourceGroup: 'rg', location: 'local', tenantId: crypto.randomUUID() });
  for (let i = 0; i < 2; i++) {
    const cache = createGenerationCache({ readGeneration: createGenerationReader(storage) });
    nodes.push({ cache, events: createEventGrid({ storage, clock, keyring, endpoints, dataDir, cache }) });
  }
  webhook = await startWebhook();
});
after(async () => {
  for (const node of nodes) await node.events.close();
  await webhook.close();
  await storage.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

/** The outbox rows of `name`'s events (the webhook answers 500, so delivered rows stay for their retry). */
const outboxRowsOf = async (name: string) =>
  (await eventsDb(storage).selectFrom('event_deliveries').select('event').execute()).filter((r) => JSON.parse(r.event).subject === name);

/** A secret version written as the secrets service writes it: its event joined to its transaction. */
async function setSecret(node: (typeof nodes)[number], name: string) {
  const hook = await node.events.hooks.objectVersionCreated(vault, 'Secret');
  return store.create(vault, 'secrets', name, Buffer.from('value'), { enabled: true }, { hook });
}

test('a subscription created on one node is seen by the next write on the other, whose check is otherwise free', async () => {
  const [a, b] = nodes;
  // Node B's request: its first gate reads the generation; the vault has no subscription, and B caches that.
  await b.cache.refresh();
  assert.equal(await b.events.hooks.objectVersionCreated(vault, 'Secret'), undefined);
  await setSecret(b, 'before-subscription');

  await a.events.subscriptions.put(vault, 'everything', {
    properties: { destination: { endpointType: 'WebHook', properties: { endpointUrl: `${webhook.base}/fail-everything` } } },
  });
  // B's next request reads the generation the subscription's insert moved: its write carries the event.
  await b.cache.refresh();
  const created = await setSecret(b, 'after-subscription');
  const rows = await outboxRowsOf('after-subscription');
  assert.equal(rows.length, 1);
  assert.equal(JSON.parse(rows[0].event).data.Version, created.version);
  assert.equal(JSON.parse(rows[0].event).eventType, 'Microsoft.KeyVault.SecretNewVersionCreated');
  assert.equal((await outboxRowsOf('before-subscription')).length, 0);
});

test('outside a request (a scheduled job), a write re-reads a generation older than a second', async () => {
  const [a, b] = nodes;
  await a.events.subscriptions.delete(vault.id, 'everything');
  await b.cache.refresh();
  assert.equal(await b.events.hooks.objectVersionCreated(vault, 'Secret'), undefined);
  await a.events.subscriptions.put(vault, 'again', {
    properties: { destination: { endpointType: 'WebHook', properties: { endpointUrl: `${webhook.base}/fail-again` } } },
  });
  // No gate refreshed B's cache since: after a second, B's write reads the generation itself.
  await new Promise((r) => setTimeout(r, 1_100));
  await setSecret(b, 'from-a-job');
  assert.equal((await outboxRowsOf('from-a-job')).length, 1);
});

test('a version and its event are committed together or not at all', async () => {
  const [a] = nodes;
  await a.cache.refresh();
  const hook = (await a.events.hooks.objectVersionCreated(vault, 'Secret'))!;
  assert.ok(hook, 'the vault has a subscription');
  // The transaction fails after the event was enqueued (a crash before COMMIT): neither the event nor the version remains.
  await assert.rejects(store.create(vault, 'secrets', 'rolled-back', Buffer.from('value'), { enabled: true }, {
    hook: { afterInsert: async (trx, v) => { await hook.afterInsert(trx, v); throw new Error('crash'); }, afterCommit: hook.afterCommit },
  }), /crash/);
  assert.equal(await store.get(vault, 'secrets', 'rolled-back'), undefined);
  assert.equal((await outboxRowsOf('rolled-back')).length, 0);

  // A refused version (its name is soft-deleted) enqueues no event either.
  await setSecret(a, 'deleted-name');
  await store.softDelete(vault, 'secrets', 'deleted-name', 7);
  const before = (await outboxRowsOf('deleted-name')).length;
  await assert.rejects(setSecret(a, 'deleted-name'));
  assert.equal((await outboxRowsOf('deleted-name')).length, before);
});

test('the expiry scan reads the names in ranges and misses none at the ranges\' edges', async () => {
  const clock = createClock();
  const inTenDays = Math.floor(clock.now() / 1000) + 10 * 86_400;
  // 7 near-expiry secrets among 5 without exp, names interleaved, scanned 3 names at a time (the production range is 5,000).
  const expiring = Array.from({ length: 7 }, (_, i) => `scan-exp-${i}`);
  for (const [i, name] of expiring.entries()) {
    await store.create(vault, 'secrets', name, Buffer.from('v'), { enabled: true, exp: inTenDays });
    if (i < 5) await store.create(vault, 'secrets', `scan-plain-${i}`, Buffer.from('v'), { enabled: true });
  }
  const job = createExpiryEventsJob({ storage, clock, events: nodes[0].events, scanChunk: 3 });
  await job.run(clock.now());
  const notices = await eventsDb(storage).selectFrom('event_expiry_notices').select(['name_key', 'kind']).where('vault_id', '=', vault.id).execute();
  assert.deepEqual(notices.filter((n) => n.name_key.startsWith('scan-')).map((n) => `${n.name_key} ${n.kind}`).sort(),
    expiring.map((name) => `${name} NearExpiry`));
});

test('an access-policy change and its event are committed together or not at all', async () => {
  const [a] = nodes;
  await a.cache.refresh();
  const policyEvents = async () => (await eventsDb(storage).selectFrom('event_deliveries').select('event').execute())
    .filter((r) => JSON.parse(r.event).eventType === 'Microsoft.KeyVault.VaultAccessPolicyChanged').length;
  const before = await policyEvents();
  const rolledBack = (await a.events.hooks.accessPolicyChanged(vault))!;
  await assert.rejects(inTransaction(storage, async (trx) => { await rolledBack.inTransaction(trx); throw new Error('crash'); }), /crash/);
  assert.equal(await policyEvents(), before, 'the change failed, so no event');
  const committed = (await a.events.hooks.accessPolicyChanged(vault))!;
  await inTransaction(storage, (trx) => committed.inTransaction(trx));
  committed.afterCommit();
  assert.equal(await policyEvents(), before + 1);
});
