import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ClientSecretCredential } from '@azure/identity';
import type { TokenCredential } from '@azure/core-auth';
import { SecretClient } from '@azure/keyvault-secrets';
import { KeyClient } from '@azure/keyvault-keys';
import type { BootstrapAdminFile } from '../../src/bootstrap.js';
import { createVaultAsAdmin, seedTestCa } from '../support/server.js';
import { freshDatabase, postgresSkipReason, query } from '../support/postgres.js';
import { rawRequest } from '../support/raw-http.js';
import { startChildServer } from '../support/child-server.js';

/**
 * Three Coffer nodes (the real CLI, each its own process and data dir) on one PostgreSQL database, behind a TCP
 * round-robin load balancer whose port every node advertises (`--public-port`). They share the root key (node 1's
 * root.key copied to the others) and the test CA. The official SDK drives every node.
 */
const VAULT = 'multinode';
const REVOKE_VAULT = 'multinode-revoke';
const SCHEDULER_TICK = '1s'; // lease = 3 ticks: a dead holder's jobs move within ~3 s

test('three nodes on one PostgreSQL behave as one vault, and survive kill -9 of the scheduler lease holder', {
  skip: postgresSkipReason, timeout: 180_000,
}, async (t) => {
  const storageUrl = await freshDatabase();
  const balancer = await startTcpBalancer();
  const nodes: CofferNode[] = [];
  try {
    // Node 1 bootstraps (tenant, administrator, root key); the others start from its root key.
    nodes.push(await startNode(1, storageUrl, balancer.port));
    for (const n of [2, 3]) {
      const dataDir = makeDataDir();
      fs.copyFileSync(path.join(nodes[0].dataDir, 'root.key'), path.join(dataDir, 'root.key'));
      nodes.push(await startNode(n, storageUrl, balancer.port, dataDir));
    }
    for (const node of nodes) balancer.add(node.port);

    const admin = JSON.parse(fs.readFileSync(path.join(nodes[0].dataDir, 'bootstrap-admin.json'), 'utf8')) as BootstrapAdminFile;
    assert.equal(admin.authorityHost, `https://localhost:${balancer.port}`, 'every node advertises the balancer');
    // Tokens come through the balancer, so they are issued round-robin by all three nodes.
    const credential = new ClientSecretCredential(admin.tenantId, admin.clientId, admin.clientSecret, {
      authorityHost: admin.authorityHost, disableInstanceDiscovery: true,
    });
    const management = async (pathAndQuery: string, node: CofferNode, body: unknown, method = 'POST') => {
      const token = (await credential.getToken(`${admin.managementEndpoint}/.default`))!.token;
      return rawRequest(`https://localhost:${node.port}${pathAndQuery}`, { method, token, body });
    };
    // Through the balancer: the vault (with a 7-day retention) and the administrator's data-plane role on it.
    await createVaultAsAdmin(admin, credential, VAULT, { softDeleteRetentionInDays: 7 });

    // One SecretClient per node, addressing that node directly.
    const clientFor = (node: CofferNode, cred: TokenCredential = credential, vault = VAULT) =>
      new SecretClient(`https://${vault}.vault.localhost:${node.port}`, cred, { retryOptions: { maxRetries: 0 } });
    const clients = nodes.map((node) => clientFor(node));

    // A revoked role assignment is denied on every node at once: authorization reads the shared database.
    await createVaultAsAdmin(admin, credential, REVOKE_VAULT);
    const revokeClients = nodes.map((node) => clientFor(node, credential, REVOKE_VAULT));
    await revokeClients[0].setSecret('granted', 'yes');
    for (const client of revokeClients) assert.equal((await client.getSecret('granted')).value, 'yes');
    const vaultScope = `/subscriptions/${admin.subscriptionId}/resourceGroups/rg-test/providers/Microsoft.KeyVault/vaults/${REVOKE_VAULT}`;
    const assignments = await management(`${vaultScope}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01`, nodes[0], undefined, 'GET');
    // The administrator's grant on this vault (not its inherited subscription Owner role, which has no data actions).
    const mine = (assignments.json.value as Array<{ id: string; properties: { principalId: string; scope: string } }>)
      .filter((a) => a.properties.principalId === admin.objectId && a.properties.scope.toLowerCase() === vaultScope.toLowerCase());
    assert.ok(mine.length > 0, assignments.text);
    for (const assignment of mine) {
      const revoked = await management(`${assignment.id}?api-version=2022-04-01`, nodes[0], undefined, 'DELETE');
      assert.equal(revoked.status, 200, revoked.text);
    }
    for (const client of revokeClients) {
      await assert.rejects(client.getSecret('granted'), (err: any) => err.statusCode === 403);
    }

    // Read-your-writes across nodes: a write acknowledged by one node is what the next node reads, at once.
    for (let i = 0; i < 9; i++) {
      const written = await clients[i % 3].setSecret('ryw', `value-${i}`);
      const read = await clients[(i + 1) % 3].getSecret('ryw');
      assert.equal(read.value, `value-${i}`);
      assert.equal(read.properties.version, written.properties.version);
    }

    // 50 concurrent writers of one secret, spread over the three nodes: 50 distinct versions, none lost.
    const writes = await Promise.all(Array.from({ length: 50 }, (_, i) => clients[i % 3].setSecret('contended', `w-${i}`)));
    const writtenVersions = new Set(writes.map((w) => w.properties.version));
    assert.equal(writtenVersions.size, 50);
    for (const client of clients) {
      const listed = new Set<string>();
      for await (const p of client.listPropertiesOfSecretVersions('contended')) listed.add(p.version!);
      assert.deepEqual([...listed].sort(), [...writtenVersions].sort(), 'every node lists exactly the 50 versions');
    }
    const current = await clients[2].getSecret('contended');
    assert.ok(writtenVersions.has(current.properties.version!));
    // Audit: every node's records land in the one shared table — one successful SecretSet record per write, from all
    // three nodes, none lost or doubled (each is durable before its response leaves).
    const audited = (await query<{ record: string }>(storageUrl, `select record from audit_events where record like '%/secrets/contended?%'`))
      .map((r) => JSON.parse(r.record))
      .filter((r) => r.operationName === 'SecretSet' && r.properties.httpStatusCode === 200);
    assert.equal(audited.length, 50);
    assert.equal(new Set(audited.map((r) => r.correlationId)).size, 50);
    assert.deepEqual(new Set(audited.map((r) => new URL(r.properties.requestUri).port)), new Set(nodes.map((n) => String(n.port))));

    // A token issued by node 1 (asked of node 1 directly) is accepted by node 3: the signing keys are shared.
    const nodeOneToken = await requestToken(nodes[0], admin, `https://vault.localhost:${balancer.port}/.default`);
    const readWithNodeOneToken = await clientFor(nodes[2], staticCredential(nodeOneToken)).getSecret('ryw');
    assert.equal(readWithNodeOneToken.value, 'value-8');

    // A soft-deleted secret whose purge will be due. The name cannot be reused on any node while it is deleted.
    await clients[1].setSecret('doomed', 'short-lived');
    await (await clients[1].beginDeleteSecret('doomed')).pollUntilDone();
    for (const client of clients) {
      await assert.rejects(client.setSecret('doomed', 'again'), (err: any) => err.statusCode === 409);
    }

    // A key whose rotation policy will be due after the same clock advance.
    const keyClientFor = (node: CofferNode) =>
      new KeyClient(`https://${VAULT}.vault.localhost:${node.port}`, credential, { retryOptions: { maxRetries: 0 } });
    const rotating = await keyClientFor(nodes[1]).createEcKey('rotating', { curve: 'P-256' });
    await keyClientFor(nodes[2]).updateKeyRotationPolicy('rotating', {
      expiresIn: 'P90D', lifetimeActions: [{ action: 'Rotate', timeAfterCreate: 'P7D' }],
    });
    const keyVersions = async (node: CofferNode) => {
      const versions: string[] = [];
      for await (const p of keyClientFor(node).listPropertiesOfKeyVersions('rotating')) versions.push(p.version!);
      return versions;
    };

    // Find the scheduler lease holder in the database and freeze it (SIGSTOP), so it cannot run the purge or the rotation.
    const [lease] = await query<{ holder: string }>(storageUrl, `select holder from leases where name = 'scheduler'`);
    const leader = nodes.find((n) => n.nodeId === lease.holder);
    assert.ok(leader, `the lease holder ${lease.holder} is one of our nodes`);
    const survivors = nodes.filter((n) => n !== leader);
    const survivorClients = survivors.map((node) => clientFor(node));

    // Writers keep going on every node while the leader dies; each acknowledged write must survive.
    const acknowledged = new Map<string, string>();
    let writing = true;
    const writers = Promise.all(nodes.map(async (node, i) => {
      const client = clients[i];
      for (let n = 0; writing; n++) {
        try {
          const w = await client.setSecret('during-failover', `${node.nodeId}-${n}`);
          acknowledged.set(w.properties.version!, w.value!);
        } catch (err) {
          if (node === leader) return; // the node we kill: its unacknowledged writes may be lost, nothing else may
          throw new Error(`a surviving node failed a write: ${node.nodeId}: ${(err as Error).message}`);
        }
      }
    }));

    leader.process.kill('SIGSTOP');
    balancer.remove(leader.port);
    // The purge and the rotation become due (clock advanced past the 7-day retention and the 7-day rotation) while
    // the leader cannot act.
    const advanced = await management('/coffer/admin/clock/advance', survivors[0], { advance: '8d' });
    assert.equal(advanced.status, 200, advanced.text);
    const stillDeleted = await survivorClients[1].getDeletedSecret('doomed');
    assert.equal(stillDeleted.name, 'doomed', 'not purged yet: only the frozen leader may run jobs until its lease expires');
    assert.deepEqual(await keyVersions(survivors[0]), [rotating.properties.version], 'not rotated yet either');

    leader.process.kill('SIGKILL');
    await new Promise((r) => leader.process.once('exit', r));

    // Another node takes the lease, purges and rotates — within a few ticks.
    await eventually(async () => {
      await assert.rejects(survivorClients[0].getDeletedSecret('doomed'), (err: any) => err.statusCode === 404);
      assert.equal((await keyVersions(survivors[1])).length, 2);
    }, 20_000);
    await new Promise((r) => setTimeout(r, 2_500)); // more ticks: nobody purges or rotates again
    assert.equal((await keyVersions(survivors[0])).length, 2, 'rotated exactly once');
    writing = false;
    await writers;

    const [newLease] = await query<{ holder: string }>(storageUrl, `select holder from leases where name = 'scheduler'`);
    assert.ok(survivors.some((n) => n.nodeId === newLease.holder), 'a surviving node holds the lease');
    for (const job of ['purge-deleted-objects', 'rotate-keys']) {
      const runs = nodes.flatMap((n) => n.logs()).filter((l) => l.msg === 'scheduled job done' && l.job === job);
      assert.equal(runs.length, 1, `exactly one ${job} run did work: ${JSON.stringify(runs)}`);
      assert.equal(runs[0].result, 1, `${job} acted on the one due object`);
      assert.equal(runs[0].node, newLease.holder, `${job} ran on the node that took over`);
    }
    t.diagnostic(`killed lease holder ${leader.nodeId}; ${newLease.holder} took over, purged and rotated once; `
      + `${acknowledged.size} writes acknowledged during the failover`);

    // The shared clock: an advance on another node adds to the cluster's offset, not to that node's stale copy.
    const again = await management('/coffer/admin/clock/advance', survivors[1], { advance: '1d' });
    assert.equal(again.json.offsetMs, 9 * 86_400_000);

    // The name is free again, on every node.
    await survivorClients[0].setSecret('doomed', 'reborn');
    assert.equal((await survivorClients[1].getSecret('doomed')).value, 'reborn');

    // No acknowledged write lost: every version any node acknowledged is there, with its value.
    assert.ok(acknowledged.size > 0);
    for (const client of survivorClients) {
      const listed = new Set<string>();
      for await (const p of client.listPropertiesOfSecretVersions('during-failover')) listed.add(p.version!);
      for (const version of acknowledged.keys()) assert.ok(listed.has(version), `acknowledged version ${version} survives`);
    }
    const sample = [...acknowledged].slice(-5);
    for (const [version, value] of sample) {
      assert.equal((await survivorClients[0].getSecret('during-failover', { version })).value, value);
    }
  } finally {
    await Promise.all(nodes.map((n) => n.stop()));
    await balancer.close();
    for (const n of nodes) fs.rmSync(n.dataDir, { recursive: true, force: true });
  }
});

