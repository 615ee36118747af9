import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';

export interface CliRun { code: number | null; stdout: string; stderr: string }

type Env = Record<string, string | undefined>;

/**
 * Runs the built CLI (`node bin/coffer.js …`) as a user would: a child process in `cwd` with `baseEnv()` merged over
 * this process's environment (undefined removes a variable). The child does not inherit NODE_EXTRA_CA_CERTS: it must
 * trust the server the way users do, through a data dir's caCertPath or `login --ca-cert`.
 */
export function cliRunner(cwd: string, baseEnv: () => Env) {
  /** Any program (e.g. `bash -c` running coffer commands) with the CLI's environment plus `env`. */
  const run = (command: string, args: string[], env: Env = {}): Promise<CliRun> => {
    const childEnv: Env = { ...process.env, NODE_EXTRA_CA_CERTS: undefined, ...baseEnv(), ...env };
    for (const k of Object.keys(childEnv)) if (childEnv[k] === undefined) delete childEnv[k];
    return new Promise((resolve, reject) => {
      const child = spawn(command, args, { env: childEnv as NodeJS.ProcessEnv, cwd });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => { stdout += d; });
      child.stderr.on('data', (d) => { stderr += d; });
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  };
  const coffer = (args: string[], env: Env = {}) => run(process.execPath, [path.resolve('bin/coffer.js'), ...args], env);
  /** A command that must succeed. */
  const ok = async (args: string[], env?: Env) => {
    const r = await coffer(args, env);
    assert.equal(r.code, 0, `coffer ${args.join(' ')} failed: ${r.stderr}`);
    return r;
  };
  /** A command that must succeed; its parsed JSON output. */
  const json = async <T = any>(args: string[], env?: Env): Promise<T> => JSON.parse((await ok(args, env)).stdout) as T;
  /** A command that must fail with `exitCode` and an error matching `stderrPattern`, printing nothing on stdout. */
  const fails = async (args: string[], exitCode: number, stderrPattern: RegExp, env?: Env) => {
    const r = await coffer(args, env);
    assert.equal(r.code, exitCode, `coffer ${args.join(' ')}: expected exit ${exitCode}, got ${r.code}: ${r.stderr}`);
    assert.match(r.stderr, stderrPattern);
    assert.equal(r.stdout, '');
    return r;
  };
  return { run, coffer, ok, json, fails };
}
