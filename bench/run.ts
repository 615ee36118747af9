/**
 * `npm run bench [-- --quick] [-- --cpu-prof=get|set|list|sign|scale] [-- --scale=N]`: measures Coffer against this machine's limits.
 *
 * Coffer runs as in production (`bin/coffer.js server start`, with the Node flags of its first line: HTTPS, real tokens, durable audit, SQLite with
 * synchronous=FULL) in a temporary data dir; autocannon loads it over HTTPS keep-alive from a process of its own.
 * Each scenario is compared with a baseline measured in the same run: a bare Node `https` server with the same
 * certificate and the same response bodies, or `openssl speed` for signatures. Prints one table and writes it into
 * docs/BENCHMARKS.md. Not a test: nothing here asserts timings.
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { LoadResult, LoadSpec } from './load.js';
import { ROOT, runLoad, startBareServer, startCofferProcess, type CofferProcess } from './processes.js';
import { summarise } from './profile-summary.js';
import { machineDescription, renderTable, writeResults, type Row } from './report.js';
import { seedSecrets, seededName } from './seed.js';
import { API, VAULT, openSession, type Session } from './session.js';
import { multiNodeScenarios } from './multinode.js';

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const profiled = argv.find((a) => a.startsWith('--cpu-prof'))?.split('=')[1] ?? (argv.includes('--cpu-prof') ? 'get' : undefined);
const scaleOption = Number(argv.find((a) => a.startsWith('--scale='))?.split('=')[1]);
const plan = {
  ...(quick ? { warmupSeconds: 1, seconds: 3, scaleSecrets: 50_000 } : { warmupSeconds: 3, seconds: 10, scaleSecrets: 1_000_000 }),
  ...(scaleOption >= 2_000 ? { scaleSecrets: scaleOption } : {}),
};
/** Enough concurrent keep-alive connections to keep both cores busy without queueing for its own sake. */
const CONNECTIONS = 10;
const SMALL_VAULT_SECRETS = 1_000;
const cores = os.availableParallelism();

/** A load spec; `connections` defaults to CONNECTIONS. */
type Spec = Omit<LoadSpec, 'connections' | 'durationSeconds'> & { connections?: number };

const log = (message: string) => process.stderr.write(`[bench] ${message}\n`);

ensureBuilt();
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-bench-'));
const profileDir = profiled ? fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-bench-prof-')) : undefined;
const rows: Row[] = [];
const notes: string[] = [];
const cpuCosts: string[] = [];
let server: CofferProcess | undefined;

