import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { seedTestCa } from '../support/server.js';

/** `coffer server start` (the built CLI) with the given arguments, until it prints its ready line or exits. */
function startServer(args: string[]) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-throttle-cli-'));
  seedTestCa(dataDir);
  const child = spawn(process.execPath, [path.resolve('bin/coffer.js'), 'server', 'start', '--port', '0', '--data-dir', dataDir, '--log-level', 'warn', ...args]);
  let stdout = '';
  let stderr = '';
  const outcome = new Promise<{ ready: boolean; code: number | null }>((resolve) => {
    child.stdout.on('data', (d) => { stdout += d; if (/Coffer is ready/.test(stdout) && /metrics|\n {2}trust it/.test(stdout)) resolve({ ready: true, code: null }); });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('close', (code) => resolve({ ready: false, code }));
  });
  return {
    outcome, output: () => ({ stdout, stderr }),
    async stop() {
      const closed = new Promise((r) => child.once('close', r));
      child.kill('SIGTERM');
      await closed;
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

test('--throttle accepts azure, off or a multiplier, and refuses anything else with one line', async () => {
  const server = startServer(['--throttle', 'fast']);
  const { ready, code } = await server.outcome;
  assert.equal(ready, false);
  assert.equal(code, 2, 'a usage error');
  assert.match(server.output().stderr, /--throttle must be azure, off or a positive multiplier, not 'fast'/);
  assert.doesNotMatch(server.output().stderr, /\n\s+at /, 'no stack trace');
});

test('--metrics-port serves /metrics over plain HTTP on loopback, and the ready line says where', async () => {
  const server = startServer(['--throttle', '0.01', '--metrics-port', '0']);
  try {
    assert.equal((await server.outcome).ready, true, server.output().stderr);
    const url = /metrics \(no authentication\): +(http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(server.output().stdout)?.[1];
    assert.ok(url, server.output().stdout);
    const res = await fetch(url);
    assert.equal(res.status, 200);
    assert.match(await res.text(), /^# HELP ServiceApiHit /m);
  } finally {
    await server.stop();
  }
});
