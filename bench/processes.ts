import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer().once('error', reject).listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/** Spawns `node ...args` and resolves once a stdout line matches `ready`; rejects if the process exits first. */
function spawnUntil(args: string[], ready: RegExp, timeoutMs = 60_000): Promise<{ child: ChildProcess; line: string; ms: number }> {
  const started = performance.now();
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => { stderr = (stderr + d).slice(-4000); });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`not ready within ${timeoutMs} ms: ${args.join(' ')}\n${stderr}`)); }, timeoutMs);
    const onData = (d: Buffer) => {
      out += d;
      const line = out.split('\n').find((l) => ready.test(l));
      if (line) {
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        child.stdout!.resume();
        resolve({ child, line, ms: performance.now() - started });
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`exited with ${code} before ready: ${args.join(' ')}\n${stderr}`)); });
  });
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.once('exit', () => { clearTimeout(kill); resolve(); });
    child.kill('SIGTERM');
  });
}

/** Peak resident set size (VmHWM) of a live process, in MB; undefined where /proc is not available. */
function peakRssMb(pid: number): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** CPU time (user + system) a live process has used so far, in ms; undefined where /proc is not available. */
function cpuMs(pid: number): number | undefined {
  try {
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th of them, in clock ticks.
    const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}
const CLOCK_TICKS = 100;

export interface CofferProcess {
  port: number;
  /** From spawn to the "ready" line: process start, module loading, storage, migrations, unseal, listen. */
  startToReadyMs: number;
  /** Coffer's own figure (from inside the process, excluding Node's start-up). */
  reportedReadyMs: number;
  peakRssMb(): number | undefined;
  cpuMs(): number | undefined;
  stop(): Promise<void>;
}

/** The Node flags `coffer` runs with: those of bin/coffer.js's first line (`#!/usr/bin/env -S node …`). */
function cofferNodeFlags(): string[] {
  const shebang = fs.readFileSync(path.join(ROOT, 'bin', 'coffer.js'), 'utf8').split('\n', 1)[0];
  return /\bnode\s+(.*)$/.exec(shebang)?.[1].split(/\s+/).filter(Boolean) ?? [];
}

/**
 * Runs Coffer as production would (`coffer server start`: bin/coffer.js with the Node flags of its first line): HTTPS,
 * real tokens, audit on, SQLite with synchronous=FULL. `cpuProfileDir` adds `--cpu-prof` (the profile is written when
 * the process exits).
 */
export async function startCofferProcess(opts: { dataDir: string; cpuProfileDir?: string; extraArgs?: string[]; port?: number }): Promise<CofferProcess> {
  const port = opts.port ?? await freePort();
  const args = [
    ...cofferNodeFlags(),
    ...(opts.cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${opts.cpuProfileDir}`] : []),
    'bin/coffer.js', 'server', 'start', '--host', '127.0.0.1', '--port', String(port), '--data-dir', opts.dataDir, '--log-level', 'warn',
    // The production-like configuration has throttling off: the benchmark measures capacity, not Azure's budgets.
    '--throttle', 'off',
    ...(opts.extraArgs ?? []),
  ];
  const { child, line, ms } = await spawnUntil(args, /Coffer is ready in \d+ ms/);
  let peak: number | undefined;
  return {
    port,
    startToReadyMs: ms,
    reportedReadyMs: Number(/ready in (\d+) ms/.exec(line)![1]),
    peakRssMb: () => (peak = peakRssMb(child.pid!) ?? peak),
    cpuMs: () => cpuMs(child.pid!),
    async stop() {
      peak = peakRssMb(child.pid!) ?? peak;
      await stop(child);
    },
  };
}

/** Starts the bare baseline server (bench/bare-server.ts) with the given certificate and bodies. */
export async function startBareServer(config: { cert: string; key: string; bodies: Record<string, string> }) {
  const port = await freePort();
  const { child } = await spawnUntil(['--import', 'tsx', 'bench/bare-server.ts', JSON.stringify({ ...config, port })], /^ready$/);
  return { port, cpuMs: () => cpuMs(child.pid!), stop: () => stop(child) };
}

/** Runs the load generator (bench/load.ts) in its own process. */
export async function runLoad<R>(spec: object): Promise<R> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/load.ts', JSON.stringify(spec)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (d) => { out += d; });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`load generator exited with ${code}`);
  return JSON.parse(out.trim().split('\n').at(-1)!) as R;
}
