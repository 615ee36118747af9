import crypto from 'node:crypto';
import type { Command } from 'commander';
import { action, boolOption, group, parsePositiveInt, parseTags, type ActionEnv } from './command.js';
import { CliError } from './errors.js';
import { listAll } from './http.js';
import {
  deletedFields, jsonValue, objectAttributes, objectTarget, readFile, registerLifecycleCommands, registerListVersionsCommand, registerShowCommand, vaultTarget, withDownloadFile, withMaxResults, withObjectTarget, withVault, type TargetOptions, type WireAttributes, type WireDeleted,
} from './keyvault-objects.js';
import { isoTime, subresourceName } from './output.js';

/** The wire shapes of the certificates data plane (the parts the CLI reads and writes). */
interface WirePolicy {
  id?: string;
  key_props?: { exportable?: boolean; kty?: string; key_size?: number; reuse_key?: boolean; crv?: string };
  secret_props?: { contentType?: string };
  x509_props?: {
    subject?: string; ekus?: string[]; sans?: { emails?: string[]; dns_names?: string[]; upns?: string[] }; key_usage?: string[]; validity_months?: number;
  };
  lifetime_actions?: { trigger?: { lifetime_percentage?: number; days_before_expiry?: number }; action?: { action_type?: string } }[];
  issuer?: { name?: string; cty?: string; cert_transparency?: boolean };
  attributes?: WireAttributes;
}
interface WireCertificate extends WireDeleted {
  id?: string; kid?: string; sid?: string; x5t?: string; cer?: string; contentType?: string; attributes?: WireAttributes;
  tags?: Record<string, string>; policy?: WirePolicy;
}
interface WireOperation {
  id?: string; issuer?: { name?: string }; csr?: string; cancellation_requested?: boolean; status?: string; status_details?: string;
  target?: string; request_id?: string; error?: { code?: string; message?: string };
}

const certificateAttributes = objectAttributes;

/** The policy as az prints it (and accepts back in `--policy`): camelCase, the SDK's field names. */
function policyOutput(p: WirePolicy) {
  const x509 = p.x509_props ?? {};
  return {
    attributes: p.attributes ? certificateAttributes(p.attributes) : null,
    id: p.id ?? null,
    issuerParameters: { certificateTransparency: p.issuer?.cert_transparency ?? null, certificateType: p.issuer?.cty ?? null, name: p.issuer?.name ?? null },
    keyProperties: {
      curve: p.key_props?.crv ?? null, exportable: p.key_props?.exportable ?? null, keySize: p.key_props?.key_size ?? null,
      keyType: p.key_props?.kty ?? null, reuseKey: p.key_props?.reuse_key ?? null,
    },
    lifetimeActions: (p.lifetime_actions ?? []).map((a) => ({
      action: { actionType: a.action?.action_type ?? null },
      trigger: { daysBeforeExpiry: a.trigger?.days_before_expiry ?? null, lifetimePercentage: a.trigger?.lifetime_percentage ?? null },
    })),
    secretProperties: { contentType: p.secret_props?.contentType ?? null },
    x509CertificateProperties: {
      ekus: x509.ekus ?? null,
      keyUsage: x509.key_usage ?? null,
      subject: x509.subject ?? null,
      subjectAlternativeNames: x509.sans
        ? { dnsNames: x509.sans.dns_names ?? null, emails: x509.sans.emails ?? null, upns: x509.sans.upns ?? null }
        : null,
      validityInMonths: x509.validity_months ?? null,
    },
  };
}

/** `az keyvault certificate get-default-policy` (az 2.45), verbatim. */
const DEFAULT_POLICY = {
  issuerParameters: { certificateTransparency: null, certificateType: null, name: 'Self' },
  keyProperties: { curve: null, exportable: true, keySize: 2048, keyType: 'RSA', reuseKey: true },
  lifetimeActions: [{ action: { actionType: 'AutoRenew' }, trigger: { daysBeforeExpiry: 90 } }],
  secretProperties: { contentType: 'application/x-pkcs12' },
  x509CertificateProperties: {
    keyUsage: ['cRLSign', 'dataEncipherment', 'digitalSignature', 'keyEncipherment', 'keyAgreement', 'keyCertSign'],
    subject: 'CN=CLIGetDefaultPolicy',
    validityInMonths: 12,
  },
};