try {
  log(`data dir ${dataDir}; ${quick ? 'quick run' : 'full run'}: ${plan.seconds}s per scenario after ${plan.warmupSeconds}s warm-up`);
  server = await startCofferProcess({ dataDir, cpuProfileDir: profiled && profiled !== 'scale' ? profileDir : undefined });
  const firstStart = server.startToReadyMs;
  const firstReported = server.reportedReadyMs;
  const session = await openSession({ dataDir, port: server.port });
  const { vaultHeaders, vaultUrl } = session;

  // One 300-byte secret to read, and filler up to 1,000 secrets in the vault.
  const value = crypto.randomBytes(225).toString('base64');
  const putBody = JSON.stringify({ value, contentType: 'text/plain' });
  const setBody = await session.vault('PUT', '/secrets/bench-secret', putBody);
  await seedSecrets({ dataDir, vaultName: VAULT, from: 0, to: SMALL_VAULT_SECRETS - 1 });
  const getBody = await session.vault('GET', '/secrets/bench-secret');
  const listBody = await session.vault('GET', '/secrets?maxresults=25');
  await session.vault('GET', `/secrets/${seededName(SMALL_VAULT_SECRETS - 2)}`);

  const load = (spec: Spec, seconds = plan.seconds) =>
    runLoad<LoadResult>({ connections: CONNECTIONS, durationSeconds: seconds, ...spec });
  // Server CPU time per request is the figure least disturbed by other processes on a shared machine.
  const measure = async (name: string, spec: Spec, cpu: () => number | undefined = () => server?.cpuMs()) => {
    log(`${name}: warm-up ${plan.warmupSeconds}s, then ${plan.seconds}s`);
    await load(spec, plan.warmupSeconds);
    const cpuBefore = cpu();
    const result = await load(spec);
    const cpuAfter = cpu();
    const cpuPerRequest = cpuBefore !== undefined && cpuAfter !== undefined && result.total ? (cpuAfter - cpuBefore) / result.total : undefined;
    log(`${name}: ${result.requestsPerSecond.toFixed(0)} req/s, p50 ${result.p50.toFixed(2)} ms, p99 ${result.p99.toFixed(2)} ms, errors ${result.errors}`
      + (cpuPerRequest !== undefined ? `, server CPU ${(cpuPerRequest * 1000).toFixed(0)} µs/request` : ''));
    if (cpuPerRequest !== undefined) cpuCosts.push(`${name} ${(cpuPerRequest * 1000).toFixed(0)} µs`);
    return result;
  };
  const getSpec = (url: string) => ({ url: `${url}/secrets/bench-secret?${API}`, method: 'GET' as const, headers: vaultHeaders });
  const listSpec = (url: string) => ({ url: `${url}/secrets?${API}&maxresults=25`, method: 'GET' as const, headers: vaultHeaders });
  const setSpec = (url: string) => ({
    url: `${url}/secrets/bench-set-0?${API}`, method: 'PUT' as const, headers: vaultHeaders, body: putBody,
    // 100 names: realistic spread, and concurrent writers are not all queued on one name's row lock.
    rotate: { pathPrefix: '/secrets/bench-set-', pathSuffix: `?${API}`, count: 100 },
  });

  // Baselines first, while Coffer idles: the bare server gets the machine to itself as Coffer does later.
  const bare = await startBareServer({
    cert: fs.readFileSync(path.join(dataDir, 'tls', 'server.crt'), 'utf8'),
    key: fs.readFileSync(path.join(dataDir, 'tls', 'server.key'), 'utf8'),
    bodies: { get: getBody, put: setBody, list: listBody },
  });
  const bareUrl = `https://127.0.0.1:${bare.port}`;
  const bareGet = await measure('baseline GET', getSpec(bareUrl), bare.cpuMs);
  const barePut = await measure('baseline PUT', setSpec(bareUrl), bare.cpuMs);
  const bareList = await measure('baseline list', listSpec(bareUrl), bare.cpuMs);
  await bare.stop();

  const only = (name: string) => !profiled || profiled === name;
  const get1k = only('get') ? await measure('secret GET (1,000 secrets)', getSpec(vaultUrl)) : undefined;
  // Unloaded latency (one connection) for the scale comparison: under load, p50 mostly measures queueing.
  const single1k = only('get') || only('scale') ? await measure('secret GET, 1 connection (1,000 secrets)', { ...getSpec(vaultUrl), connections: 1 }) : undefined;
  if (get1k) {
    rows.push({ scenario: 'secret GET (300 B)', ...rate(get1k), baseline: bareGet.requestsPerSecond, baselineName: 'bare https', target: '≥ 0.30 × bare', met: get1k.requestsPerSecond >= 0.3 * bareGet.requestsPerSecond });
  }
  if (only('set')) {
    const set = await measure('secret SET', setSpec(vaultUrl));
    rows.push({ scenario: 'secret SET (durable)', ...rate(set), baseline: barePut.requestsPerSecond, baselineName: 'bare https', target: '≥ 3,000/s', met: set.requestsPerSecond >= 3000 });
  }
  if (only('list')) {
    const list = await measure('list secrets', listSpec(vaultUrl));
    rows.push({ scenario: 'list secrets (page of 25)', ...rate(list), baseline: bareList.requestsPerSecond, baselineName: 'bare https', target: '(none)' });
  }
  if (!profiled || profiled === 'sign') rows.push(...await signScenarios(session, measure, bareGet.requestsPerSecond));

  server.peakRssMb();
  const rssSmall = await stopServer();
  const keepProfiles = (dir: string) => {
    for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.cpuprofile'))) {
      const kept = path.join(ROOT, 'bench', 'profiles', `${profiled}-${f}`);
      fs.mkdirSync(path.dirname(kept), { recursive: true });
      fs.copyFileSync(path.join(dir, f), kept);
      process.stdout.write(summarise(kept) + '\n');
    }
  };
  if (profileDir && profiled !== 'scale') keepProfiles(profileDir);

  if ((!profiled || profiled === 'scale') && single1k) {
    // Scale: the same GET with the vault grown to `scaleSecrets`; the server restarts on the grown database.
    log(`seeding ${plan.scaleSecrets.toLocaleString('en-US')} secrets`);
    const seedStarted = performance.now();
    await seedSecrets({
      dataDir, vaultName: VAULT, from: SMALL_VAULT_SECRETS - 1, to: plan.scaleSecrets - 1,
      onProgress: (n) => n % 250_000 === 0 && log(`  ${n.toLocaleString('en-US')} seeded`),
    });
    log(`seeded in ${((performance.now() - seedStarted) / 1000).toFixed(1)} s`);
    server = await startCofferProcess({ dataDir, cpuProfileDir: profiled === 'scale' ? profileDir : undefined });
    const bigSession = await openSession({ dataDir, port: server.port });
    await bigSession.vault('GET', `/secrets/${seededName(plan.scaleSecrets - 2)}`);
    const big = await measure(`secret GET, 1 connection (${plan.scaleSecrets.toLocaleString('en-US')} secrets)`,
      { ...getSpec(bigSession.vaultUrl), headers: bigSession.vaultHeaders, connections: 1 });
    const label = plan.scaleSecrets >= 1_000_000 ? `${plan.scaleSecrets / 1_000_000}M` : `${plan.scaleSecrets / 1000}k`;
    rows.push({
      scenario: `secret GET, 1 conn., 1k secrets`, ...rate(single1k), target: '(reference for the next row)',
    }, {
      scenario: `secret GET, 1 conn., ${label} secrets`, ...rate(big), ratio: big.p50 / single1k.p50,
      target: '≤ 1.3 × p50 at 1k', met: big.p50 <= 1.3 * single1k.p50,
    });
    const startToReady = server.startToReadyMs;
    const reportedBig = server.reportedReadyMs;
    server.peakRssMb();
    const rssBig = await stopServer();
    if (profileDir && profiled === 'scale') keepProfiles(profileDir);
    rows.push({
      scenario: `start to ready (${label} secrets)`, value: `${startToReady.toFixed(0)} ms`, target: '< 1,000 ms', met: startToReady < 1000,
    });
    notes.push(`start to ready: ${firstStart.toFixed(0)} ms on the first start (empty database; Coffer's own figure ${firstReported} ms), `
      + `${startToReady.toFixed(0)} ms with ${label} secrets (Coffer's own figure ${reportedBig} ms); measured from spawning `
      + '`bin/coffer.js server start` to its "ready" line, so Node start-up and module loading are included; Coffer\'s own figure starts after them.');
    const peak = Math.max(rssSmall ?? 0, rssBig ?? 0);
    rows.push({ scenario: 'peak RSS (whole run)', value: `${peak.toFixed(1)} MB`, target: '< 200 MB', met: peak < 200 });
    notes.push(`peak RSS: ${rssSmall?.toFixed(1) ?? 'n/a'} MB for the server of the 1,000-secret scenarios (GET, SET, list, signing), `
      + `${rssBig?.toFixed(1) ?? 'n/a'} MB for the one restarted on ${label} secrets.`);
  }

  if (!profiled) {
    const multiNode = await multiNodeScenarios(plan, log);
    rows.push(...multiNode.rows);
    notes.push(...multiNode.notes);
  }

  const table = renderTable(rows);
  process.stdout.write(`\n${table}\n`);
  if (profiled || quick) {
    log('docs/BENCHMARKS.md left alone: it records full runs only');
  } else {
    const m = machineDescription();
    const section = [
      `**Run of ${m.date}** · commit ${m.commit} · ${m.cpu} · ${m.cores} cores · Node ${m.node} · load average (1/5/15 min) at the end: ${m.loadAverage}`,
      '',
      `\`npm run bench\`: ${CONNECTIONS} keep-alive connections (the scale rows: 1), ${plan.warmupSeconds}s warm-up + ${plan.seconds}s per scenario.`,
      '',
      table,
      '',
      ...notes.map((n) => `- ${n}`),
      `- server CPU time per request (user + system, from /proc; the figure least disturbed by other load): ${cpuCosts.join(' · ')}.`,
    ].join('\n');
    log(`results written to ${path.relative(ROOT, writeResults(section))}`);
  }
} finally {
  await stopServer();
  fs.rmSync(dataDir, { recursive: true, force: true });
  if (profileDir) fs.rmSync(profileDir, { recursive: true, force: true });
}

