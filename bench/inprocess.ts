// Server CPU per request without TLS, sockets or a load generator: `node --import tsx bench/inprocess.ts`.
// Starts Coffer in-process exactly as the benchmark configures it (SQLite FULL, every gate, durable audit, throttling
// off), then drives secret GET and SET through Fastify's `inject` (the same pipeline, handlers, store and audit) at
// concurrency 10, and prints the best of 5 rounds of CPU time per request (the whole process, threads included) — the
// figure to compare between commits on a busy machine, since CPU time is what other processes disturb least — and
// of the event loop's busy time per request (what every other request waits for).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance as nodePerformance } from 'node:perf_hooks';
import type { InjectOptions } from 'fastify';
import { startCoffer } from '../src/server.js';
import { openSession, API } from './session.js';

const ROUNDS = 5;
const PER_ROUND = Number(process.env.INPROCESS_REQUESTS ?? 2000);
const CONCURRENCY = 10;

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-inprocess-'));
const coffer = await startCoffer({
  host: '127.0.0.1', port: 0, dataDir, dnsSuffix: 'vault.localhost', seal: 'file', logLevel: 'warn', throttle: 'off',
});
try {
  const session = await openSession({ dataDir, port: coffer.port });
  const value = JSON.stringify({ value: 'x'.repeat(300) });
  await session.vault('PUT', '/secrets/bench-secret', value);

  async function measure(name: string, request: (i: number) => InjectOptions) {
    const results: number[] = [];
    const loopBusy: number[] = [];
    const rates: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      let next = 0;
      const started = performance.now();
      const start = process.cpuUsage();
      const loopStart = nodePerformance.eventLoopUtilization();
      await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
        while (next < PER_ROUND) {
          const res = await coffer.app.inject(request(next++));
          if (res.statusCode >= 300) throw new Error(`${name}: ${res.statusCode} ${res.body.slice(0, 300)}`);
        }
      }));
      const used = process.cpuUsage(start);
      results.push((used.user + used.system) / PER_ROUND);
      // The event loop's own busy time (threads excluded): what one request costs the loop every request waits for.
      loopBusy.push((nodePerformance.eventLoopUtilization(loopStart).active * 1000) / PER_ROUND);
      rates.push(PER_ROUND / ((performance.now() - started) / 1000));
    }
    console.log(`${name}: best ${Math.min(...results).toFixed(0)} µs CPU/request (rounds: ${results.map((r) => r.toFixed(0)).join(', ')}); `
      + `event loop busy ${Math.min(...loopBusy).toFixed(0)} µs/request; best ${Math.max(...rates).toFixed(0)} requests/s`);
  }

  const headers = session.vaultHeaders;
  if (!process.env.INPROCESS_ONLY_SET) await measure('secret GET', () => ({ method: 'GET', url: `/secrets/bench-secret?${API}`, headers }));
  if (!process.env.INPROCESS_ONLY_GET) await measure('secret SET', (i) => ({ method: 'PUT', url: `/secrets/bench-set-${i % 100}?${API}`, headers, payload: value }));
  if (!process.env.INPROCESS_ONLY_GET && !process.env.INPROCESS_ONLY_SET) await measure('list secrets', () => ({ method: 'GET', url: `/secrets?maxresults=25&${API}`, headers }));
} finally {
  await coffer.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
}
