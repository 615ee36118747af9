import crypto from 'node:crypto';
import fs from 'node:fs';
import { Option, type Command } from 'commander';
import { action, boolOption, group, parsePositiveInt, parseTags, type ActionEnv } from './command.js';
import { CliError, usageError } from './errors.js';
import {
  deletedFields, jsonValue, objectTarget, readFile, registerLifecycleCommands, registerListCommand, registerListVersionsCommand, registerShowCommand, validityAttributes, vaultTarget, withDownloadFile, withObjectTarget, withVault, type TargetOptions, type WireDeleted,
} from './keyvault-objects.js';
import { isoTime, subresourceName } from './output.js';

/** The wire shapes of the keys data plane (the parts the CLI reads). */
interface WireKeyAttributes {
  enabled?: boolean; nbf?: number; exp?: number; created?: number; updated?: number; recoveryLevel?: string;
  recoverableDays?: number; exportable?: boolean;
}
interface WireJwk {
  kid?: string; kty?: string; key_ops?: string[]; n?: string; e?: string; crv?: string; x?: string; y?: string;
}
interface WireReleasePolicy { contentType?: string; data?: string; immutable?: boolean }
interface WireKey extends WireDeleted {
  key?: WireJwk; kid?: string; attributes?: WireKeyAttributes; tags?: Record<string, string>; managed?: boolean;
  release_policy?: WireReleasePolicy;
}
interface WireRotationPolicy {
  id?: string;
  lifetimeActions?: { trigger?: { timeAfterCreate?: string; timeBeforeExpiry?: string }; action?: { type?: string } }[];
  attributes?: { expiryTime?: string; created?: number; updated?: number };
}

const KEY_TYPES = ['RSA', 'RSA-HSM', 'EC', 'EC-HSM'] as const;
const CURVES = ['P-256', 'P-256K', 'P-384', 'P-521'] as const;
const KEY_OPS = ['encrypt', 'decrypt', 'sign', 'verify', 'wrapKey', 'unwrapKey', 'import', 'export'] as const;
const ENCRYPTION_ALGORITHMS = ['RSA-OAEP', 'RSA-OAEP-256', 'RSA1_5'] as const;
const SIGNATURE_ALGORITHMS = ['PS256', 'PS384', 'PS512', 'RS256', 'RS384', 'RS512', 'ES256', 'ES256K', 'ES384', 'ES512'] as const;

/**
 * az 2.45 prints keys as the SDK models it converts to camelCase dicts: every field present (null when absent),
 * times as ISO strings. JWK byte fields stay the wire's base64url strings; a key never carries private components.
 */
function keyAttributes(a: WireKeyAttributes = {}) {
  return {
    created: isoTime(a.created),
    enabled: a.enabled ?? null,
    expires: isoTime(a.exp),
    exportable: a.exportable ?? null,
    notBefore: isoTime(a.nbf),
    recoverableDays: a.recoverableDays ?? null,
    recoveryLevel: a.recoveryLevel ?? null,
    updated: isoTime(a.updated),
  };
}
const keyItem = (k: WireKey) => ({
  attributes: keyAttributes(k.attributes), kid: k.kid ?? null, managed: k.managed ?? null, name: subresourceName(k.kid), tags: k.tags ?? null,
});
function keyBundle(k: WireKey) {
  const jwk = k.key ?? {};
  return {
    attributes: keyAttributes(k.attributes),
    key: {
      crv: jwk.crv ?? null, e: jwk.e ?? null, keyOps: jwk.key_ops ?? null, kid: jwk.kid ?? null, kty: jwk.kty ?? null,
      n: jwk.n ?? null, x: jwk.x ?? null, y: jwk.y ?? null,
    },
    managed: k.managed ?? null,
    releasePolicy: k.release_policy
      ? { contentType: k.release_policy.contentType ?? null, encodedPolicy: k.release_policy.data ?? null, immutable: k.release_policy.immutable ?? null }
      : null,
    tags: k.tags ?? null,
  };
}
const deletedKeyItem = (k: WireKey) => ({ ...keyItem(k), ...deletedFields(k) });
const deletedKeyBundle = (k: WireKey) => ({ ...keyBundle(k), ...deletedFields(k) });

