import fs from 'node:fs';
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import type { TestServer } from './server.js';

/** Debian's Python (with python3-azure), not a pyenv one: the SDK comes from the Debian package. */
export const PYTHON = '/usr/bin/python3';

/** True when Debian's Python can import these modules (the tests that need them skip otherwise). */
export const hasPythonModules = (modules: string[]) => fs.existsSync(PYTHON)
  && spawnSync(PYTHON, ['-c', `import ${modules.join(', ')}`], { stdio: 'ignore' }).status === 0;

/**
 * Runs a Python SDK script against a vault of the test server, as the bootstrap administrator (TENANT, CLIENT_ID,
 * CLIENT_SECRET, AUTHORITY, VAULT_URL in its environment), trusting the test CA; returns its last stdout line as JSON.
 * Asynchronous: the Coffer under test runs in this process and must keep serving while Python waits on it.
 */
export async function runPythonSdk(server: TestServer, vault: string, script: string): Promise<any> {
  const { admin } = server;
  const run = await promisify(execFile)(PYTHON, ['-c', script], {
    encoding: 'utf8',
    timeout: 120_000,
    env: {
      PATH: process.env.PATH, HOME: process.env.HOME,
      REQUESTS_CA_BUNDLE: process.env.NODE_EXTRA_CA_CERTS, NO_PROXY: '*',
      TENANT: admin.tenantId, CLIENT_ID: admin.clientId, CLIENT_SECRET: admin.clientSecret, AUTHORITY: admin.authorityHost,
      VAULT_URL: server.vaultUrl(vault),
    },
  });
  return JSON.parse(run.stdout.trim().split('\n').at(-1)!);
}
