import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BootstrapAdminFile } from '../bootstrap.js';
import { CliError } from './errors.js';
import { createHttpClient, createManagementClient, createTokenProvider, createVaultClient, type ApiCall, type HttpClient, type TokenProvider } from './http.js';
import type { OutputFormat } from './output.js';

/** The options every command accepts (declared once on the program). */
export interface GlobalOptions {
  dataDir?: string;
  output: OutputFormat;
  query?: string;
  debug?: boolean;
}

/** Who the CLI is and which Coffer it talks to: from a data dir's bootstrap file or from `coffer login`. */
export interface CliProfile {
  source: 'data-dir' | 'login';
  tenantId: string;
  subscriptionId?: string;
  /** The service principal's app id, or the signed-in user's UPN. */
  clientId: string;
  userType?: 'servicePrincipal' | 'user';
  clientSecret?: string;
  refreshToken?: string;
  /** A service principal signed in with a certificate: the PEM file (key and certificate) it signs assertions with. */
  clientCertificatePath?: string;
  authorityHost: string;
  managementEndpoint: string;
  vaultDnsSuffix: string;
  caCertPath?: string;
}

export const DEFAULT_DATA_DIR = './.coffer';
/** The api-version az 2.45 sends to the vault data plane. */
export const DATA_PLANE_API_VERSION = '7.4';

export const configDir = () => process.env.COFFER_CONFIG_DIR || path.join(os.homedir(), '.coffer-cli');
const profileFile = () => path.join(configDir(), 'profile.json');

export function readSavedProfile(): CliProfile | undefined {
  const file = profileFile();
  if (!fs.existsSync(file)) return undefined;
  return { ...(JSON.parse(fs.readFileSync(file, 'utf8')) as CliProfile), source: 'login' };
}

/** Saved 0600 in a 0700 directory: the profile holds the client secret or refresh token, as az's own token cache does. */
export function saveProfile(profile: CliProfile) {
  fs.mkdirSync(configDir(), { recursive: true, mode: 0o700 });
  const file = profileFile();
  fs.writeFileSync(file, JSON.stringify({ ...profile, source: 'login' }, null, 2) + '\n', { mode: 0o600 });
  fs.chmodSync(file, 0o600);
}

export function removeSavedProfile(): boolean {
  const file = profileFile();
  if (!fs.existsSync(file)) return false;
  fs.rmSync(file);
  return true;
}

export function profileFromDataDir(dataDir: string): CliProfile {
  const file = path.join(dataDir, 'bootstrap-admin.json');
  if (!fs.existsSync(file)) {
    throw new CliError(`No Coffer credentials found: '${file}' does not exist. Start Coffer with \`coffer server start\`, ` +
      'point --data-dir (or COFFER_DATA_DIR) at its data directory, or run `coffer login --service-principal`.');
  }
  const admin = JSON.parse(fs.readFileSync(file, 'utf8')) as BootstrapAdminFile;
  return {
    source: 'data-dir',
    tenantId: admin.tenantId,
    subscriptionId: admin.subscriptionId,
    clientId: admin.clientId,
    clientSecret: admin.clientSecret,
    authorityHost: admin.authorityHost,
    managementEndpoint: admin.managementEndpoint,
    vaultDnsSuffix: admin.vaultDnsSuffix,
    caCertPath: admin.caCertPath,
  };
}

/**
 * An explicit data dir (`--data-dir` or COFFER_DATA_DIR) wins; otherwise the `coffer login` profile; otherwise the
 * local server's default data dir.
 */
export function resolveProfile(globals: Pick<GlobalOptions, 'dataDir'>): CliProfile {
  const explicitDataDir = globals.dataDir || process.env.COFFER_DATA_DIR;
  if (explicitDataDir) return profileFromDataDir(explicitDataDir);
  return readSavedProfile() ?? profileFromDataDir(DEFAULT_DATA_DIR);
}

export interface CliContext {
  profile: CliProfile;
  http: HttpClient;
  tokens: TokenProvider;
  /** The management API, e.g. `management('GET', '/subscriptions/…?api-version=…')`. */
  management: ApiCall;
  /** The object id (`oid`) of the signed-in principal, read from its own management token. */
  callerObjectId(): Promise<string>;
  /** The subscription of the profile (an error when a remote login could not learn one). */
  subscriptionId(): string;
  /** `https://{vault}.{suffix}[:port]`, the port being the management endpoint's. */
  vaultUrl(vaultName: string): string;
  /** A vault's data plane; paths get `api-version` unless they carry one. */
  vault(vaultUrl: string): ApiCall;
}

export function createCliContext(profile: CliProfile, opts: { debug?: boolean } = {}): CliContext {
  const http = createHttpClient({ caCertPath: profile.caCertPath, debug: opts.debug });
  const tokens = createTokenProvider(http, profile);
  const port = new URL(profile.managementEndpoint).port;
  return {
    profile,
    http,
    tokens,
    management: createManagementClient(http, tokens, profile.managementEndpoint),
    async callerObjectId() {
      const token = await tokens(profile.managementEndpoint);
      return (JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { oid: string }).oid;
    },
    subscriptionId() {
      if (!profile.subscriptionId) throw new CliError('No subscription is known for this login. Run `coffer login` again with --subscription.');
      return profile.subscriptionId;
    },
    vaultUrl: (name) => `https://${name.toLowerCase()}.${profile.vaultDnsSuffix}${port ? `:${port}` : ''}`,
    vault(vaultUrl) {
      // Key Vault's resource is the vault host's parent domain (the DNS suffix), with the port unless it is 443.
      const url = new URL(vaultUrl);
      const resource = `https://${url.hostname.split('.').slice(1).join('.')}${url.port ? `:${url.port}` : ''}`;
      return createVaultClient(http, tokens, url.origin, resource, DATA_PLANE_API_VERSION);
    },
  };
}