/** az's KeyRotationPolicy dict: actions flattened, the policy's times as ISO strings. */
const rotationPolicyOutput = (p: WireRotationPolicy) => ({
  createdOn: isoTime(p.attributes?.created),
  expiresIn: p.attributes?.expiryTime ?? null,
  id: p.id ?? null,
  lifetimeActions: (p.lifetimeActions ?? []).map((a) => ({
    action: a.action?.type ?? null, timeAfterCreate: a.trigger?.timeAfterCreate ?? null, timeBeforeExpiry: a.trigger?.timeBeforeExpiry ?? null,
  })),
  updatedOn: isoTime(p.attributes?.updated),
});

const keyTarget = (opts: TargetOptions, env: ActionEnv, collection: 'keys' | 'deletedkeys' = 'keys') => objectTarget(opts, env, collection);
const withTarget = (cmd: Command, idHelp: string | undefined, opts: { version?: boolean } = {}) => withObjectTarget(cmd, 'key', idHelp, opts);
const KEY_ID_HELP = 'the key identifier: https://{vault}/keys/{name}[/{version}]';

interface AttributeOptions { expires?: string; notBefore?: string; tags?: string[]; ops?: string[]; exportable?: boolean; policy?: string; immutable?: boolean }

const withAttributes = (cmd: Command) => cmd
  .option('--expires <datetime>', 'expiration UTC datetime (ISO 8601, e.g. 2030-01-01T00:00:00Z)')
  .option('--not-before <datetime>', 'key not usable before the provided UTC datetime (ISO 8601)')
  .addOption(new Option('--ops <ops...>', 'space-separated permitted JSON web key operations').choices(KEY_OPS))
  .option('--tags [tags...]', 'space-separated tags: key[=value] [key[=value] ...]; "" clears')
  .option('--policy <policy>', 'the key release policy: JSON, @file or the path of a file with it (for --exportable keys)')
  .addOption(boolOption('--immutable [bool]', 'make the release policy immutable (it can then never be changed)'));

/** az's `--policy`: the release policy JSON, inline or in a file; sent base64url-encoded as Key Vault expects. */
function releasePolicy(opts: AttributeOptions) {
  if (opts.policy === undefined) {
    if (opts.immutable !== undefined) throw usageError('--immutable needs --policy');
    return undefined;
  }
  const source = !opts.policy.trimStart().startsWith('{') && !opts.policy.startsWith('@') && fs.existsSync(opts.policy) ? `@${opts.policy}` : opts.policy;
  const policy = jsonValue(source, '--policy');
  return { contentType: 'application/json; charset=utf-8', data: Buffer.from(JSON.stringify(policy)).toString('base64url'), immutable: opts.immutable };
}

function attributeBody(opts: AttributeOptions, enabled: boolean | undefined) {
  const attributes = {
    enabled,
    ...validityAttributes(opts),
    exportable: opts.exportable,
  };
  return { key_ops: opts.ops, tags: parseTags(opts.tags), attributes, release_policy: releasePolicy(opts) };
}

/** `--protection hsm` turns RSA/EC into RSA-HSM/EC-HSM, as az does. */
function keyType(kty: string, protection: string | undefined) {
  const base = kty.replace(/-HSM$/, '');
  return protection === 'hsm' || kty.endsWith('-HSM') ? `${base}-HSM` : base;
}

/** Key Vault names the secp256k1 curve P-256K; node:crypto's JWK calls it secp256k1. */
const toNodeCurve = (crv: string) => (crv === 'P-256K' ? 'secp256k1' : crv);
const fromNodeCurve = (crv: string) => (crv === 'secp256k1' ? 'P-256K' : crv);

/** A PEM private key as the JWK Key Vault imports (private components included: they leave only over TLS). */
function pemToJwk(pem: Buffer | string, source: string, password: string | undefined) {
  let key: crypto.KeyObject;
  try {
    key = crypto.createPrivateKey({ key: pem, format: 'pem', passphrase: password });
  } catch {
    throw new CliError(`Cannot read a PEM private key from ${source} (wrong --pem-password, or not a PEM private key)`);
  }
  const jwk = key.export({ format: 'jwk' });
  if (jwk.kty !== 'RSA' && jwk.kty !== 'EC') throw new CliError(`Unsupported key type in ${source}: only RSA and EC keys can be imported`);
  return { ...jwk, ...(jwk.crv ? { crv: fromNodeCurve(jwk.crv) } : {}) };
}

