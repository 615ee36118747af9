import fs from 'node:fs';
import { Option, type Command } from 'commander';
import { action, boolOption, group, parseTags, type ActionEnv } from './command.js';
import { CliError } from './errors.js';
import { deletedFields, objectAttributes, objectTarget, readFile, registerLifecycleCommands, registerListCommand, registerListVersionsCommand, registerShowCommand, validityAttributes, withObjectTarget, type TargetOptions, type WireAttributes, type WireDeleted } from './keyvault-objects.js';
import { subresourceName } from './output.js';

/** The wire shapes of the secrets data plane (the parts the CLI reads). */
interface WireSecret extends WireDeleted {
  id?: string; value?: string; contentType?: string; attributes?: WireAttributes; tags?: Record<string, string>;
  kid?: string; managed?: boolean;
}

/**
 * az 2.45 prints secrets as the SDK models it converts to camelCase dicts: every field present (null when
 * absent), times as ISO strings, plus `name` taken from the id.
 */
function secretItem(s: WireSecret) {
  return {
    attributes: objectAttributes(s.attributes),
    contentType: s.contentType ?? null,
    id: s.id ?? null,
    managed: s.managed ?? null,
    name: subresourceName(s.id),
    tags: s.tags ?? null,
  };
}
const secretBundle = (s: WireSecret) => ({ ...secretItem(s), kid: s.kid ?? null, value: s.value ?? null });
const deletedSecretItem = (s: WireSecret) => ({ ...secretItem(s), ...deletedFields(s) });
const deletedSecretBundle = (s: WireSecret) => ({ ...secretBundle(s), ...deletedFields(s) });

const secretTarget = (opts: TargetOptions, env: ActionEnv, collection: 'secrets' | 'deletedsecrets' = 'secrets') =>
  objectTarget(opts, env, collection);
const withTarget = (cmd: Command, idHelp: string | undefined, opts: { version?: boolean } = {}) => withObjectTarget(cmd, 'secret', idHelp, opts);
const withAttributes = (cmd: Command) => cmd
  .option('--content-type <type>', 'type of the secret value, such as a password')
  .option('--expires <datetime>', 'expiration UTC datetime (ISO 8601, e.g. 2030-01-01T00:00:00Z)')
  .option('--not-before <datetime>', 'key not usable before the provided UTC datetime (ISO 8601)')
  .option('--tags [tags...]', 'space-separated tags: key[=value] [key[=value] ...]; "" clears');

interface AttributeOptions { contentType?: string; expires?: string; notBefore?: string; tags?: string[] }

function attributeBody(opts: AttributeOptions, enabled: boolean | undefined) {
  const attributes = {
    enabled,
    ...validityAttributes(opts),
  };
  return { contentType: opts.contentType, tags: parseTags(opts.tags), attributes };
}

const FILE_ENCODINGS = ['ascii', 'base64', 'hex', 'utf-16be', 'utf-16le', 'utf-8'] as const;
type FileEncoding = (typeof FILE_ENCODINGS)[number];

/** az reads text encodings in Python's text mode (universal newlines) and binary ones as base64/hex of the bytes. */
function readSecretFile(file: string, encoding: FileEncoding): string {
  const bytes = readFile(file);
  const text = (s: string) => s.replace(/\r\n?/g, '\n');
  switch (encoding) {
    case 'base64': return bytes.toString('base64');
    case 'hex': return bytes.toString('hex');
    case 'ascii': return text(bytes.toString('ascii'));
    case 'utf-16le': return text(bytes.toString('utf16le'));
    case 'utf-16be': return text(Buffer.from(bytes).swap16().toString('utf16le'));
    case 'utf-8': return text(bytes.toString('utf8'));
  }
}

/** The inverse of readSecretFile: the bytes a value read with `encoding` came from. */
function secretFileBytes(value: string, encoding: FileEncoding): Buffer {
  switch (encoding) {
    case 'base64': return Buffer.from(value, 'base64');
    case 'hex': return Buffer.from(value, 'hex');
    case 'ascii': return Buffer.from(value, 'ascii');
    case 'utf-16le': return Buffer.from(value, 'utf16le');
    case 'utf-16be': return Buffer.from(value, 'utf16le').swap16();
    case 'utf-8': return Buffer.from(value, 'utf8');
  }
}

