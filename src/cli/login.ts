import path from 'node:path';
import type { Command } from 'commander';
import { action, group } from './command.js';
import { createCliContext, removeSavedProfile, resolveProfile, saveProfile, type CliProfile } from './context.js';
import { CliError, usageError } from './errors.js';
import type { ApiCall } from './http.js';

const DEFAULT_ENDPOINT = 'https://localhost:8443';

/** az's subscription entry (`az login` lists them with `cloudName`, `az account show` says `environmentName`). */
function subscriptionEntry(profile: CliProfile, cloudKey: 'cloudName' | 'environmentName') {
  return {
    [cloudKey]: 'Coffer',
    homeTenantId: profile.tenantId,
    id: profile.subscriptionId ?? null,
    isDefault: true,
    managedByTenants: [],
    name: 'Coffer',
    state: 'Enabled',
    tenantId: profile.tenantId,
    user: { name: profile.clientId, type: 'servicePrincipal' },
  };
}

/** Vault hosts of a remote Coffer default to `vault.{endpoint host}` (`vault.localhost` for a local one). */
function defaultVaultDnsSuffix(endpoint: URL) {
  return ['localhost', '127.0.0.1', '[::1]'].includes(endpoint.hostname) ? 'vault.localhost' : `vault.${endpoint.hostname}`;
}

export function registerLoginCommands(program: Command) {
  program.command('login')
    .description('Log in to a Coffer with a service principal (saved in ~/.coffer-cli, or COFFER_CONFIG_DIR)')
    .option('--service-principal', 'log in as a service principal (the only kind Coffer has)')
    .option('-u, --username <clientId>', 'the service principal\'s client (application) id')
    .option('-p, --password <secret>', 'the client secret')
    .option('-t, --tenant <tenantId>', 'the tenant id')
    .option('--endpoint <url>', 'the Coffer token service and management endpoint', DEFAULT_ENDPOINT)
    .option('--ca-cert <file>', 'PEM CA certificate to trust for this Coffer (e.g. {data-dir}/tls/ca.crt)')
    .option('--subscription <id>', 'the subscription to use (default: the first one the endpoint lists)')
    .option('--vault-dns-suffix <suffix>', 'vault DNS suffix (default: vault.localhost, or vault.{endpoint host})')
    .action(action(async (opts: {
      servicePrincipal?: boolean; username?: string; password?: string; tenant?: string; endpoint: string;
      caCert?: string; subscription?: string; vaultDnsSuffix?: string; debug?: boolean;
    }) => {
      if (!opts.servicePrincipal) throw usageError('coffer login --service-principal -u CLIENT_ID -p SECRET --tenant TENANT [--endpoint URL]');
      if (!opts.username || !opts.password || !opts.tenant) throw usageError('--service-principal requires --username, --password and --tenant');
      let endpoint: URL;
      try {
        endpoint = new URL(opts.endpoint);
      } catch {
        throw usageError(`--endpoint must be an https URL, not '${opts.endpoint}'`);
      }
      if (endpoint.protocol !== 'https:') throw usageError('--endpoint must be an https URL');
      const profile: CliProfile = {
        source: 'login',
        tenantId: opts.tenant,
        subscriptionId: opts.subscription,
        clientId: opts.username,
        clientSecret: opts.password,
        authorityHost: endpoint.origin,
        managementEndpoint: endpoint.origin,
        vaultDnsSuffix: opts.vaultDnsSuffix ?? defaultVaultDnsSuffix(endpoint),
        caCertPath: opts.caCert ? path.resolve(opts.caCert) : undefined,
      };
      const context = createCliContext(profile, { debug: opts.debug });
      // Proves the credentials before anything is saved.
      await context.tokens(profile.managementEndpoint);
      profile.subscriptionId ??= await firstSubscription(context.management, profile.clientId);
      saveProfile(profile);
      return [subscriptionEntry(profile, 'cloudName')];
    }));

  program.command('logout')
    .description('Forget the `coffer login` profile')
    .action(action(async () => {
      if (!removeSavedProfile()) throw new CliError('There are no active accounts.');
      return undefined;
    }));

  const account = group(program, 'account', 'The account (tenant, subscription and service principal) the CLI uses');
  account.command('show')
    .description('Show the account the CLI uses')
    .action(action(async (_opts, env) => subscriptionEntry(resolveProfile(env.globals), 'environmentName')));
  account.command('list')
    .description('List the subscriptions of the account the CLI uses')
    .action(action(async (_opts, env) => [subscriptionEntry(resolveProfile(env.globals), 'cloudName')]));
}

/** The first subscription of the ARM subscription list, which every Coffer serves to any signed-in principal (as az's login reads it). */
async function firstSubscription(management: ApiCall, principal: string): Promise<string> {
  const list = await management<{ value?: { subscriptionId?: string }[] }>('GET', '/subscriptions?api-version=2022-12-01');
  const id = list.value?.[0]?.subscriptionId;
  if (!id) throw new CliError(`No subscriptions found for ${principal}.`);
  return id;
}