/** The public key of a Key Vault JWK as node:crypto sees it. */
function publicKeyOf(jwk: WireJwk): crypto.KeyObject {
  const kty = (jwk.kty ?? '').replace(/-HSM$/, '');
  if (kty === 'RSA') return crypto.createPublicKey({ key: { kty, n: jwk.n!, e: jwk.e! }, format: 'jwk' });
  if (kty === 'EC') return crypto.createPublicKey({ key: { kty, crv: toNodeCurve(jwk.crv!), x: jwk.x!, y: jwk.y! }, format: 'jwk' });
  throw new CliError(`Cannot download a key of type '${jwk.kty}'`);
}

/** az's `--data-type`: the value is base64 bytes, or text taken as its UTF-8 bytes. */
const DATA_TYPES = ['base64', 'plaintext'] as const;
type DataType = (typeof DATA_TYPES)[number];

function base64Bytes(value: string, flag: string): Buffer {
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(value)) throw new CliError(`argument ${flag}: the value is not base64`, 2);
  return Buffer.from(value, 'base64');
}

/** `coffer keyvault key …`, flag for flag like `az keyvault key …` (az 2.45). */
export function registerKeyVaultKeyCommands(program: Command) {
  const key = group(group(program, 'keyvault', 'Manage vaults and their secrets'), 'key', 'Manage keys');

  withAttributes(withTarget(key.command('create'), undefined))
    .description('Create a key, or a new version of it')
    .addOption(new Option('--kty <kty>', 'the type of key to create (default: EC with --curve, else RSA)').choices(KEY_TYPES))
    .option('--size <bits>', 'RSA key size in bits: 2048, 3072 or 4096', (v) => parsePositiveInt(v, '--size'))
    .addOption(new Option('--curve <curve>', 'elliptic curve name').choices(CURVES))
    .addOption(new Option('--protection <protection>', 'where the key is protected').choices(['software', 'hsm']))
    .addOption(boolOption('--exportable [bool]', 'whether the private key can be exported (needs a release policy)'))
    .addOption(boolOption('--disabled [bool]', 'create the key disabled'))
    .action(action(async (opts: TargetOptions & AttributeOptions & {
      kty?: string; size?: number; curve?: string; protection?: string; disabled?: boolean;
    }, env) => {
      const { vault, name } = keyTarget(opts, env);
      const kty = keyType(opts.kty ?? (opts.curve ? 'EC' : 'RSA'), opts.protection);
      const body = { kty, key_size: opts.size, crv: opts.curve, ...attributeBody(opts, !opts.disabled) };
      return keyBundle(await vault<WireKey>('POST', `/keys/${name}/create`, { body }));
    }));

  withAttributes(withTarget(key.command('import'), undefined))
    .description('Import a private key (PEM) into the vault')
    .option('--pem-file <path>', 'PEM file containing the private key to import')
    .option('--pem-password <password>', 'password of the PEM file, if it is encrypted')
    .option('--pem-string <pem>', 'the PEM private key itself')
    .addOption(new Option('--protection <protection>', 'where the key is protected').choices(['software', 'hsm']))
    .addOption(boolOption('--exportable [bool]', 'whether the private key can be exported (needs a release policy)'))
    .addOption(boolOption('--disabled [bool]', 'import the key disabled'))
    .action(action(async (opts: TargetOptions & AttributeOptions & {
      pemFile?: string; pemPassword?: string; pemString?: string; protection?: string; disabled?: boolean;
    }, env) => {
      if ((opts.pemFile !== undefined) === (opts.pemString !== undefined)) throw usageError('--pem-file PATH | --pem-string PEM');
      const jwk = opts.pemFile !== undefined
        ? pemToJwk(readFile(opts.pemFile), `'${opts.pemFile}'`, opts.pemPassword)
        : pemToJwk(opts.pemString!, '--pem-string', opts.pemPassword);
      const { vault, name } = keyTarget(opts, env);
      const { key_ops, ...rest } = attributeBody(opts, !opts.disabled);
      const body = { key: { ...jwk, kty: keyType(jwk.kty!, opts.protection), key_ops }, Hsm: opts.protection === 'hsm' || undefined, ...rest };
      return keyBundle(await vault<WireKey>('PUT', `/keys/${name}`, { body }));
    }));

  registerShowCommand(key, { collection: 'keys', noun: 'key', bundle: keyBundle, description: 'Get a key\'s public part and attributes (its current version unless --version)' });

  withDownloadFile(withTarget(key.command('download'), KEY_ID_HELP, { version: true })
    .description('Write a key\'s public key to a new file'), async (opts, env, encoding) => {
    const { vault, name, version } = keyTarget(opts, env);
    const publicKey = publicKeyOf((await vault<WireKey>('GET', `/keys/${name}/${version ?? ''}`)).key ?? {});
    return encoding === 'PEM' ? publicKey.export({ type: 'spki', format: 'pem' }) : publicKey.export({ type: 'spki', format: 'der' });
  });

  registerListCommand(key, { collection: 'keys', item: keyItem, description: 'List keys' });

  registerListVersionsCommand(key, { collection: 'keys', noun: 'key', item: keyItem });

  withAttributes(withTarget(key.command('set-attributes'), KEY_ID_HELP, { version: true }))
    .description('Update a key\'s attributes, permitted operations or tags')
    .addOption(boolOption('--enabled [bool]', 'enable or disable the key'))
    .action(action(async (opts: TargetOptions & AttributeOptions & { enabled?: boolean }, env) => {
      const { vault, name, version } = keyTarget(opts, env);
      return keyBundle(await vault<WireKey>('PATCH', `/keys/${name}/${version ?? ''}`, { body: attributeBody(opts, opts.enabled) }));
    }));

  registerLifecycleCommands(key, { collection: 'keys', noun: 'key', bundle: keyBundle, deletedBundle: deletedKeyBundle, deletedItem: deletedKeyItem });

  withTarget(key.command('rotate'), 'the key identifier: https://{vault}/keys/{name}')
    .description('Rotate a key: create a new version of it with the same parameters')
    .action(action(async (opts: TargetOptions, env) => {
      const { vault, name } = keyTarget(opts, env);
      return keyBundle(await vault<WireKey>('POST', `/keys/${name}/rotate`));
    }));

  withVault(key.command('random'))
    .description('Get random bytes from the vault')
    .requiredOption('--count <n>', 'the number of bytes (1 to 128)', (v) => parsePositiveInt(v, '--count'))
    .action(action(async (opts: { vaultName?: string; id?: string; count: number }, env) => {
      const { value } = await vaultTarget(opts, env)<{ value: string }>('POST', '/rng', { body: { count: opts.count } });
      return { value: Buffer.from(value, 'base64url').toString('base64') };
    }));

  registerRotationPolicyCommands(key);
  registerOperationCommands(key);
  return key;
}