/** `coffer keyvault secret …`, flag for flag like `az keyvault secret …` (az 2.45). */
export function registerKeyVaultSecretCommands(program: Command) {
  const secret = group(group(program, 'keyvault', 'Manage vaults and their secrets'), 'secret', 'Manage secrets');

  withAttributes(withTarget(secret.command('set'), undefined))
    .description('Create a secret, or a new version of it')
    .option('--value <value>', 'value of the secret')
    .option('-f, --file <path>', 'a file whose content becomes the value')
    .addOption(new Option('-e, --encoding <encoding>', 'how to read --file').choices(FILE_ENCODINGS).default('utf-8'))
    .option('--description <text>', 'description of the secret contents (stored as its content type)')
    .addOption(boolOption('--disabled [bool]', 'create the secret disabled'))
    .action(action(async (opts: TargetOptions & AttributeOptions & {
      value?: string; file?: string; encoding: FileEncoding; description?: string; disabled?: boolean;
    }, env) => {
      if ((opts.value !== undefined) === (opts.file !== undefined)) throw new CliError('incorrect usage: [Required] --value VALUE | --file PATH', 2);
      const value = opts.file !== undefined ? readSecretFile(opts.file, opts.encoding) : opts.value!;
      const { vault, name } = secretTarget(opts, env);
      const body = attributeBody({ ...opts, contentType: opts.contentType ?? opts.description }, !opts.disabled);
      // az records how the value was read (`file-encoding`) unless the caller set that tag.
      const tags = { ...body.tags, 'file-encoding': body.tags?.['file-encoding'] ?? opts.encoding };
      return secretBundle(await vault<WireSecret>('PUT', `/secrets/${name}`, { body: { ...body, value, tags } }));
    }));

  registerShowCommand(secret, { collection: 'secrets', noun: 'secret', bundle: secretBundle, description: 'Get a secret (its current version unless --version)' });

  withTarget(secret.command('download'), 'the secret identifier: https://{vault}/secrets/{name}[/{version}]', { version: true })
    .description('Write a secret\'s value to a new file')
    .requiredOption('-f, --file <path>', 'the file to create')
    .addOption(new Option('-e, --encoding <encoding>', 'how to decode the value (default: the secret\'s file-encoding tag, else utf-8)').choices(FILE_ENCODINGS))
    .action(action(async (opts: TargetOptions & { file: string; encoding?: FileEncoding }, env) => {
      if (fs.existsSync(opts.file)) throw new CliError(`File or directory named '${opts.file}' already exists.`);
      const { vault, name, version } = secretTarget(opts, env);
      const secret = await vault<WireSecret>('GET', `/secrets/${name}/${version ?? ''}`);
      const tagged = secret.tags?.['file-encoding'] as FileEncoding | undefined;
      const encoding = opts.encoding ?? (tagged && FILE_ENCODINGS.includes(tagged) ? tagged : 'utf-8');
      fs.writeFileSync(opts.file, secretFileBytes(secret.value ?? '', encoding), { mode: 0o600, flag: 'wx' });
      return undefined;
    }));

  registerListCommand(secret, { collection: 'secrets', item: secretItem, description: 'List secrets (without their values)' });

  registerListVersionsCommand(secret, { collection: 'secrets', noun: 'secret', item: secretItem });

  withAttributes(withTarget(secret.command('set-attributes'), 'the secret identifier: https://{vault}/secrets/{name}[/{version}]', { version: true }))
    .description('Update a secret\'s attributes, content type or tags')
    .addOption(boolOption('--enabled [bool]', 'enable or disable the secret'))
    .action(action(async (opts: TargetOptions & AttributeOptions & { enabled?: boolean }, env) => {
      const { vault, name, version } = secretTarget(opts, env);
      return secretBundle(await vault<WireSecret>('PATCH', `/secrets/${name}/${version ?? ''}`, { body: attributeBody(opts, opts.enabled) }));
    }));

  registerLifecycleCommands(secret, { collection: 'secrets', noun: 'secret', bundle: secretBundle, deletedBundle: deletedSecretBundle, deletedItem: deletedSecretItem });

  return secret;
}