interface CofferNode {
  nodeId: string;
  port: number;
  dataDir: string;
  process: ChildProcess;
  /** The node's JSON log lines so far. */
  logs(): Array<Record<string, any>>;
  stop(): Promise<void>;
}

function makeDataDir() {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-node-'));
  seedTestCa(dataDir);
  return dataDir;
}

/** Starts `coffer server start` as a child process and resolves when it is ready. */
async function startNode(n: number, storageUrl: string, publicPort: number, dataDir = makeDataDir()): Promise<CofferNode> {
  const nodeId = `node-${n}`;
  const server = await startChildServer([
    '--storage', storageUrl, '--node-id', nodeId, '--port', '0',
    '--public-port', String(publicPort), '--data-dir', dataDir, '--scheduler-interval', SCHEDULER_TICK, '--log-level', 'info',
    // This test drives writes as fast as it can; Azure's budgets are tested in throttle*.test.ts.
    '--throttle', 'off',
  ], { label: nodeId });
  return {
    nodeId, port: server.port, dataDir, process: server.child, stop: server.stop,
    logs: () => server.stdout().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)),
  };
}

/** Client credentials asked of one node's token endpoint directly. */
async function requestToken(node: CofferNode, admin: BootstrapAdminFile, scope: string): Promise<string> {
  const res = await fetch(`https://localhost:${node.port}/${admin.tenantId}/oauth2/v2.0/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: admin.clientId, client_secret: admin.clientSecret, scope }),
  });
  assert.equal(res.status, 200);
  return ((await res.json()) as { access_token: string }).access_token;
}

function staticCredential(token: string): TokenCredential {
  return { getToken: async () => ({ token, expiresOnTimestamp: Date.now() + 30 * 60_000 }) };
}

/** A round-robin TCP load balancer (TLS passes through), as any L4 balancer in front of a cluster. */
async function startTcpBalancer() {
  const backends: number[] = [];
  let next = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    if (!backends.length) return client.destroy();
    const upstream = net.connect(backends[next++ % backends.length], '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
    }
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    add: (port: number) => { backends.push(port); },
    /** Takes a backend out of rotation, as a health-checking balancer does when a node stops answering. */
    remove: (port: number) => { backends.splice(backends.indexOf(port), 1); },
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function eventually(check: () => Promise<void>, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}
