import crypto from 'node:crypto';
import type { Command } from 'commander';
import { action, boolOption, group, parsePositiveInt, type ActionEnv } from './command.js';
import { CliError, usageError } from './errors.js';
import { resolveRoleId } from './role.js';

/** `coffer ad …`: the directory through Coffer's Graph-shaped API (/v1.0 on the management endpoint), printed like az. */

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ROLE_ASSIGNMENTS_API_VERSION = '2022-04-01';

interface GraphObject { id: string; displayName: string; appId?: string; userPrincipalName?: string; mailNickname?: string }

const graph = (env: ActionEnv) => env.context().management;
const list = async (env: ActionEnv, path: string) => (await graph(env)<{ value: GraphObject[] }>('GET', path)).value;

/** A group by object id or display name (az's `--group` takes either). */
async function resolveGroup(env: ActionEnv, nameOrId: string): Promise<string> {
  if (GUID.test(nameOrId)) return nameOrId;
  const matches = (await list(env, '/v1.0/groups')).filter((g) => g.displayName === nameOrId);
  if (matches.length !== 1) throw new CliError(matches.length ? `More than one group has the name '${nameOrId}'; use its object id.` : `Group '${nameOrId}' was not found.`, 3);
  return matches[0].id;
}

const TRUSTED_ISSUERS = '/coffer/trusted-issuers';

/** A trusted issuer by id or by its issuer URL. */
async function resolveIssuer(env: ActionEnv, idOrIssuer: string): Promise<string> {
  if (GUID.test(idOrIssuer)) return idOrIssuer;
  const { value } = await graph(env)<{ value: { id: string; issuer: string }[] }>('GET', TRUSTED_ISSUERS);
  const found = value.find((i) => i.issuer === idOrIssuer);
  if (!found) throw new CliError(`The issuer '${idOrIssuer}' is not trusted.`, 3);
  return found.id;
}

/** A command that acts on one directory object named by `--id`. */
const byId = (parent: Command, name: string, description: string, method: 'GET' | 'DELETE', collection: string, idHelp: string) =>
  parent.command(name).description(description).requiredOption('--id <id>', idHelp)
    .action(action(async (opts: { id: string }, env) => graph(env)(method, `/v1.0/${collection}/${encodeURIComponent(opts.id)}`)));

