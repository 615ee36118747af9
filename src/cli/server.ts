import { InvalidArgumentError, type Command } from 'commander';
import { isIP } from 'node:net';
import { startCoffer, DEFAULTS } from '../server.js';
import { parseDuration } from '../clock.js';
import { parseThrottleProfile } from '../gates/throttle/budgets.js';
import { usageError } from './errors.js';
import type { Pkcs11Options } from '../objects/keys/hsm.js';

export function registerServerCommands(program: Command) {
  const server = program.command('server').description('Run Coffer');
  server.command('start')
    .description('Start Coffer (HTTPS; SQLite in the data dir unless --storage names PostgreSQL)')
    .option('--host <host>', 'address to listen on', DEFAULTS.host)
    .option('--port <port>', 'port to listen on', (v) => Number(v), DEFAULTS.port)
    .option('--data-dir <dir>', 'data directory (env COFFER_DATA_DIR)', process.env.COFFER_DATA_DIR ?? DEFAULTS.dataDir)
    .option('--dns-suffix <suffix>', 'vault DNS suffix: vaults are https://{vault}.{suffix}', DEFAULTS.dnsSuffix)
    .option('--storage <url>', 'postgres://… for PostgreSQL (env COFFER_STORAGE_URL); default: SQLite in the data dir', process.env.COFFER_STORAGE_URL)
    .option('--tls-cert <file>', 'PEM certificate (chain) to serve instead of the local CA\'s')
    .option('--tls-key <file>', 'PEM private key for --tls-cert')
    .option('--seal <kind>', 'root key seal: file | passphrase (env COFFER_SEAL_PASSPHRASE) | pkcs11 (root key wrapped in the --pkcs11-module token)', process.env.COFFER_SEAL ?? DEFAULTS.seal)
    .option('--node-id <id>', 'this node\'s id in a cluster')
    .option('--public-port <port>', 'port clients use in URLs (behind a load balancer)', (v) => Number(v))
    .option('--public-host <host>', 'host name (or address) clients use for the token service and management API; default localhost', publicHostOption)
    .option('--log-level <level>', 'fatal | error | warn | info | debug | silent', 'info')
    .option('--scheduler-interval <duration>', 'background-job tick, e.g. 5s; a dead node\'s jobs move to another node after 3 ticks', parseDuration)
    .option('--metrics-port <port>', 'also serve /metrics without authentication, over plain HTTP on 127.0.0.1 only', (v) => Number(v))
    .option('--pkcs11-module <path>', 'PKCS#11 module (.so) holding HSM keys (RSA-HSM/EC-HSM in premium vaults)')
    .option('--pkcs11-slot <n>', 'the token by slot index among the slots with a token', (v) => nonNegativeInt(v, '--pkcs11-slot'))
    .option('--pkcs11-token <label>', 'the token by label (instead of --pkcs11-slot)')
    .option('--pkcs11-pin-env <var>', 'environment variable holding the token\'s user PIN', 'COFFER_PKCS11_PIN')
    .option('--attestation-authority <url...>', 'attestation authority trusted by key release policies (repeatable)')
    .option('--throttle <profile>', 'data-plane throttling: azure (Azure\'s budgets), off, or a multiplier of them (e.g. 0.01)', throttleOption, 'azure')
    .action(async (opts) => {
      const started = performance.now();
      const coffer = await startCoffer({
        host: opts.host, port: opts.port, dataDir: opts.dataDir, dnsSuffix: opts.dnsSuffix, storageUrl: opts.storage,
        tlsCert: opts.tlsCert, tlsKey: opts.tlsKey, seal: opts.seal, sealPassphrase: process.env.COFFER_SEAL_PASSPHRASE,
        nodeId: opts.nodeId, publicPort: opts.publicPort, publicHost: opts.publicHost, logLevel: opts.logLevel, schedulerIntervalMs: opts.schedulerInterval,
        throttle: opts.throttle,
        metricsPort: opts.metricsPort,
        pkcs11: pkcs11Options(opts),
        attestationAuthorities: opts.attestationAuthority,
      });
      const lines = [
        `Coffer is ready in ${Math.round(performance.now() - started)} ms on https://${opts.host}:${coffer.port} (${coffer.storage.describe})`,
        `  token service and management: ${coffer.endpoints.managementEndpoint}`,
        `  vaults:                        https://{vault}.${coffer.endpoints.dnsSuffix}:${coffer.port}`,
        `  administrator credentials:     ${coffer.dataDir}/bootstrap-admin.json`,
      ];
      if (coffer.metricsPort !== undefined) lines.push(`  metrics (no authentication):   http://127.0.0.1:${coffer.metricsPort}/metrics`);
      if (coffer.caCertPath) {
        lines.push(`  local CA certificate:          ${coffer.caCertPath}`,
          `  trust it: export NODE_EXTRA_CA_CERTS=${coffer.caCertPath} REQUESTS_CA_BUNDLE=${coffer.caCertPath}`);
      }
      process.stdout.write(lines.join('\n') + '\n');
      const stop = async () => {
        await coffer.close();
        process.exit(0);
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}

function throttleOption(value: string) {
  try {
    return parseThrottleProfile(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

function nonNegativeInt(value: string, flag: string) {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${flag} must be a slot index (0, 1, …)`);
  return n;
}

/** The PKCS#11 token, when a module is configured; the PIN comes from the environment, never the command line. */
function pkcs11Options(opts: { pkcs11Module?: string; pkcs11Slot?: number; pkcs11Token?: string; pkcs11PinEnv: string }): Pkcs11Options | undefined {
  if (opts.pkcs11Module === undefined) {
    if (opts.pkcs11Slot !== undefined || opts.pkcs11Token !== undefined) throw usageError('--pkcs11-slot/--pkcs11-token need --pkcs11-module');
    return undefined;
  }
  if (opts.pkcs11Slot !== undefined && opts.pkcs11Token !== undefined) throw usageError('use --pkcs11-slot N or --pkcs11-token LABEL, not both');
  const pin = process.env[opts.pkcs11PinEnv];
  if (!pin) throw usageError(`--pkcs11-module needs the token's PIN in the environment variable ${opts.pkcs11PinEnv} (--pkcs11-pin-env)`);
  return { module: opts.pkcs11Module, slot: opts.pkcs11Token === undefined ? opts.pkcs11Slot ?? 0 : undefined, tokenLabel: opts.pkcs11Token, pin };
}

/** A DNS name or an IP address: it goes into token issuers and the server certificate, so nothing else is accepted. */
function publicHostOption(value: string) {
  const host = value.trim().toLowerCase();
  const dnsName = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;
  if (!dnsName.test(host) && isIP(host) === 0) throw new InvalidArgumentError('--public-host must be a DNS name or an IP address (no scheme, no port)');
  return host;
}
