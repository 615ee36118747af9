import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { parseEnv } from 'node:util';
import type { Command } from 'commander';
import { action, parsePositiveInt, type ActionEnv } from './command.js';
import { DATA_PLANE_API_VERSION } from './context.js';
import { CliError, httpError, usageError } from './errors.js';
import { createVaultClient, type TokenProvider } from './http.js';
import { showIdentity } from './identity.js';

/**
 * `coffer run [--identity NAME|ID] -- COMMAND ARGS…`: runs a child as a managed identity would run in App Service.
 * The child gets IDENTITY_ENDPOINT / IDENTITY_HEADER (a header minted for that one identity) and
 * AZURE_POD_IDENTITY_AUTHORITY_HOST (the IMDS shape, same binding), and environment values
 * that are Key Vault references are resolved before it starts — values go only into the child's environment.
 */

const REFERENCE = /^@Microsoft\.KeyVault\((.*)\)$/;

interface Binding { identityEndpoint: string; identityHeader: string; podIdentityAuthorityHost: string; clientId: string }

/** The secret URL of a reference: `SecretUri=https://…/secrets/name[/version]` or `VaultName=v;SecretName=n[;SecretVersion=x]`. */
export function parseKeyVaultReference(value: string, vaultUrl: (name: string) => string): URL | undefined {
  const body = REFERENCE.exec(value.trim())?.[1];
  if (body === undefined) return undefined;
  const fields = new Map(body.split(';').filter(Boolean).map((part) => {
    const eq = part.indexOf('=');
    return [part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim()] as const;
  }));
  const uri = fields.get('secreturi');
  if (uri) {
    const url = new URL(uri);
    if (url.protocol !== 'https:' || !/^\/secrets\/[^/]+(\/[^/]*)?\/?$/.test(url.pathname)) throw new Error('SecretUri must be https://{vault}/secrets/{name}[/{version}]');
    return url;
  }
  const vault = fields.get('vaultname');
  const name = fields.get('secretname');
  if (!vault || !name) throw new Error('a reference needs SecretUri, or VaultName and SecretName');
  const version = fields.get('secretversion');
  return new URL(`${vaultUrl(vault)}/secrets/${encodeURIComponent(name)}${version ? `/${encodeURIComponent(version)}` : ''}`);
}

