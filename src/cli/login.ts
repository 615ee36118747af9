import path from 'node:path';
import type { Command } from 'commander';
import { action, group } from './command.js';
import { createCliContext, removeSavedProfile, resolveProfile, saveProfile, type CliProfile } from './context.js';
import { CliError, usageError } from './errors.js';
import { readCertificatePem } from './certificate-assertion.js';
import { CLI_PUBLIC_CLIENT_ID, createHttpClient, tokenEndpoint, type ApiCall } from './http.js';

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
    user: { name: profile.clientId, type: profile.userType ?? 'servicePrincipal' },
  };
}

/** Vault hosts of a remote Coffer default to `vault.{endpoint host}` (`vault.localhost` for a local one). */
function defaultVaultDnsSuffix(endpoint: URL) {
  return ['localhost', '127.0.0.1', '[::1]'].includes(endpoint.hostname) ? 'vault.localhost' : `vault.${endpoint.hostname}`;
}

export function registerLoginCommands(program: Command) {
  program.command('login')
    .description('Log in to a Coffer as a user or a service principal (saved in ~/.coffer-cli, or COFFER_CONFIG_DIR)')
    .option('--service-principal', 'log in as a service principal (otherwise: a user with a password)')
    .option('-u, --username <name>', 'the user\'s UPN, or the service principal\'s client (application) id')
    .option('-p, --password <password>', 'the user\'s password, or the client secret')
    .option('--certificate <file>', 'with --service-principal: a PEM file holding the certificate and its private key (instead of a secret)')
    .option('-t, --tenant <tenantId>', 'the tenant id')
    .option('--endpoint <url>', 'the Coffer token service and management endpoint', DEFAULT_ENDPOINT)
    .option('--ca-cert <file>', 'PEM CA certificate to trust for this Coffer (e.g. {data-dir}/tls/ca.crt)')
    .option('--subscription <id>', 'the subscription to use (default: the first one the endpoint lists)')
    .option('--vault-dns-suffix <suffix>', 'vault DNS suffix (default: vault.localhost, or vault.{endpoint host})')
    .action(action(async (opts: {
      servicePrincipal?: boolean; username?: string; password?: string; certificate?: string; tenant?: string; endpoint: string;
      caCert?: string; subscription?: string; vaultDnsSuffix?: string; debug?: boolean;
    }) => {
      if (opts.certificate && (!opts.servicePrincipal || opts.password)) throw usageError('--certificate signs in a --service-principal, instead of -p');
      if (!opts.username || !(opts.password || opts.certificate) || !opts.tenant) {
        throw usageError('coffer login [--service-principal] -u NAME (-p PASSWORD | --certificate PEMFILE) --tenant TENANT [--endpoint URL]');
      }
      // The file is read at every token request; a bad one is reported now, before anything is saved.
      if (opts.certificate) readCertificatePem(opts.certificate);
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
        userType: opts.servicePrincipal ? 'servicePrincipal' : 'user',
        ...(opts.certificate ? { clientCertificatePath: path.resolve(opts.certificate) } : opts.servicePrincipal ? { clientSecret: opts.password } : {}),
        authorityHost: endpoint.origin,
        managementEndpoint: endpoint.origin,
        vaultDnsSuffix: opts.vaultDnsSuffix ?? defaultVaultDnsSuffix(endpoint),
        caCertPath: opts.caCert ? path.resolve(opts.caCert) : undefined,
      };
      // A user's password is exchanged once for a refresh token, which is what the profile keeps.
      if (!opts.servicePrincipal) profile.refreshToken = await userRefreshToken(profile, opts.password!, opts.debug);
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

/** The password grant (as az's username/password login), for the management audience; returns the refresh token. */
async function userRefreshToken(profile: CliProfile, password: string, debug?: boolean): Promise<string> {
  const http = createHttpClient({ caCertPath: profile.caCertPath, debug });
  const res = await http('POST', tokenEndpoint(profile), {
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'password', client_id: CLI_PUBLIC_CLIENT_ID, username: profile.clientId, password,
      scope: `${profile.managementEndpoint}/.default offline_access`,
    }).toString(),
  });
  const body = JSON.parse(res.body || '{}') as { refresh_token?: string; error_description?: string };
  if (res.status !== 200 || !body.refresh_token) {
    throw new CliError(`AADSTS50126: Error validating credentials due to invalid username or password. (${res.status})`);
  }
  return body.refresh_token;
}