async function stopServer() {
  if (!server) return undefined;
  const s = server;
  server = undefined;
  await s.stop();
  return s.peakRssMb();
}

function rate(r: LoadResult) {
  return { rate: r.requestsPerSecond, p50: r.p50, p99: r.p99, errors: r.errors };
}

/**
 * Key operations over HTTP: RSA-2048 and ECDSA P-256 sign (the issue's targets), then RSA-2048 verify, wrapKey and
 * unwrapKey next to OpenSSL's own rate for the same RSA operation (verify and wrap are public-key operations, compared
 * with `openssl speed`'s verify/s; unwrap is a private-key operation, compared with its sign/s).
 */
async function signScenarios(session: Session, measure: (name: string, spec: Spec) => Promise<LoadResult>, bareRate: number): Promise<Row[]> {
  const scenarios = [
    { scenario: 'RSA-2048 sign', create: { kty: 'RSA', key_size: 2048 }, alg: 'RS256', openssl: 'rsa2048', target: '≥ 0.70 × openssl', factor: 0.7 },
    { scenario: 'ECDSA P-256 sign', create: { kty: 'EC', crv: 'P-256' }, alg: 'ES256', openssl: 'ecdsap256', target: '≥ 0.25 × bare', factor: 0.25 },
  ];
  const rowsOut: Row[] = [];
  const digest = crypto.createHash('sha256').update('coffer bench').digest('base64url');
  const operation = (keyPath: string, op: string, body: object): Spec => ({
    url: `${session.vaultUrl}${keyPath}/${op}?${API}`, method: 'POST', headers: session.vaultHeaders, body: JSON.stringify(body),
  });
  for (const s of scenarios) {
    let kid: string;
    try {
      const name = `bench-${s.openssl}`;
      kid = JSON.parse(await session.vault('POST', `/keys/${name}/create`, JSON.stringify(s.create))).key.kid as string;
    } catch (err) {
      const why = /: (404|400|405) /.test(String(err)) ? 'keys not yet implemented' : `key create failed: ${String(err).slice(0, 120)}`;
      rowsOut.push({ scenario: s.scenario, target: s.target, note: `n/a (${why})` });
      continue;
    }
    const keyPath = new URL(kid).pathname;
    const result = await measure(s.scenario, operation(keyPath, 'sign', { alg: s.alg, value: digest }));
    const openssl = opensslSpeed(s.openssl);
    if (s.alg === 'ES256') {
      notes.push(`ECDSA P-256: \`openssl speed -multi ${cores} ecdsap256\` signs ${openssl?.sign.toFixed(0) ?? '?'}/s here; the target compares with the bare HTTPS server, since a P-256 signature costs far less than a request.`);
    }
    const baseline = s.alg === 'ES256' ? bareRate : openssl?.sign;
    rowsOut.push({
      scenario: s.scenario, ...rate(result), baseline, baselineName: s.alg === 'ES256' ? 'bare https' : `openssl -multi ${cores}`,
      target: s.target, met: baseline ? result.requestsPerSecond >= s.factor * baseline : undefined,
    });
    if (s.alg !== 'RS256') continue;

    const signature = JSON.parse(await session.vault('POST', `${keyPath}/sign`, JSON.stringify({ alg: s.alg, value: digest }))).value as string;
    const aesKey = crypto.randomBytes(32).toString('base64url');
    const wrapped = JSON.parse(await session.vault('POST', `${keyPath}/wrapkey`, JSON.stringify({ alg: 'RSA-OAEP-256', value: aesKey }))).value as string;
    const more = [
      { scenario: 'RSA-2048 verify', spec: operation(keyPath, 'verify', { alg: s.alg, digest, value: signature }), baseline: openssl?.verify, unit: 'verify/s' },
      { scenario: 'RSA-2048 wrapKey (OAEP-256)', spec: operation(keyPath, 'wrapkey', { alg: 'RSA-OAEP-256', value: aesKey }), baseline: openssl?.verify, unit: 'verify/s' },
      { scenario: 'RSA-2048 unwrapKey (OAEP-256)', spec: operation(keyPath, 'unwrapkey', { alg: 'RSA-OAEP-256', value: wrapped }), baseline: openssl?.sign, unit: 'sign/s' },
    ];
    for (const m of more) {
      rowsOut.push({ scenario: m.scenario, ...rate(await measure(m.scenario, m.spec)), baseline: m.baseline, baselineName: `openssl ${m.unit}`, target: '(none)' });
    }
  }
  return rowsOut;
}