function readEnvFile(file: string) {
  try {
    return parseEnv(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new CliError(`Cannot read the env file '${file}': ${(err as Error).message}`, 2);
  }
}

/** Tokens from the App Service shaped endpoint, as the child itself would get them. */
function managedIdentityTokens(env: ActionEnv, binding: Binding): TokenProvider {
  return async (resource) => {
    const url = `${binding.identityEndpoint}?api-version=2019-08-01&resource=${encodeURIComponent(resource)}`;
    const res = await env.context().http('GET', url, { headers: { 'x-identity-header': binding.identityHeader } });
    if (res.status !== 200) throw httpError(res.status, res.body, 'The managed identity endpoint refused the request');
    return (JSON.parse(res.body) as { access_token: string }).access_token;
  };
}

async function bindIdentity(env: ActionEnv, identity: string, resourceGroup?: string): Promise<Binding> {
  const context = env.context();
  let ref = identity;
  if (!identity.startsWith('/') && !/^[0-9a-f-]{36}$/i.test(identity)) {
    if (!resourceGroup) throw usageError('--identity NAME needs --resource-group (or pass the identity\'s resource id or client id)');
    ref = (await showIdentity(env, identity, resourceGroup)).id;
  }
  return context.management<Binding>('POST', '/coffer/managed-identity/bindings', { body: { identity: ref } });
}

interface ResolvedReference { name: string; url: URL; version: string }

/** Replaces every Key Vault reference in `childEnv` by its secret's value; returns what each resolved to. */
async function resolveReferences(env: ActionEnv, tokens: TokenProvider, childEnv: NodeJS.ProcessEnv, references: Map<string, string>) {
  const context = env.context();
  const resolved: ResolvedReference[] = [];
  for (const [name, value] of references) {
    try {
      const url = parseKeyVaultReference(value, context.vaultUrl)!;
      const secret = await vaultFor(env, tokens, url)<{ value: string; id: string }>('GET', url.pathname);
      childEnv[name] = secret.value;
      resolved.push({ name, url, version: secret.id.split('/').pop() ?? '' });
    } catch (err) {
      throw new CliError(`The Key Vault reference in ${name} could not be resolved: ${(err as Error).message}`);
    }
  }
  return resolved;
}

function vaultFor(env: ActionEnv, tokens: TokenProvider, url: URL) {
  const resource = `https://${url.hostname.split('.').slice(1).join('.')}${url.port ? `:${url.port}` : ''}`;
  return createVaultClient(env.context().http, tokens, url.origin, resource, DATA_PLANE_API_VERSION);
}

/** The first reference without a pinned version whose secret has a new current version. */
async function changedReference(env: ActionEnv, tokens: TokenProvider, resolved: ResolvedReference[]) {
  for (const ref of resolved) {
    const [, , name, pinned] = ref.url.pathname.split('/');
    if (pinned) continue;
    const current = await vaultFor(env, tokens, ref.url)<{ id: string }>('GET', `/secrets/${name}`);
    if (current.id.split('/').pop() !== ref.version) return ref.name;
  }
  return undefined;
}

/** Runs the child with signals forwarded; `stop` ends it early (for a restart). Resolves with its exit code. */
function runChild(command: string, args: string[], childEnv: NodeJS.ProcessEnv) {
  const child = spawn(command, args, { stdio: 'inherit', env: childEnv });
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  signals.forEach((s) => process.on(s, forward));
  const exited = new Promise<number>((resolve, reject) => {
    child.on('error', (err) => reject(new CliError(`Cannot start '${command}': ${err.message}`, 127)));
    child.on('exit', (code, signal) => {
      signals.forEach((s) => process.off(s, forward));
      resolve(code ?? 128 + (signal ? os.constants.signals[signal] : 0));
    });
  });
  return { exited, stop: () => child.kill('SIGTERM') };
}

export function registerRunCommands(program: Command) {
  program.command('run')
    .description('Run a command as a managed identity, with Key Vault references in its environment resolved')
    .option('--identity <identity>', 'managed identity: name (with -g), resource id or client id')
    .option('-g, --resource-group <group>', 'resource group of the identity named by --identity')
    .option('--env-file <file>', 'add the variables of a dotenv file to the child\'s environment (they win over inherited ones)')
    .option('--watch', 'restart the command when a referenced secret (without a pinned version) gets a new current version')
    .option('--watch-interval <seconds>', 'how often --watch checks', (v) => parsePositiveInt(v, '--watch-interval'), 30)
    .argument('<command...>', 'the command and its arguments (after --)')
    .action(action(async (opts: { identity?: string; resourceGroup?: string; envFile?: string; watch?: boolean; watchInterval: number }, env) => {
      const [command, ...args] = env.args[0] as unknown as string[];
      const baseEnv: NodeJS.ProcessEnv = { ...process.env, ...(opts.envFile ? readEnvFile(opts.envFile) : {}) };
      let tokens = env.context().tokens;
      if (opts.identity) {
        const binding = await bindIdentity(env, opts.identity, opts.resourceGroup);
        baseEnv.IDENTITY_ENDPOINT = binding.identityEndpoint;
        baseEnv.IDENTITY_HEADER = binding.identityHeader;
        // The IMDS shape, for SDKs and apps that skip the App Service one; it carries the same binding.
        baseEnv.AZURE_POD_IDENTITY_AUTHORITY_HOST = binding.podIdentityAuthorityHost;
        tokens = managedIdentityTokens(env, binding);
      }
      const references = new Map(Object.entries(baseEnv).filter((e): e is [string, string] => Boolean(e[1] && REFERENCE.test(e[1].trim()))));
      for (;;) {
        const childEnv = { ...baseEnv };
        const resolved = await resolveReferences(env, tokens, childEnv, references);
        const child = runChild(command, args, childEnv);
        let restart: string | undefined;
        const timer = opts.watch && resolved.length ? setInterval(() => {
          changedReference(env, tokens, resolved).then((name) => {
            if (name && !restart) {
              restart = name;
              process.stderr.write(`coffer run: the secret referenced by ${name} has a new version; restarting\n`);
              child.stop();
            }
          }, (err) => process.stderr.write(`WARNING: coffer run --watch: ${(err as Error).message}\n`));
        }, opts.watchInterval * 1000) : undefined;
        const exitCode = await child.exited;
        clearInterval(timer);
        if (!restart) {
          process.exitCode = exitCode;
          return undefined;
        }
      }
    }));
}