/** Drops nulls, so a policy az printed can be sent back as-is without clearing what it left unset. */
const present = <T extends Record<string, unknown>>(o: T) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== null && v !== undefined));

/**
 * `--policy` takes az's camelCase shape (what get-default-policy and show print) or the REST shape (snake_case
 * sections); the service takes the REST shape, so the camelCase form is converted.
 */
function policyBody(input: unknown): WirePolicy {
  if (!input || typeof input !== 'object' || Array.isArray(input)) throw new CliError('argument --policy: the policy must be a JSON object', 2);
  const p = input as Record<string, any>;
  if (p.key_props || p.secret_props || p.x509_props || p.issuer || p.lifetime_actions) return p as WirePolicy;
  const key = p.keyProperties ?? p.key_properties;
  const x509 = p.x509CertificateProperties ?? p.x509_certificate_properties;
  const sans = x509?.subjectAlternativeNames ?? x509?.subject_alternative_names;
  const issuer = p.issuerParameters ?? p.issuer_parameters;
  const actions = p.lifetimeActions ?? p.lifetime_actions;
  if (actions !== undefined && actions !== null && !Array.isArray(actions)) throw new CliError('argument --policy: lifetimeActions must be an array', 2);
  return present({
    key_props: key ? present({ exportable: key.exportable, kty: key.keyType ?? key.key_type, key_size: key.keySize ?? key.key_size, reuse_key: key.reuseKey ?? key.reuse_key, crv: key.curve }) : undefined,
    secret_props: (p.secretProperties ?? p.secret_properties) ? present({ contentType: (p.secretProperties ?? p.secret_properties).contentType ?? (p.secretProperties ?? p.secret_properties).content_type }) : undefined,
    x509_props: x509 ? present({
      subject: x509.subject,
      ekus: x509.ekus,
      key_usage: x509.keyUsage ?? x509.key_usage,
      validity_months: x509.validityInMonths ?? x509.validity_in_months,
      sans: sans ? present({ dns_names: sans.dnsNames ?? sans.dns_names, emails: sans.emails, upns: sans.upns }) : undefined,
    }) : undefined,
    lifetime_actions: (actions as Record<string, any>[] | undefined)?.map((a) => ({
      trigger: present({ days_before_expiry: a.trigger?.daysBeforeExpiry ?? a.trigger?.days_before_expiry, lifetime_percentage: a.trigger?.lifetimePercentage ?? a.trigger?.lifetime_percentage }),
      action: { action_type: a.action?.actionType ?? a.action?.action_type },
    })),
    issuer: issuer ? present({ name: issuer.name, cty: issuer.certificateType ?? issuer.certificate_type, cert_transparency: issuer.certificateTransparency ?? issuer.certificate_transparency }) : undefined,
  }) as WirePolicy;
}

const thumbprintHex = (x5t: string | undefined) => (x5t ? Buffer.from(x5t, 'base64url').toString('hex').toUpperCase() : null);
const certificateItem = (c: WireCertificate) => ({
  attributes: certificateAttributes(c.attributes), id: c.id ?? null, name: subresourceName(c.id), tags: c.tags ?? null,
  x509Thumbprint: c.x5t ? Buffer.from(c.x5t, 'base64url').toString('base64') : null, x509ThumbprintHex: thumbprintHex(c.x5t),
});
const certificateBundle = (c: WireCertificate) => ({
  attributes: certificateAttributes(c.attributes),
  cer: c.cer ? Buffer.from(c.cer, 'base64url').toString('base64') : null,
  contentType: c.contentType ?? null,
  id: c.id ?? null,
  kid: c.kid ?? null,
  name: subresourceName(c.id),
  policy: c.policy ? policyOutput(c.policy) : null,
  sid: c.sid ?? null,
  tags: c.tags ?? null,
  x509Thumbprint: c.x5t ? Buffer.from(c.x5t, 'base64url').toString('base64') : null,
  x509ThumbprintHex: thumbprintHex(c.x5t),
});
const deletedCertificateBundle = (c: WireCertificate) => ({ ...certificateBundle(c), ...deletedFields(c) });
const deletedCertificateItem = (c: WireCertificate) => ({ ...certificateItem(c), ...deletedFields(c) });

