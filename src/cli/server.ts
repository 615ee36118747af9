import { InvalidArgumentError, type Command } from 'commander';
import { startCoffer, DEFAULTS } from '../server.js';
import { parseDuration } from '../clock.js';
import { parseThrottleProfile } from '../gates/throttle/budgets.js';

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
    .option('--seal <kind>', 'root key seal: file | passphrase (env COFFER_SEAL_PASSPHRASE)', process.env.COFFER_SEAL ?? DEFAULTS.seal)
    .option('--node-id <id>', 'this node\'s id in a cluster')
    .option('--public-port <port>', 'port clients use in URLs (behind a load balancer)', (v) => Number(v))
    .option('--log-level <level>', 'fatal | error | warn | info | debug | silent', 'info')
    .option('--scheduler-interval <duration>', 'background-job tick, e.g. 5s; a dead node\'s jobs move to another node after 3 ticks', parseDuration)
    .option('--metrics-port <port>', 'also serve /metrics without authentication, over plain HTTP on 127.0.0.1 only', (v) => Number(v))
    .option('--throttle <profile>', 'data-plane throttling: azure (Azure\'s budgets), off, or a multiplier of them (e.g. 0.01)', throttleOption, 'azure')
    .action(async (opts) => {
      const started = performance.now();
      const coffer = await startCoffer({
        host: opts.host, port: opts.port, dataDir: opts.dataDir, dnsSuffix: opts.dnsSuffix, storageUrl: opts.storage,
        tlsCert: opts.tlsCert, tlsKey: opts.tlsKey, seal: opts.seal, sealPassphrase: process.env.COFFER_SEAL_PASSPHRASE,
        nodeId: opts.nodeId, publicPort: opts.publicPort, logLevel: opts.logLevel, schedulerIntervalMs: opts.schedulerInterval,
        throttle: opts.throttle,
        metricsPort: opts.metricsPort,
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
