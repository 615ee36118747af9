/**
 * The multi-node scenario: Coffer on a durable PostgreSQL cluster (fsync on), one node alone and then three nodes on
 * the same database behind one public port, each loaded by a load generator of its own. Reports the aggregate against
 * the one node, for secret GET and durable SET. On one machine the nodes share its cores with PostgreSQL and the load
 * generators, so this shows the cost of the shared-database path, not the scaling of separate machines.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findPostgresBinaries, startCluster } from '../scripts/pg-cluster.mjs';
import type { LoadResult, LoadSpec } from './load.js';
import { runLoad, startCofferProcess, freePort, type CofferProcess } from './processes.js';
import type { Row } from './report.js';
import { API, openSession, type Session } from './session.js';

const NODES = 3;
/** Total connections, the same for one node and for three (split evenly), so both see the same offered concurrency. */
const CONNECTIONS = 12;

interface Plan { warmupSeconds: number; seconds: number }
type Scenario = (session: Session) => Omit<LoadSpec, 'connections' | 'durationSeconds'>;

const scenarios: Array<{ name: string; spec: Scenario }> = [
  { name: 'secret GET', spec: (s) => ({ url: `${s.vaultUrl}/secrets/bench-secret?${API}`, method: 'GET', headers: s.vaultHeaders }) },
  {
    name: 'secret SET (durable)',
    spec: (s) => ({
      url: `${s.vaultUrl}/secrets/bench-mn-0?${API}`, method: 'PUT', headers: s.vaultHeaders, body: JSON.stringify({ value: 'x'.repeat(300) }),
      rotate: { pathPrefix: '/secrets/bench-mn-', pathSuffix: `?${API}`, count: 100 },
    }),
  },
];

export async function multiNodeScenarios(plan: Plan, log: (message: string) => void): Promise<{ rows: Row[]; notes: string[] }> {
  const bin = findPostgresBinaries();
  if (!bin) {
    return { rows: [{ scenario: `${NODES} nodes on PostgreSQL`, target: '(none)', note: 'n/a (PostgreSQL server binaries not found)' }], notes: [] };
  }
  log(`multi-node: PostgreSQL cluster from ${bin}`);
  const cluster = await startCluster({ bin });
  const dataDirs = Array.from({ length: NODES }, (_, i) => fs.mkdtempSync(path.join(os.tmpdir(), `coffer-bench-node${i + 1}-`)));
  const nodes: CofferProcess[] = [];
  try {
    const publicPort = await freePort();
    const start = async (i: number) => {
      const port = i === 0 ? publicPort : await freePort();
      nodes.push(await startCofferProcess({
        dataDir: dataDirs[i], port,
        extraArgs: ['--storage', cluster.url, '--node-id', `bench-node-${i + 1}`, '--public-port', String(publicPort)],
      }));
    };
    await start(0);
    const sessions = [await openSession({ dataDir: dataDirs[0], port: publicPort })];
    await sessions[0].vault('PUT', '/secrets/bench-secret', JSON.stringify({ value: 'x'.repeat(300) }));

    const measure = async (label: string, specs: Array<Omit<LoadSpec, 'durationSeconds'>>) => {
      log(`${label}: warm-up ${plan.warmupSeconds}s, then ${plan.seconds}s`);
      await Promise.all(specs.map((s) => runLoad<LoadResult>({ ...s, durationSeconds: plan.warmupSeconds })));
      const cpuBefore = nodes.map((n) => n.cpuMs() ?? 0);
      const results = await Promise.all(specs.map((s) => runLoad<LoadResult>({ ...s, durationSeconds: plan.seconds })));
      const cpu = nodes.reduce((sum, n, i) => sum + (n.cpuMs() ?? 0) - cpuBefore[i], 0);
      const total = results.reduce((sum, r) => sum + r.total, 0);
      const rate = results.reduce((sum, r) => sum + r.requestsPerSecond, 0);
      log(`${label}: ${rate.toFixed(0)} req/s, Coffer CPU ${total ? ((cpu / total) * 1000).toFixed(0) : '?'} µs/request`);
      // The slowest node's percentiles: the aggregate is only as good as its worst member.
      return { rate, p50: Math.max(...results.map((r) => r.p50)), p99: Math.max(...results.map((r) => r.p99)), errors: results.reduce((sum, r) => sum + r.errors, 0) };
    };

    const single: Array<Awaited<ReturnType<typeof measure>>> = [];
    for (const s of scenarios) single.push(await measure(`1 node on PostgreSQL, ${s.name}`, [{ ...s.spec(sessions[0]), connections: CONNECTIONS }]));

    // The other nodes share the first one's root key (file seal) and local CA, as docs/MULTINODE.md says.
    for (let i = 1; i < NODES; i++) {
      fs.copyFileSync(path.join(dataDirs[0], 'root.key'), path.join(dataDirs[i], 'root.key'));
      fs.mkdirSync(path.join(dataDirs[i], 'tls'), { recursive: true, mode: 0o700 });
      for (const f of ['ca.crt', 'ca.key']) fs.copyFileSync(path.join(dataDirs[0], 'tls', f), path.join(dataDirs[i], 'tls', f));
      await start(i);
      sessions.push(await openSession({ dataDir: dataDirs[0], port: nodes[i].port, publicPort }));
    }
    const rows: Row[] = [];
    scenarios.forEach((s, i) => rows.push({ scenario: `${s.name}, 1 node on PostgreSQL`, ...single[i], target: '(reference for the next row)' }));
    for (const [i, s] of scenarios.entries()) {
      const aggregate = await measure(`${NODES} nodes on PostgreSQL, ${s.name}`, sessions.map((session) => ({ ...s.spec(session), connections: CONNECTIONS / NODES })));
      rows.push({ scenario: `${s.name}, ${NODES} nodes (aggregate)`, ...aggregate, baseline: single[i].rate, baselineName: '1 node', target: '(none: one machine)' });
    }
    return {
      rows,
      notes: [`multi-node: PostgreSQL ${path.basename(path.dirname(bin))} on this machine with fsync on; ${CONNECTIONS} connections in total (split evenly over the ${NODES} nodes); `
        + 'every node, the database and the load generators share the same cores, so the aggregate shows the overhead of the shared-database path rather than the scaling of separate machines; '
        + 'the p50/p99 shown for the aggregate are the slowest node\'s.'],
    };
  } finally {
    await Promise.all(nodes.map((n) => n.stop()));
    cluster.stop();
    for (const dir of dataDirs) fs.rmSync(dir, { recursive: true, force: true });
  }
}