export function registerAdCommands(program: Command) {
  const ad = group(program, 'ad', 'Manage the Coffer directory: service principals, users and groups');

  const sp = group(ad, 'sp', 'Manage service principals');
  sp.command('create-for-rbac')
    .description('Create a service principal with a client secret (and, with --role and --scopes, a role assignment)')
    .requiredOption('-n, --name <name>', 'display name of the service principal')
    .option('--role <role>', 'role name or id to assign')
    .option('--scopes <scopes...>', 'scopes of the role assignment')
    .action(action(async (opts: { name: string; role?: string; scopes?: string[] }, env) => {
      if (Boolean(opts.role) !== Boolean(opts.scopes?.length)) throw usageError('--role and --scopes go together');
      const app = await graph(env)<GraphObject>('POST', '/v1.0/applications', { body: { displayName: opts.name } });
      const password = await graph(env)<{ secretText: string }>('POST', `/v1.0/applications/${app.id}/addPassword`, { body: { passwordCredential: { displayName: 'rbac' } } });
      if (opts.role) {
        for (const scope of opts.scopes!) {
          const roleDefinitionId = await resolveRoleId(env, opts.role, scope);
          await graph(env)('PUT', `${scope}/providers/Microsoft.Authorization/roleAssignments/${crypto.randomUUID()}?api-version=${ROLE_ASSIGNMENTS_API_VERSION}`, {
            body: { properties: { roleDefinitionId, principalId: app.id, principalType: 'ServicePrincipal' } },
          });
        }
      }
      return { appId: app.appId, displayName: app.displayName, password: password.secretText, tenant: env.context().profile.tenantId };
    }));
  sp.command('list').description('List service principals (including managed identities)')
    .action(action(async (_opts, env) => list(env, '/v1.0/servicePrincipals')));
  byId(sp, 'show', 'Show a service principal', 'GET', 'servicePrincipals', 'app id or object id');
  byId(sp, 'delete', 'Delete a service principal (its tokens stop working at once)', 'DELETE', 'servicePrincipals', 'app id or object id');

  group(group(ad, 'app', 'Manage applications'), 'credential', 'Manage application credentials').command('reset')
    .description('Give an application a new client secret (removing the others unless --append; their tokens stop working at once)')
    .requiredOption('--id <id>', 'app id or object id')
    .option('--append', 'keep the existing secrets')
    .option('--display-name <name>', 'a name for the secret')
    .option('--years <years>', 'years the secret is valid', (v) => parsePositiveInt(v, '--years'), 1)
    .action(action(async (opts: { id: string; append?: boolean; displayName?: string; years: number }, env) => {
      const app = await graph(env)<GraphObject & { passwordCredentials: { keyId: string }[] }>('GET', `/v1.0/applications/${encodeURIComponent(opts.id)}`);
      const endDateTime = new Date(Date.now() + opts.years * 365 * 86_400_000).toISOString();
      const password = await graph(env)<{ secretText: string }>('POST', `/v1.0/applications/${app.id}/addPassword`, {
        body: { passwordCredential: { displayName: opts.displayName ?? 'rbac', endDateTime } },
      });
      if (!opts.append) {
        for (const { keyId } of app.passwordCredentials) await graph(env)('POST', `/v1.0/applications/${app.id}/removePassword`, { body: { keyId } });
      }
      return { appId: app.appId, password: password.secretText, tenant: env.context().profile.tenantId };
    }));

  const user = group(ad, 'user', 'Manage users');
  user.command('create').description('Create a user')
    .requiredOption('--display-name <name>', 'display name')
    .requiredOption('--user-principal-name <upn>', 'sign-in name, e.g. alice@contoso.com')
    .requiredOption('--password <password>', 'initial password')
    .addOption(boolOption('--account-enabled [bool]', 'enable the account (default: true)'))
    .action(action(async (opts: { displayName: string; userPrincipalName: string; password: string; accountEnabled?: boolean }, env) =>
      graph(env)('POST', '/v1.0/users', {
        body: {
          displayName: opts.displayName, userPrincipalName: opts.userPrincipalName, accountEnabled: opts.accountEnabled ?? true,
          passwordProfile: { password: opts.password }, mailNickname: opts.userPrincipalName.split('@')[0],
        },
      })));
  user.command('list').description('List users').action(action(async (_opts, env) => list(env, '/v1.0/users')));
  byId(user, 'show', 'Show a user', 'GET', 'users', 'object id or user principal name');
  byId(user, 'delete', 'Delete a user (its tokens stop working at once)', 'DELETE', 'users', 'object id or user principal name');

  const groupCmd = group(ad, 'group', 'Manage groups');
  groupCmd.command('create').description('Create a security group')
    .requiredOption('--display-name <name>', 'display name')
    .requiredOption('--mail-nickname <nickname>', 'mail nickname')
    .action(action(async (opts: { displayName: string; mailNickname: string }, env) =>
      graph(env)('POST', '/v1.0/groups', { body: { displayName: opts.displayName, mailNickname: opts.mailNickname, securityEnabled: true, mailEnabled: false } })));
  groupCmd.command('list').description('List groups').action(action(async (_opts, env) => list(env, '/v1.0/groups')));
  groupCmd.command('show').description('Show a group')
    .requiredOption('-g, --group <group>', 'group name or object id')
    .action(action(async (opts: { group: string }, env) => graph(env)('GET', `/v1.0/groups/${await resolveGroup(env, opts.group)}`)));
  groupCmd.command('delete').description('Delete a group')
    .requiredOption('-g, --group <group>', 'group name or object id')
    .action(action(async (opts: { group: string }, env) => graph(env)('DELETE', `/v1.0/groups/${await resolveGroup(env, opts.group)}`)));

  const member = group(groupCmd, 'member', 'Manage group membership (groups may be nested)');
  member.command('add').description('Add a member (user, service principal, managed identity or group)')
    .requiredOption('-g, --group <group>', 'group name or object id')
    .requiredOption('--member-id <id>', 'object id of the member')
    .action(action(async (opts: { group: string; memberId: string }, env) =>
      graph(env)('POST', `/v1.0/groups/${await resolveGroup(env, opts.group)}/members/$ref`, {
        body: { '@odata.id': `https://graph.microsoft.com/v1.0/directoryObjects/${opts.memberId}` },
      })));
  member.command('remove').description('Remove a member')
    .requiredOption('-g, --group <group>', 'group name or object id')
    .requiredOption('--member-id <id>', 'object id of the member')
    .action(action(async (opts: { group: string; memberId: string }, env) =>
      graph(env)('DELETE', `/v1.0/groups/${await resolveGroup(env, opts.group)}/members/${encodeURIComponent(opts.memberId)}/$ref`)));
  member.command('list').description('List the direct members of a group')
    .requiredOption('-g, --group <group>', 'group name or object id')
    .action(action(async (opts: { group: string }, env) => list(env, `/v1.0/groups/${await resolveGroup(env, opts.group)}/members`)));
  member.command('check').description('Whether an object is a member of a group, directly or through nested groups')
    .requiredOption('-g, --group <group>', 'group name or object id')
    .requiredOption('--member-id <id>', 'object id of the member')
    .action(action(async (opts: { group: string; memberId: string }, env) => {
      const groupId = await resolveGroup(env, opts.group);
      const { value } = await graph(env)<{ value: string[] }>('POST', `/v1.0/directoryObjects/${encodeURIComponent(opts.memberId)}/checkMemberGroups`, { body: { groupIds: [groupId] } });
      return { value: value.map((v) => v.toLowerCase()).includes(groupId.toLowerCase()) };
    }));

  const trust = group(ad, 'trusted-issuer', 'Manage external OIDC issuers whose tokens the data plane accepts');
  trust.command('add').description('Trust an issuer\'s tokens (signed by a key of its JWKS, for this audience) on the data plane')
    .requiredOption('--issuer <url>', 'the issuer, exactly as its tokens\' iss claim spells it')
    .requiredOption('--jwks-uri <url>', 'where its signing keys are published (https; http only to a loopback host)')
    .requiredOption('--audience <audience>', 'the aud its tokens must carry for Coffer')
    .action(action(async (opts: { issuer: string; jwksUri: string; audience: string }, env) =>
      graph(env)('POST', TRUSTED_ISSUERS, { body: { issuer: opts.issuer, jwksUri: opts.jwksUri, audience: opts.audience } })));
  trust.command('list').description('List trusted issuers')
    .action(action(async (_opts, env) => (await graph(env)<{ value: unknown[] }>('GET', TRUSTED_ISSUERS)).value));
  trust.command('show').description('Show a trusted issuer and its mapped subjects')
    .requiredOption('--issuer <issuer>', 'the trusted issuer: its id or its issuer URL')
    .action(action(async (opts: { issuer: string }, env) => graph(env)('GET', `${TRUSTED_ISSUERS}/${await resolveIssuer(env, opts.issuer)}`)));
  trust.command('delete').description('Stop trusting an issuer (its tokens stop working at once)')
    .requiredOption('--issuer <issuer>', 'the trusted issuer: its id or its issuer URL')
    .action(action(async (opts: { issuer: string }, env) => graph(env)('DELETE', `${TRUSTED_ISSUERS}/${await resolveIssuer(env, opts.issuer)}`)));
  const subject = group(trust, 'subject', 'Map an issuer\'s subjects (oid, else sub) to principals');
  subject.command('add').description('Accept the issuer\'s tokens for this subject as a principal of the directory')
    .requiredOption('--issuer <issuer>', 'the trusted issuer: its id or its issuer URL')
    .requiredOption('--external-id <id>', 'the oid (or sub) the issuer\'s tokens carry')
    .requiredOption('--principal-id <id>', 'object id of the user, service principal or managed identity it stands for')
    .action(action(async (opts: { issuer: string; externalId: string; principalId: string }, env) =>
      graph(env)('PUT', `${TRUSTED_ISSUERS}/${await resolveIssuer(env, opts.issuer)}/subjects/${encodeURIComponent(opts.externalId)}`, { body: { principalId: opts.principalId } })));
  subject.command('remove').description('Stop accepting the issuer\'s tokens for this subject')
    .requiredOption('--issuer <issuer>', 'the trusted issuer: its id or its issuer URL')
    .requiredOption('--external-id <id>', 'the oid (or sub)')
    .action(action(async (opts: { issuer: string; externalId: string }, env) =>
      graph(env)('DELETE', `${TRUSTED_ISSUERS}/${await resolveIssuer(env, opts.issuer)}/subjects/${encodeURIComponent(opts.externalId)}`)));

  group(ad, 'signed-in-user', 'The signed-in principal').command('show')
    .description('Show the signed-in principal')
    .action(action(async (_opts, env) => graph(env)('GET', '/v1.0/me')));

  group(program, 'account', 'The account (tenant, subscription and service principal) the CLI uses').command('get-access-token')
    .description('Get an access token (same JSON as az)')
    .option('--resource <resource>', 'the resource (default: the management endpoint)')
    .option('--scope <scope>', 'a v2 scope such as https://vault.localhost:8443/.default')
    .action(action(async (opts: { resource?: string; scope?: string }, env) => {
      const context = env.context();
      const resource = (opts.resource ?? opts.scope?.replace(/\/\.default$/, '') ?? context.profile.managementEndpoint).replace(/\/$/, '');
      const accessToken = await context.tokens(resource);
      const { exp } = JSON.parse(Buffer.from(accessToken.split('.')[1] ?? '', 'base64url').toString('utf8')) as { exp: number };
      const local = new Date(exp * 1000 - new Date().getTimezoneOffset() * 60_000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, '.000000');
      return {
        accessToken, expiresOn: local, expires_on: exp, subscription: context.profile.subscriptionId ?? null,
        tenant: context.profile.tenantId, tokenType: 'Bearer',
      };
    }));
}