const operationOutput = (o: WireOperation) => ({
  cancellationRequested: o.cancellation_requested ?? null,
  csr: o.csr ?? null,
  error: o.error ?? null,
  id: o.id ?? null,
  issuerParameters: { certificateTransparency: null, certificateType: null, name: o.issuer?.name ?? null },
  requestId: o.request_id ?? null,
  status: o.status ?? null,
  statusDetails: o.status_details ?? null,
  target: o.target ?? null,
});

const certificateTarget = (opts: TargetOptions, env: ActionEnv) => objectTarget(opts, env, 'certificates');
const withTarget = (cmd: Command, idHelp: string | undefined, opts: { version?: boolean } = {}) => withObjectTarget(cmd, 'certificate', idHelp, opts);
const CERTIFICATE_ID_HELP = 'the certificate identifier: https://{vault}/certificates/{name}[/{version}]';

interface AttributeOptions { disabled?: boolean; tags?: string[] }
const withCreateAttributes = (cmd: Command) => cmd
  .addOption(boolOption('--disabled [bool]', 'create the certificate disabled'))
  .option('--tags [tags...]', 'space-separated tags: key[=value] [key[=value] ...]; "" clears');
const createAttributes = (opts: AttributeOptions) => ({ attributes: { enabled: !opts.disabled }, tags: parseTags(opts.tags) });

/** How long `create` waits for issuance, polling the pending operation as az's poller does. */
const CREATE_TIMEOUT_MS = 120_000;
const POLL_INTERVAL_MS = 500;