/**
 * az accepts the policy in the REST shape or in the SDK's (snake or camel case, flattened actions); Coffer takes
 * the REST shape, so the SDK forms are converted.
 */
function rotationPolicyBody(input: unknown) {
  if (!input || typeof input !== 'object') throw new CliError('argument --value: the rotation policy must be a JSON object', 2);
  const p = input as Record<string, any>;
  const actions = (p.lifetimeActions ?? p.lifetime_actions ?? []) as Record<string, any>[];
  if (!Array.isArray(actions)) throw new CliError('argument --value: lifetimeActions must be an array', 2);
  const expiryTime = p.attributes?.expiryTime ?? p.attributes?.expiry_time ?? p.expiresIn ?? p.expires_in;
  return {
    lifetimeActions: actions.map((a) => ({
      trigger: a.trigger ?? {
        timeAfterCreate: a.timeAfterCreate ?? a.time_after_create ?? undefined,
        timeBeforeExpiry: a.timeBeforeExpiry ?? a.time_before_expiry ?? undefined,
      },
      action: typeof a.action === 'string' ? { type: a.action } : a.action,
    })),
    attributes: expiryTime !== undefined ? { expiryTime } : undefined,
  };
}

function registerRotationPolicyCommands(key: Command) {
  const policy = group(key, 'rotation-policy', 'Manage a key\'s rotation policy');

  withTarget(policy.command('show'), 'the key identifier: https://{vault}/keys/{name}')
    .description('Get a key\'s rotation policy')
    .action(action(async (opts: TargetOptions, env) => {
      const { vault, name } = keyTarget(opts, env);
      return rotationPolicyOutput(await vault<WireRotationPolicy>('GET', `/keys/${name}/rotationpolicy`));
    }));

  withTarget(policy.command('update'), 'the key identifier: https://{vault}/keys/{name}')
    .description('Set a key\'s rotation policy')
    .requiredOption('--value <policy>', 'the rotation policy: JSON, or @file with it')
    .action(action(async (opts: TargetOptions & { value: string }, env) => {
      const body = rotationPolicyBody(jsonValue(opts.value, '--value'));
      const { vault, name } = keyTarget(opts, env);
      return rotationPolicyOutput(await vault<WireRotationPolicy>('PUT', `/keys/${name}/rotationpolicy`, { body }));
    }));
}

