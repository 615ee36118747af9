// A throwaway PostgreSQL cluster from the server binaries on this machine, shared by `npm test` (its PostgreSQL pass)
// and `npm run bench` (its multi-node scenario). Plain JavaScript, so the test runner can use it before any build.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** The directory with initdb, pg_ctl and postgres: COFFER_PG_BIN, else the newest /usr/lib/postgresql/<v>/bin. */
export function findPostgresBinaries() {
  const candidates = process.env.COFFER_PG_BIN ? [process.env.COFFER_PG_BIN]
    : fs.existsSync('/usr/lib/postgresql')
      ? fs.readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a)).map((v) => `/usr/lib/postgresql/${v}/bin`)
      : [];
  return candidates.find((dir) => ['initdb', 'pg_ctl', 'postgres'].every((b) => fs.existsSync(path.join(dir, b))));
}

/**
 * initdb into a temp dir (as `postgres` when we are root: the server refuses to run as root), trust authentication,
 * a unix socket in that dir and 127.0.0.1 on a free port. `settings` are extra `-c name=value` server settings;
 * `tlsCa` ({ cert, key } file paths) turns on TLS with a server certificate for 127.0.0.1/localhost issued by that CA.
 * Returns the superuser URL and stop(), which also removes the directory. On failure, throws with the server log's tail.
 */
export async function startCluster({ bin, settings = [], tlsCa }) {
  const asRoot = process.getuid?.() === 0;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-pg-'));
  const dataDir = path.join(dir, 'data');
  const run = (cmd, args) => {
    const [file, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', path.join(bin, cmd), ...args]] : [path.join(bin, cmd), args];
    return execFileSync(file, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  };
  let started = false;
  const stop = () => {
    if (started) {
      try { run('pg_ctl', ['-D', dataDir, '-m', 'immediate', '-w', 'stop']); } catch { /* already stopped */ }
      started = false;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  if (asRoot) execFileSync('chown', ['postgres:', dir]);
  try {
    run('initdb', ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--no-sync', '--no-instructions']);
    if (tlsCa) writeServerCertificate(dataDir, tlsCa, asRoot);
    const port = await freePort();
    const options = [
      `-p ${port}`, `-k ${dir}`, '-c listen_addresses=127.0.0.1', '-c max_connections=300',
      ...(tlsCa ? ['-c ssl=on', '-c ssl_cert_file=server.crt', '-c ssl_key_file=server.key'] : []),
      ...settings.map((s) => `-c ${s}`),
    ].join(' ');
    run('pg_ctl', ['-D', dataDir, '-l', path.join(dir, 'server.log'), '-o', options, '-w', '-t', '60', 'start']);
    started = true;
    return { url: `postgres://postgres@127.0.0.1:${port}/postgres`, stop };
  } catch (err) {
    const log = path.join(dir, 'server.log');
    const tail = fs.existsSync(log) ? `\n${fs.readFileSync(log, 'utf8').split('\n').slice(-20).join('\n')}` : '';
    stop();
    throw new Error(`could not start a PostgreSQL cluster: ${err.stderr?.toString().trim() || err.message}${tail}`);
  }
}

/** server.crt/server.key for 127.0.0.1 and localhost, issued by the given CA, owned by the cluster's user. */
function writeServerCertificate(dataDir, ca, asRoot) {
  const key = path.join(dataDir, 'server.key');
  const csr = path.join(dataDir, 'server.csr');
  const cert = path.join(dataDir, 'server.crt');
  const ext = path.join(dataDir, 'server.ext');
  fs.writeFileSync(ext, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  execFileSync('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key], { stdio: 'pipe' });
  execFileSync('openssl', ['req', '-new', '-key', key, '-subj', '/CN=localhost', '-out', csr], { stdio: 'pipe' });
  execFileSync('openssl', ['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key,
    '-CAcreateserial', '-CAserial', path.join(dataDir, 'ca.srl'), '-days', '2', '-extfile', ext, '-out', cert], { stdio: 'pipe' });
  fs.chmodSync(key, 0o600);
  if (asRoot) execFileSync('chown', ['postgres:', key, cert]);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer().once('error', reject).listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}