/** PEM blocks of one kind from a text file, as the DER bytes they carry. */
function pemBlocks(text: string, label: string): Buffer[] {
  const pattern = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`, 'g');
  return [...text.matchAll(pattern)].map((m) => Buffer.from(m[1].replace(/\s+/g, ''), 'base64'));
}

/** `coffer keyvault certificate …`, flag for flag like `az keyvault certificate …` (az 2.45). */
export function registerKeyVaultCertificateCommands(program: Command) {
  const certificate = group(group(program, 'keyvault', 'Manage vaults and their secrets'), 'certificate', 'Manage certificates');

  certificate.command('get-default-policy')
    .description('Get the default policy for self-signed certificates (to edit and pass to `create --policy`)')
    .option('--scaffold', 'accepted for az compatibility (the same template)')
    .action(action(async () => DEFAULT_POLICY));

  withCreateAttributes(withTarget(certificate.command('create'), undefined))
    .description('Create a certificate (or a new version of it) and wait for its issuance')
    .requiredOption('-p, --policy <policy>', 'the management policy: JSON, or @file with it')
    .option('--validity <months>', 'number of months the certificate is valid for (overrides the policy\'s)', (v: string) => parsePositiveInt(v, '--validity'))
    .action(action(async (opts: TargetOptions & AttributeOptions & { policy: string; validity?: number }, env) => {
      const policy = policyBody(jsonValue(opts.policy, '--policy'));
      if (opts.validity !== undefined) policy.x509_props = { ...policy.x509_props, validity_months: opts.validity };
      const { vault, name } = certificateTarget(opts, env);
      let operation = await vault<WireOperation>('POST', `/certificates/${name}/create`, { body: { policy, ...createAttributes(opts) } });
      // An `Unknown` issuer's operation waits for `pending merge`: there is nothing to wait for.
      const awaitsMerge = policy.issuer?.name?.toLowerCase() === 'unknown';
      const deadline = Date.now() + CREATE_TIMEOUT_MS;
      while (!awaitsMerge && operation.status?.toLowerCase() === 'inprogress' && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
        operation = await vault<WireOperation>('GET', `/certificates/${name}/pending`);
      }
      // az's poller raises when issuance fails rather than printing the failed operation.
      if (operation.status?.toLowerCase() === 'failed') {
        throw new CliError(`Certificate issuance failed: ${operation.error?.message ?? operation.status_details ?? 'no details'}`);
      }
      return operationOutput(operation);
    }));

  withCreateAttributes(withTarget(certificate.command('import'), undefined))
    .description('Import a certificate with its private key: a PFX (PKCS#12) or PEM file')
    .requiredOption('-f, --file <path>', 'the PFX or PEM file, private key included')
    .option('--password <password>', 'the PFX\'s password, if it has one')
    .option('-p, --policy <policy>', 'the management policy: JSON, or @file with it')
    .action(action(async (opts: TargetOptions & AttributeOptions & { file: string; password?: string; policy?: string }, env) => {
      const bytes = readFile(opts.file);
      const isPem = bytes.toString('latin1').includes('-----BEGIN');
      const policy = opts.policy !== undefined ? policyBody(jsonValue(opts.policy, '--policy')) : {};
      const contentType = isPem ? 'application/x-pem-file' : 'application/x-pkcs12';
      const body = {
        value: isPem ? bytes.toString('utf8') : bytes.toString('base64'),
        pwd: opts.password,
        policy: { ...policy, secret_props: { contentType } },
        ...createAttributes(opts),
      };
      const { vault, name } = certificateTarget(opts, env);
      return certificateBundle(await vault<WireCertificate>('POST', `/certificates/${name}/import`, { body }));
    }));

  registerShowCommand(certificate, { collection: 'certificates', noun: 'certificate', bundle: certificateBundle, description: 'Get a certificate (its current version unless --version)' });

  withDownloadFile(withTarget(certificate.command('download'), CERTIFICATE_ID_HELP, { version: true })
    .description('Write a certificate\'s public X.509 certificate to a new file'), async (opts, env, encoding) => {
    const { vault, name, version } = certificateTarget(opts, env);
    const bundle = await vault<WireCertificate>('GET', `/certificates/${name}/${version ?? ''}`);
    if (!bundle.cer) throw new CliError(`Certificate '${decodeURIComponent(name)}' has no issued X.509 certificate yet`);
    const der = Buffer.from(bundle.cer, 'base64url');
    return encoding === 'PEM' ? new crypto.X509Certificate(der).toString() : der;
  });

  withMaxResults(withVault(certificate.command('list')))
    .description('List certificates')
    .addOption(boolOption('--include-pending [bool]', 'include certificates whose issuance is pending'))
    .action(action(async (opts: { vaultName?: string; id?: string; maxresults?: number; includePending?: boolean }, env) => {
      const path = `/certificates${opts.includePending !== undefined ? `?includePending=${opts.includePending}` : ''}`;
      return (await listAll<WireCertificate>(vaultTarget(opts, env), path, opts.maxresults)).map(certificateItem);
    }));

  registerListVersionsCommand(certificate, { collection: 'certificates', noun: 'certificate', item: certificateItem });

  withTarget(certificate.command('set-attributes'), CERTIFICATE_ID_HELP, { version: true })
    .description('Update a certificate\'s attributes, tags or policy')
    .addOption(boolOption('--enabled [bool]', 'enable or disable the certificate'))
    .option('--tags [tags...]', 'space-separated tags: key[=value] [key[=value] ...]; "" clears')
    .option('-p, --policy <policy>', 'a new management policy: JSON, or @file with it')
    .action(action(async (opts: TargetOptions & { enabled?: boolean; tags?: string[]; policy?: string }, env) => {
      const policy = opts.policy !== undefined ? policyBody(jsonValue(opts.policy, '--policy')) : undefined;
      const { vault, name, version } = certificateTarget(opts, env);
      const body = { attributes: { enabled: opts.enabled }, tags: parseTags(opts.tags), policy };
      return certificateBundle(await vault<WireCertificate>('PATCH', `/certificates/${name}/${version ?? ''}`, { body }));
    }));

  registerLifecycleCommands(certificate, {
    collection: 'certificates', noun: 'certificate', bundle: certificateBundle, deletedBundle: deletedCertificateBundle, deletedItem: deletedCertificateItem,
    includePending: true,
  });

  registerPendingCommands(certificate);
  registerIssuerCommands(certificate);
  registerContactCommands(certificate);
  return certificate;
}

interface WireIssuer {
  id?: string; provider?: string; credentials?: { account_id?: string };
  org_details?: { id?: string; admin_details?: { first_name?: string; last_name?: string; email?: string; phone?: string }[] };
  attributes?: { enabled?: boolean; created?: number; updated?: number };
}
/** az's IssuerBundle dict; the account password is write-only, so it prints null. */
const issuerOutput = (i: WireIssuer) => ({
  attributes: { created: isoTime(i.attributes?.created), enabled: i.attributes?.enabled ?? null, updated: isoTime(i.attributes?.updated) },
  credentials: i.credentials ? { accountId: i.credentials.account_id ?? null, password: null } : null,
  id: i.id ?? null,
  organizationDetails: i.org_details ? {
    adminDetails: (i.org_details.admin_details ?? []).map((a) => ({
      emailAddress: a.email ?? null, firstName: a.first_name ?? null, lastName: a.last_name ?? null, phone: a.phone ?? null,
    })),
    id: i.org_details.id ?? null,
  } : null,
  provider: i.provider ?? null,
});

interface IssuerOptions { vaultName?: string; id?: string; issuerName: string; providerName?: string; accountId?: string; password?: string; organizationId?: string; disabled?: boolean }

/** `certificate issuer create|update|show|list|delete`, with az's flags. */
function registerIssuerCommands(certificate: Command) {
  const issuer = group(certificate, 'issuer', 'Manage certificate issuers');
  const commandIn = (parent: Command, command: string, description: string) =>
    withVault(parent.command(command)).description(description).requiredOption('--issuer-name <name>', 'the issuer\'s name');
  const issuerCommand = (command: string, description: string) => commandIn(issuer, command, description);
  const issuerPath = (opts: IssuerOptions) => `/certificates/issuers/${encodeURIComponent(opts.issuerName)}`;
  const withIssuerProperties = (cmd: Command) => cmd
    .option('--account-id <id>', 'the issuer account id')
    .option('--password <password>', 'the issuer account password')
    .option('--organization-id <id>', 'the organization id')
    .addOption(boolOption('--disabled [bool]', 'set the issuer disabled'));
  const issuerBody = (opts: IssuerOptions) => ({
    provider: opts.providerName,
    credentials: opts.accountId !== undefined || opts.password !== undefined ? { account_id: opts.accountId, pwd: opts.password } : undefined,
    org_details: opts.organizationId !== undefined ? { id: opts.organizationId } : undefined,
    attributes: opts.disabled !== undefined ? { enabled: !opts.disabled } : undefined,
  });

  withIssuerProperties(issuerCommand('create', 'Create (or replace) a certificate issuer'))
    .requiredOption('--provider-name <name>', 'the issuer provider (e.g. Self, Unknown, or the built-in CA\'s provider)')
    .action(action(async (opts: IssuerOptions, env) =>
      issuerOutput(await vaultTarget(opts, env)<WireIssuer>('PUT', issuerPath(opts), { body: issuerBody(opts) }))));

  withIssuerProperties(issuerCommand('update', 'Update a certificate issuer'))
    .option('--provider-name <name>', 'the issuer provider')
    .action(action(async (opts: IssuerOptions, env) =>
      issuerOutput(await vaultTarget(opts, env)<WireIssuer>('PATCH', issuerPath(opts), { body: issuerBody(opts) }))));

  issuerCommand('show', 'Get a certificate issuer')
    .action(action(async (opts: IssuerOptions, env) => issuerOutput(await vaultTarget(opts, env)<WireIssuer>('GET', issuerPath(opts)))));

  issuerCommand('delete', 'Delete a certificate issuer')
    .action(action(async (opts: IssuerOptions, env) => issuerOutput(await vaultTarget(opts, env)<WireIssuer>('DELETE', issuerPath(opts)))));

  withVault(issuer.command('list'))
    .description('List certificate issuers')
    .action(action(async (opts: { vaultName?: string; id?: string }, env) =>
      (await listAll<WireIssuer>(vaultTarget(opts, env), '/certificates/issuers')).map((i) => ({ id: i.id ?? null, provider: i.provider ?? null }))));

  registerIssuerAdminCommands(issuer, commandIn);
}

interface AdminOptions { vaultName?: string; id?: string; issuerName: string; email: string; firstName?: string; lastName?: string; phone?: string }
type WireAdmin = NonNullable<NonNullable<WireIssuer['org_details']>['admin_details']>[number];
/** az's AdministratorContact dict. */
const adminOutput = (a: WireAdmin) => ({ email: a.email ?? null, firstName: a.first_name ?? null, lastName: a.last_name ?? null, phone: a.phone ?? null });

/**
 * `certificate issuer admin add|list|delete`: an issuer's organization administrators, edited one email at a time as
 * az does (read the issuer, change the list, update the issuer with the organization id kept).
 */
function registerIssuerAdminCommands(issuer: Command, issuerCommand: (parent: Command, command: string, description: string) => Command) {
  const admin = group(issuer, 'admin', 'Manage the administrators of a certificate issuer');
  const issuerPath = (opts: AdminOptions) => `/certificates/issuers/${encodeURIComponent(opts.issuerName)}`;
  const admins = async (opts: AdminOptions, env: ActionEnv) => {
    const vault = vaultTarget(opts, env);
    const current = await vault<WireIssuer>('GET', issuerPath(opts));
    const save = (list: WireAdmin[]) =>
      vault<WireIssuer>('PATCH', issuerPath(opts), { body: { org_details: { id: current.org_details?.id, admin_details: list } } });
    return { list: current.org_details?.admin_details ?? [], save };
  };
  const sameEmail = (a: WireAdmin, email: string) => a.email?.toLowerCase() === email.toLowerCase();

  issuerCommand(admin, 'add', 'Add an administrator to a certificate issuer')
    .requiredOption('--email <email>', 'the administrator\'s email address')
    .option('--first-name <name>', 'the administrator\'s first name')
    .option('--last-name <name>', 'the administrator\'s last name')
    .option('--phone <phone>', 'the administrator\'s phone number')
    .action(action(async (opts: AdminOptions, env) => {
      const { list, save } = await admins(opts, env);
      if (list.some((a) => sameEmail(a, opts.email))) throw new CliError(`admin '${opts.email}' already exists`);
      const added: WireAdmin = { email: opts.email, first_name: opts.firstName, last_name: opts.lastName, phone: opts.phone };
      await save([...list, added]);
      return adminOutput(added);
    }));

  issuerCommand(admin, 'list', 'List the administrators of a certificate issuer')
    .action(action(async (opts: AdminOptions, env) => (await admins(opts, env)).list.map(adminOutput)));

  issuerCommand(admin, 'delete', 'Remove an administrator from a certificate issuer')
    .requiredOption('--email <email>', 'the administrator\'s email address')
    .action(action(async (opts: AdminOptions, env) => {
      const { list, save } = await admins(opts, env);
      const rest = list.filter((a) => !sameEmail(a, opts.email));
      if (rest.length === list.length) throw new CliError(`admin '${opts.email}' not found`, 3);
      await save(rest);
      return undefined;
    }));
}

interface WireContacts { id?: string; contacts?: { email?: string; name?: string; phone?: string }[] }
/** az's Contacts dict. */
const contactsOutput = (c: WireContacts) => ({
  contactList: (c.contacts ?? []).map((x) => ({ emailAddress: x.email ?? null, name: x.name ?? null, phone: x.phone ?? null })),
  id: c.id ?? null,
});

/** `certificate contact add|list|delete`: the vault's certificate contacts, edited one email at a time as az does. */
function registerContactCommands(certificate: Command) {
  const contact = group(certificate, 'contact', 'Manage the vault\'s certificate contacts');
  /** The current contacts; a vault that has none answers 404, which here means an empty list. */
  const currentContacts = async (vault: ReturnType<typeof vaultTarget>) => {
    try {
      return (await vault<WireContacts>('GET', '/certificates/contacts')).contacts ?? [];
    } catch (err) {
      if (err instanceof CliError && err.code === 'ContactsNotFound') return [];
      throw err;
    }
  };

  withVault(contact.command('add'))
    .description('Add a contact for certificate notifications')
    .requiredOption('--email <email>', 'the contact\'s email address')
    .option('--name <name>', 'the contact\'s name')
    .option('--phone <phone>', 'the contact\'s phone number')
    .action(action(async (opts: { vaultName?: string; id?: string; email: string; name?: string; phone?: string }, env) => {
      const vault = vaultTarget(opts, env);
      const others = (await currentContacts(vault)).filter((c) => c.email !== opts.email);
      const contacts = [...others, { email: opts.email, name: opts.name, phone: opts.phone }];
      return contactsOutput(await vault<WireContacts>('PUT', '/certificates/contacts', { body: { contacts } }));
    }));

  withVault(contact.command('list'))
    .description('List the vault\'s certificate contacts')
    .action(action(async (opts: { vaultName?: string; id?: string }, env) =>
      contactsOutput(await vaultTarget(opts, env)<WireContacts>('GET', '/certificates/contacts'))));

  withVault(contact.command('delete'))
    .description('Remove a contact')
    .requiredOption('--email <email>', 'the contact\'s email address')
    .action(action(async (opts: { vaultName?: string; id?: string; email: string }, env) => {
      const vault = vaultTarget(opts, env);
      const current = await currentContacts(vault);
      const contacts = current.filter((c) => c.email !== opts.email);
      if (contacts.length === current.length) throw new CliError(`No contact with email '${opts.email}'`, 3);
      if (contacts.length === 0) return contactsOutput(await vault<WireContacts>('DELETE', '/certificates/contacts'));
      return contactsOutput(await vault<WireContacts>('PUT', '/certificates/contacts', { body: { contacts } }));
    }));
}

/** `certificate pending show|merge|delete`: the issuance operation of a certificate. */
function registerPendingCommands(certificate: Command) {
  const pending = group(certificate, 'pending', 'Manage a certificate\'s pending issuance');
  const pendingCommand = (command: string, description: string) =>
    withTarget(pending.command(command), 'the certificate identifier: https://{vault}/certificates/{name}').description(description);

  pendingCommand('show', 'Get the pending issuance operation (its CSR, status)')
    .action(action(async (opts: TargetOptions, env) => {
      const { vault, name } = certificateTarget(opts, env);
      return operationOutput(await vault<WireOperation>('GET', `/certificates/${name}/pending`));
    }));

  pendingCommand('delete', 'Delete the pending issuance operation')
    .action(action(async (opts: TargetOptions, env) => {
      const { vault, name } = certificateTarget(opts, env);
      return operationOutput(await vault<WireOperation>('DELETE', `/certificates/${name}/pending`));
    }));

  withCreateAttributes(pendingCommand('merge', 'Merge the externally signed certificate (and its chain) with the pending key'))
    .requiredOption('-f, --file <path>', 'PEM file with the signed certificate first, then its chain')
    .action(action(async (opts: TargetOptions & AttributeOptions & { file: string }, env) => {
      const x5c = pemBlocks(readFile(opts.file).toString('utf8'), 'CERTIFICATE').map((der) => der.toString('base64'));
      if (x5c.length === 0) throw new CliError(`No PEM certificate in '${opts.file}'`);
      const { vault, name } = certificateTarget(opts, env);
      return certificateBundle(await vault<WireCertificate>('POST', `/certificates/${name}/pending/merge`, { body: { x5c, ...createAttributes(opts) } }));
    }));
}
