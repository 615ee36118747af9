import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { parseEnv } from 'node:util';
import type { Command } from 'commander';
import { action, type ActionEnv } from './command.js';
import { DATA_PLANE_API_VERSION } from './context.js';
import { CliError, httpError, usageError } from './errors.js';
import { createVaultClient, type TokenProvider } from './http.js';
import { showIdentity } from './identity.js';

/**
 * `coffer run [--identity NAME|ID] -- COMMAND ARGS…`: runs a child as a managed identity would run in App Service.
 * The child gets IDENTITY_ENDPOINT / IDENTITY_HEADER (a header minted for that one identity), and environment values
 * that are Key Vault references are resolved before it starts — values go only into the child's environment.
 */

const REFERENCE = /^@Microsoft\.KeyVault\((.*)\)$/;

interface Binding { identityEndpoint: string; identityHeader: string; clientId: string }

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

export function registerRunCommands(program: Command) {
  program.command('run')
    .description('Run a command as a managed identity, with Key Vault references in its environment resolved')
    .option('--identity <identity>', 'managed identity: name (with -g), resource id or client id')
    .option('-g, --resource-group <group>', 'resource group of the identity named by --identity')
    .option('--env-file <file>', 'add the variables of a dotenv file to the child\'s environment (they win over inherited ones)')
    .argument('<command...>', 'the command and its arguments (after --)')
    .action(action(async (opts: { identity?: string; resourceGroup?: string; envFile?: string }, env) => {
      const [command, ...args] = env.args[0] as unknown as string[];
      const context = env.context();
      const childEnv: NodeJS.ProcessEnv = { ...process.env, ...(opts.envFile ? readEnvFile(opts.envFile) : {}) };
      let tokens = context.tokens;
      if (opts.identity) {
        const binding = await bindIdentity(env, opts.identity, opts.resourceGroup);
        childEnv.IDENTITY_ENDPOINT = binding.identityEndpoint;
        childEnv.IDENTITY_HEADER = binding.identityHeader;
        tokens = managedIdentityTokens(env, binding);
      }
      for (const [name, value] of Object.entries(childEnv)) {
        if (!value || !REFERENCE.test(value.trim())) continue;
        try {
          const url = parseKeyVaultReference(value, context.vaultUrl)!;
          const resource = `https://${url.hostname.split('.').slice(1).join('.')}${url.port ? `:${url.port}` : ''}`;
          const vault = createVaultClient(context.http, tokens, url.origin, resource, DATA_PLANE_API_VERSION);
          childEnv[name] = (await vault<{ value: string }>('GET', url.pathname)).value;
        } catch (err) {
          throw new CliError(`The Key Vault reference in ${name} could not be resolved: ${(err as Error).message}`);
        }
      }
      const exitCode = await new Promise<number>((resolve, reject) => {
        const child = spawn(command, args, { stdio: 'inherit', env: childEnv });
        const forward = (signal: NodeJS.Signals) => child.kill(signal);
        const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
        signals.forEach((s) => process.on(s, forward));
        child.on('error', (err) => reject(new CliError(`Cannot start '${command}': ${err.message}`, 127)));
        child.on('exit', (code, signal) => {
          signals.forEach((s) => process.off(s, forward));
          resolve(code ?? 128 + (signal ? os.constants.signals[signal] : 0));
        });
      });
      process.exitCode = exitCode;
      return undefined;
    }));
}
