#!/usr/bin/env node
// `npm test`: builds Coffer, makes a throwaway test CA that every test server's certificate chains to (so the test
// processes trust it through NODE_EXTRA_CA_CERTS, exactly as users do), then runs the tests on each storage engine:
// the whole suite on SQLite, then — on a throwaway PostgreSQL cluster — every test that touches storage.
//
// `node scripts/test.mjs <files>` runs just those files, on SQLite only unless COFFER_TEST_ENGINES says otherwise.
// COFFER_TEST_ENGINES=sqlite | postgres | sqlite,postgres chooses the engines. COFFER_TEST_STORAGE_URL=postgres://…
// uses an existing server instead of a throwaway cluster (each test server creates its own database there).
// COFFER_PG_BIN names the PostgreSQL server binaries (default: the newest /usr/lib/postgresql/*/bin). With CI set, missing
// binaries fail the run; locally the PostgreSQL pass is skipped with a notice.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findPostgresBinaries, startCluster } from './pg-cluster.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(root);
// COFFER_SKIP_BUILD=1 skips the build while iterating on tests that do not spawn the CLI (tsx runs the sources).
if (!process.env.COFFER_SKIP_BUILD) {
  try {
    execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
  } catch {
    console.error('ERROR: the build failed (the compiler errors are above); no tests were run.');
    process.exit(1);
  }
}

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
const engines = (process.env.COFFER_TEST_ENGINES ?? (only.length ? 'sqlite' : 'sqlite,postgres')).split(',').map((e) => e.trim());
const unknownEngine = engines.find((e) => e !== 'sqlite' && e !== 'postgres');
if (unknownEngine) {
  console.error(`ERROR: COFFER_TEST_ENGINES names '${unknownEngine}': use sqlite, postgres or sqlite,postgres`);
  process.exit(1);
}
const inCi = /^(1|true|yes)$/i.test(process.env.CI ?? '');
const testEnv = { ...process.env, NODE_EXTRA_CA_CERTS: path.join(tlsDir, 'ca.crt'), COFFER_TEST_CA_DIR: tlsDir };
delete testEnv.COFFER_TEST_STORAGE_URL;

// Everything that must be undone on the way out (the PostgreSQL cluster), also on failure or Ctrl-C.
const cleanups = [];
let child;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    child?.kill(signal);
    cleanup();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  });
}
process.on('exit', cleanup);

// Decide the plan up front, so notices come before the runs and the output ends with the test runner's summary.
const postgresFiles = files.filter(touchesStorage);
let postgresPass = engines.includes('postgres');
let pgBin;
if (postgresPass && !process.env.COFFER_TEST_STORAGE_URL) {
  pgBin = findPostgresBinaries();
  if (!pgBin) {
    const message = 'PostgreSQL server binaries (initdb, pg_ctl) not found: install postgresql-15 or set COFFER_PG_BIN';
    if (inCi) {
      console.error(`ERROR: ${message}; CI must test both storage engines.`);
      process.exit(1);
    }
    console.log(`NOTICE: PostgreSQL pass skipped — ${message}.`);
    postgresPass = false;
  }
}
if (postgresPass) {
  console.log(`PostgreSQL pass: ${postgresFiles.length} of ${files.length} test files (those that touch storage; `
    + `pure unit tests run on SQLite only)${engines.includes('sqlite') ? ', once the SQLite pass has succeeded' : ''}.`);
}

let status = 0;
if (engines.includes('sqlite')) {
  console.log(`\n=== storage engine: SQLite — ${files.length} test files ===`);
  status = await runTests(files, testEnv);
  // Nothing is printed after a failed pass: the output ends with the test runner's summary of what failed.
  if (status !== 0) postgresPass = false;
}
if (postgresPass && postgresFiles.length) {
  const url = process.env.COFFER_TEST_STORAGE_URL ?? await startTestCluster(pgBin);
  // Our own cluster serves TLS with a certificate from the test CA; the storage tests then check sslmode=verify-full.
  const tlsEnv = process.env.COFFER_TEST_STORAGE_URL ? {} : { COFFER_TEST_PG_TLS_CA: path.join(tlsDir, 'ca.crt') };
  console.log(`\n=== storage engine: PostgreSQL (${redact(url)}) — ${postgresFiles.length} test files ===`);
  status = await runTests(postgresFiles, { ...testEnv, ...tlsEnv, COFFER_TEST_STORAGE_URL: url });
}
cleanup();
process.exit(status);

/** Our PostgreSQL pass's cluster: TLS from the test CA; durability off, as the data is thrown away. */
async function startTestCluster(bin) {
  try {
    const cluster = await startCluster({
      bin,
      settings: ['fsync=off', 'synchronous_commit=off', 'full_page_writes=off'],
      tlsCa: { cert: path.join(tlsDir, 'ca.crt'), key: path.join(tlsDir, 'ca.key') },
    });
    cleanups.push(cluster.stop);
    return cluster.url;
  } catch (err) {
    console.error(`ERROR: ${err.message}`);
    cleanup();
    process.exit(1);
  }
}

function runTests(testFiles, env) {
  child = spawn(process.execPath, [
    '--import', 'tsx', '--import', './src/net/register-localhost.ts',
    '--test', '--test-concurrency=2', '--test-timeout=300000', ...testFiles,
  ], { stdio: 'inherit', env });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0))));
}

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

/** A test touches storage when it starts a server or opens storage itself; only those need the second engine. */
function touchesStorage(file) {
  return /startTestServer|openStorage|COFFER_TEST_STORAGE_URL|bin\/coffer/.test(fs.readFileSync(file, 'utf8'));
}

function cleanup() {
  while (cleanups.length) cleanups.pop()();
}

function redact(url) {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
}
