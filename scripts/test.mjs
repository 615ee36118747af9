#!/usr/bin/env node
// `npm test`: builds Coffer, makes a throwaway test CA that every test server's certificate chains to (so the test
// processes trust it through NODE_EXTRA_CA_CERTS, exactly as users do), then runs every unit and end-to-end test.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(root);
// COFFER_SKIP_BUILD=1 skips the build while iterating on tests that do not spawn the CLI (tsx runs the sources).
if (!process.env.COFFER_SKIP_BUILD) execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });

const tlsDir = path.join(root, '.test-tls');
if (!fs.existsSync(path.join(tlsDir, 'ca.crt'))) {
  const { createCa } = await import(path.join(root, 'dist/crypto/tls.js'));
  const ca = await createCa('Coffer Test CA', 1);
  fs.mkdirSync(tlsDir, { recursive: true });
  fs.writeFileSync(path.join(tlsDir, 'ca.key'), ca.key, { mode: 0o600 });
  fs.writeFileSync(path.join(tlsDir, 'ca.crt'), ca.cert);
}

const only = process.argv.slice(2);
const files = only.length ? only : listTests(['src', 'test']);
const result = spawnSync(process.execPath, [
  '--import', 'tsx', '--import', './src/net/register-localhost.ts',
  '--test', '--test-concurrency=2', '--test-timeout=300000', ...files,
], {
  stdio: 'inherit',
  env: { ...process.env, NODE_EXTRA_CA_CERTS: path.join(tlsDir, 'ca.crt'), COFFER_TEST_CA_DIR: tlsDir },
});
process.exit(result.status ?? 1);

function listTests(dirs) {
  const out = [];
  const walk = (dir) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (entry.name.endsWith('.test.ts')) out.push(p);
    }
  };
  dirs.filter((d) => fs.existsSync(d)).forEach(walk);
  return out.sort();
}