/** Sign and verify operations per second from `openssl speed -multi <cores> <algorithm>`, or undefined without openssl. */
function opensslSpeed(algorithm: string): { sign: number; verify: number } | undefined {
  try {
    const out = execFileSync('openssl', ['speed', '-multi', String(cores), '-seconds', quick ? '1' : '3', algorithm], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    // "rsa 2048 bits 0.000230s 0.000012s 4344.0 82232.0" / " 256 bits ecdsa (nistp256) 0.0000s 0.0000s 70361.0 23815.0"
    const line = out.split('\n').reverse().find((l) => /(rsa 2048 bits|256 bits ecdsa)/.test(l));
    const [sign, verify] = line?.trim().split(/\s+/).slice(-2).map(Number) ?? [];
    return Number.isFinite(sign) && Number.isFinite(verify) ? { sign, verify } : undefined;
  } catch {
    return undefined;
  }
}

/** Builds dist/ when a source file is newer than its compiled output (the benchmark runs the built CLI). */
function ensureBuilt() {
  const stale = (dir: string): boolean => fs.readdirSync(dir, { withFileTypes: true }).some((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return stale(p);
    if (!e.name.endsWith('.ts') || e.name.endsWith('.test.ts') || e.name.endsWith('.d.ts')) return false;
    const out = path.join(ROOT, 'dist', path.relative(path.join(ROOT, 'src'), p)).replace(/\.ts$/, '.js');
    return !fs.existsSync(out) || fs.statSync(out).mtimeMs < fs.statSync(p).mtimeMs;
  });
  if (stale(path.join(ROOT, 'src'))) {
    log('dist/ is stale: building');
    execFileSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'inherit' });
  }
}
