import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The ready line `coffer server start` prints once it listens; it names the port (useful with `--port 0`). */
const READY = /Coffer is ready .* on https:\/\/[^:/]+:(\d+)/;

export interface ChildServer {
  child: ChildProcess;
  port: number;
  stdout(): string;
  stderr(): string;
  /** SIGTERM, then SIGKILL if it has not exited within 10 s; resolves once it has exited. */
  stop(): Promise<void>;
}

/**
 * `coffer server start <args>` as a real child process — the built CLI (`bin/coffer.js`), or with `fromSources` the
 * TypeScript sources through tsx — resolved once it prints its ready line. Should the test process die first, the
 * child is killed with it.
 */
export async function startChildServer(args: string[], options: {
  fromSources?: boolean; env?: NodeJS.ProcessEnv; cwd?: string; label?: string; timeoutMs?: number;
} = {}): Promise<ChildServer> {
  const entry = options.fromSources
    ? ['--import', 'tsx', fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url))]
    : [fileURLToPath(new URL('../../bin/coffer.js', import.meta.url))];
  const child = spawn(process.execPath, [...entry, 'server', 'start', ...args], {
    env: options.env ?? process.env, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  child.once('exit', () => process.off('exit', reap));
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk) => { stdout += chunk; });
  child.stderr!.setEncoding('utf8').on('data', (chunk) => { stderr += chunk; });
  const label = options.label ?? 'coffer server';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${label} did not start: ${stderr || stdout.slice(-2000)}`)), options.timeoutMs ?? 30_000);
    const onExit = (code: number | null) => { clearTimeout(timer); reject(new Error(`${label} exited (${code}): ${stderr || stdout.slice(-2000)}`)); };
    child.once('exit', onExit);
    const onData = () => {
      const ready = READY.exec(stdout);
      if (!ready) return;
      clearTimeout(timer);
      child.off('exit', onExit);
      child.stdout!.off('data', onData);
      resolve(Number(ready[1]));
    };
    child.stdout!.on('data', onData);
  });
  return {
    child, port, stdout: () => stdout, stderr: () => stderr,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