/** The data-plane operations az exposes: encrypt/decrypt (base64 or plaintext values) and sign/verify of digests. */
function registerOperationCommands(key: Command) {
  const operation = (command: string, description: string, algorithms: readonly string[]) =>
    withTarget(key.command(command), KEY_ID_HELP, { version: true })
      .description(description)
      .addOption(new Option('-a, --algorithm <algorithm>', 'the algorithm').choices(algorithms).makeOptionMandatory());
  interface OperationOptions extends TargetOptions { algorithm: string }
  /** POST /keys/{name}[/{version}]/{op} with the algorithm and the given base64url fields. */
  const operate = <R>(opts: OperationOptions, env: ActionEnv, op: string, fields: Record<string, Buffer>) => {
    const { vault, name, version } = keyTarget(opts, env);
    const body = { alg: opts.algorithm, ...Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, v.toString('base64url')])) };
    return vault<R>('POST', `/keys/${name}/${version ? `${version}/` : ''}${op}`, { body });
  };
  type OperationResult = { kid: string; value: string };

  operation('encrypt', 'Encrypt a value with a key', ENCRYPTION_ALGORITHMS)
    .requiredOption('--value <value>', 'the value to encrypt')
    .addOption(new Option('--data-type <type>', 'how to read --value').choices(DATA_TYPES).default('base64'))
    .action(action(async (opts: OperationOptions & { value: string; dataType: DataType }, env) => {
      const bytes = opts.dataType === 'plaintext' ? Buffer.from(opts.value, 'utf8') : base64Bytes(opts.value, '--value');
      const result = await operate<OperationResult>(opts, env, 'encrypt', { value: bytes });
      return { algorithm: opts.algorithm, kid: result.kid, result: Buffer.from(result.value, 'base64url').toString('base64') };
    }));

  operation('decrypt', 'Decrypt a value with a key', ENCRYPTION_ALGORITHMS)
    .requiredOption('--value <value>', 'the ciphertext (base64)')
    .addOption(new Option('--data-type <type>', 'how to print the plaintext').choices(DATA_TYPES).default('base64'))
    .action(action(async (opts: OperationOptions & { value: string; dataType: DataType }, env) => {
      const result = await operate<OperationResult>(opts, env, 'decrypt', { value: base64Bytes(opts.value, '--value') });
      const plaintext = Buffer.from(result.value, 'base64url');
      return { algorithm: opts.algorithm, kid: result.kid, result: opts.dataType === 'plaintext' ? plaintext.toString('utf8') : plaintext.toString('base64') };
    }));

  operation('sign', 'Sign a digest with a key', SIGNATURE_ALGORITHMS)
    .requiredOption('--digest <digest>', 'the digest to sign (base64)')
    .action(action(async (opts: OperationOptions & { digest: string }, env) => {
      const result = await operate<OperationResult>(opts, env, 'sign', { value: base64Bytes(opts.digest, '--digest') });
      return { algorithm: opts.algorithm, kid: result.kid, signature: Buffer.from(result.value, 'base64url').toString('base64') };
    }));

  operation('verify', 'Verify a signature of a digest with a key', SIGNATURE_ALGORITHMS)
    .requiredOption('--digest <digest>', 'the digest that was signed (base64)')
    .requiredOption('--signature <signature>', 'the signature (base64)')
    .action(action(async (opts: OperationOptions & { digest: string; signature: string }, env) => {
      const result = await operate<{ value: boolean }>(opts, env, 'verify', {
        digest: base64Bytes(opts.digest, '--digest'), value: base64Bytes(opts.signature, '--signature'),
      });
      // The verify response carries no kid: the key the caller named is the one that verified.
      const { name, version } = keyTarget(opts, env);
      const kid = opts.id ?? `${env.context().vaultUrl(opts.vaultName!)}/keys/${name}${version ? `/${version}` : ''}`;
      return { algorithm: opts.algorithm, isValid: result.value, kid };
    }));
}
