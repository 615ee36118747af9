import fs from 'node:fs';
import { Option, type Command } from 'commander';
import { action, boolOption, parseDate, parsePositiveInt, type ActionEnv } from './command.js';
import { CliError, usageError } from './errors.js';
import { listAll } from './http.js';
import { isoTime } from './output.js';

/*
 * What every vault-object family of the CLI (secrets, keys) shares: how a command names its target
 * (`--id` or `--vault-name`/`--name`), the common options, files, and the deleted-object fields az prints.
 */

export interface TargetOptions { vaultName?: string; name?: string; id?: string; version?: string }

/** `--id https://{vault}/{collection}/{name}[/{version}]` or `--vault-name V --name N [--version X]`. */
export function objectTarget(opts: TargetOptions, env: ActionEnv, collection: string) {
  const context = env.context();
  if (opts.id) {
    if (opts.vaultName || opts.name) throw usageError('--id ID | --vault-name VAULT --name NAME');
    let url: URL;
    try {
      url = new URL(opts.id);
    } catch {
      throw usageError(`--id must be a ${collection} identifier URL`);
    }
    const [kind, name, version] = url.pathname.split('/').filter(Boolean);
    if (kind !== collection || !name) throw usageError(`--id must look like https://{vault}/${collection}/{name}${collection.startsWith('deleted') ? '' : '[/{version}]'}`);
    return { vault: context.vault(url.origin), name: encodeURIComponent(name), version: opts.version ?? version };
  }
  if (!opts.vaultName || !opts.name) throw usageError('--id ID | --vault-name VAULT --name NAME');
  return { vault: context.vault(context.vaultUrl(opts.vaultName)), name: encodeURIComponent(opts.name), version: opts.version };
}

/** `--id https://{vault}` (a vault URL) or `--vault-name V`, for commands on the whole vault. */
export function vaultTarget(opts: { vaultName?: string; id?: string }, env: ActionEnv) {
  const context = env.context();
  if (opts.id) return context.vault(new URL(opts.id).origin);
  if (!opts.vaultName) throw usageError('--id VAULT_URL | --vault-name VAULT');
  return context.vault(context.vaultUrl(opts.vaultName));
}

/** `--vault-name`, `--name` (of a `noun`), optionally `--id` and `--version`. */
export const withObjectTarget = (cmd: Command, noun: string, idHelp: string | undefined, opts: { version?: boolean } = {}) => {
  cmd.option('--vault-name <name>', 'name of the vault').option('-n, --name <name>', `name of the ${noun}`);
  if (idHelp) cmd.option('--id <id>', idHelp);
  if (opts.version) cmd.option('-v, --version <version>', `the ${noun} version (default: the latest)`);
  return cmd;
};
export const withVault = (cmd: Command) => cmd.option('--vault-name <name>', 'name of the vault').option('--id <url>', 'the vault URL');
export const withMaxResults = (cmd: Command) => cmd.option('--maxresults <n>', 'maximum number of items to return', (v) => parsePositiveInt(v, '--maxresults'));

/** `--expires` and `--not-before` as the wire's `exp`/`nbf` (unix seconds), for any object's attributes. */
export const validityAttributes = (opts: { expires?: string; notBefore?: string }) => ({
  exp: opts.expires !== undefined ? parseDate(opts.expires, '--expires') : undefined,
  nbf: opts.notBefore !== undefined ? parseDate(opts.notBefore, '--not-before') : undefined,
});

/** The fields a deleted object adds on the wire, as az prints them. */
export interface WireDeleted { recoveryId?: string; deletedDate?: number; scheduledPurgeDate?: number }
export const deletedFields = (o: WireDeleted) => ({
  deletedDate: isoTime(o.deletedDate), recoveryId: o.recoveryId ?? null, scheduledPurgeDate: isoTime(o.scheduledPurgeDate),
});

export function readFile(file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new CliError(`Cannot read '${file}': ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

/** `--value @file` / `--policy @file` or inline JSON, as az's policy arguments. */
export function jsonValue(value: string, flag: string): unknown {
  const text = value.startsWith('@') ? readFile(value.slice(1)).toString('utf8') : value;
  try {
    return JSON.parse(text);
  } catch {
    throw new CliError(`argument ${flag}: not valid JSON`, 2);
  }
}

export type FileEncoding = 'PEM' | 'DER';

/** az's `download --file --encoding PEM|DER`: `bytesOf` fetches the object; the file must not exist yet. */
export const withDownloadFile = (cmd: Command, bytesOf: (opts: TargetOptions, env: ActionEnv, encoding: FileEncoding) => Promise<string | Buffer>) => cmd
  .requiredOption('-f, --file <path>', 'the file to create')
  .addOption(new Option('-e, --encoding <encoding>', 'the file\'s encoding').choices(['PEM', 'DER']).default('PEM'))
  .action(action(async (opts: TargetOptions & { file: string; encoding: FileEncoding }, env) => {
    if (fs.existsSync(opts.file)) throw new CliError(`File or directory named '${opts.file}' already exists.`);
    fs.writeFileSync(opts.file, await bytesOf(opts, env, opts.encoding), { flag: 'wx' });
    return undefined;
  }));

/** The attributes every vault object (secret, certificate) has on the wire. */
export interface WireAttributes { enabled?: boolean; nbf?: number; exp?: number; created?: number; updated?: number; recoveryLevel?: string; recoverableDays?: number }

/** az 2.45's attributes dict: every field present (null when absent), times as ISO strings. */
export const objectAttributes = (a: WireAttributes = {}) => ({
  created: isoTime(a.created),
  enabled: a.enabled ?? null,
  expires: isoTime(a.exp),
  notBefore: isoTime(a.nbf),
  recoverableDays: a.recoverableDays ?? null,
  recoveryLevel: a.recoveryLevel ?? null,
  updated: isoTime(a.updated),
});

/** `show`: one object of a collection, its current version unless `--version`. */
export function registerShowCommand<T>(parent: Command, out: { collection: string; noun: string; bundle(o: T): unknown; description: string }) {
  const { collection, noun } = out;
  withObjectTarget(parent.command('show'), noun, `the ${noun} identifier: https://{vault}/${collection}/{name}[/{version}]`, { version: true })
    .description(out.description)
    .action(action(async (opts: TargetOptions, env) => {
      const { vault, name, version } = objectTarget(opts, env, collection);
      return out.bundle(await vault<T>('GET', `/${collection}/${name}/${version ?? ''}`));
    }));
}

/** `list`: a vault's secrets or keys; those a certificate manages only with `--include-managed`, as az does. */
export function registerListCommand<T>(parent: Command, out: { collection: 'secrets' | 'keys'; item(o: T): { managed: boolean | null }; description: string }) {
  const { collection } = out;
  withMaxResults(withVault(parent.command('list')))
    .description(out.description)
    .option('--include-managed', `include ${collection} managed by certificates`)
    .action(action(async (opts: { vaultName?: string; id?: string; maxresults?: number; includeManaged?: boolean }, env) => {
      const items = (await listAll<T>(vaultTarget(opts, env), `/${collection}`, opts.maxresults)).map((o) => out.item(o));
      return opts.includeManaged ? items : items.filter((o) => !o.managed);
    }));
}

/** `list-versions`: every version of one object, as list items. */
export function registerListVersionsCommand<T>(parent: Command, out: { collection: string; noun: string; item(o: T): unknown }) {
  const { collection, noun } = out;
  withMaxResults(withObjectTarget(parent.command('list-versions'), noun, `the ${noun} identifier: https://{vault}/${collection}/{name}`))
    .description(`List the versions of a ${noun}`)
    .action(action(async (opts: TargetOptions & { maxresults?: number }, env) => {
      const { vault, name } = objectTarget(opts, env, collection);
      return (await listAll<T>(vault, `/${collection}/${name}/versions`, opts.maxresults)).map((o) => out.item(o));
    }));
}

/** How a collection's objects print, for the lifecycle commands every collection shares. */
export interface LifecycleOutput<T> {
  collection: 'secrets' | 'keys' | 'certificates';
  noun: string;
  bundle(o: T): unknown;
  deletedBundle(o: T): unknown;
  deletedItem(o: T): unknown;
  /** Certificates: `list-deleted --include-pending` (those deleted while still waiting for their merge). */
  includePending?: boolean;
}

/** `delete`, `list-deleted`, `show-deleted`, `recover`, `purge`, `backup` and `restore`, as az has them for every collection. */
export function registerLifecycleCommands<T>(parent: Command, out: LifecycleOutput<T>) {
  const { collection, noun } = out;
  const deleted = `deleted${collection}`;
  const withTarget = (command: string, idHelp: string) => withObjectTarget(parent.command(command), noun, idHelp);
  const liveId = `the ${noun} identifier: https://{vault}/${collection}/{name}`;

  withTarget('delete', liveId)
    .description(`Delete a ${noun} (soft delete: recoverable until purged or its retention ends)`)
    .action(action(async (opts: TargetOptions, env) => {
      const { vault, name } = objectTarget(opts, env, collection);
      return out.deletedBundle(await vault<T>('DELETE', `/${collection}/${name}`));
    }));

  const listDeleted = withMaxResults(withVault(parent.command('list-deleted'))).description(`List soft-deleted ${collection}`);
  if (out.includePending) listDeleted.addOption(boolOption('--include-pending [bool]', `include ${collection} deleted while their issuance was pending`));
  listDeleted.action(action(async (opts: { vaultName?: string; id?: string; maxresults?: number; includePending?: boolean }, env) => {
    const path = `/${deleted}${opts.includePending !== undefined ? `?includePending=${opts.includePending}` : ''}`;
    return (await listAll<T>(vaultTarget(opts, env), path, opts.maxresults)).map((o) => out.deletedItem(o));
  }));

  const deletedCommand = (command: string, description: string) =>
    withTarget(command, `the recovery id: https://{vault}/${deleted}/{name}`).description(description);

  deletedCommand('show-deleted', `Get a soft-deleted ${noun}`)
    .action(action(async (opts: TargetOptions, env) => {
      const { vault, name } = objectTarget(opts, env, deleted);
      return out.deletedBundle(await vault<T>('GET', `/${deleted}/${name}`));
    }));

  deletedCommand('recover', `Recover a soft-deleted ${noun}`)
    .action(action(async (opts: TargetOptions, env) => {
      const { vault, name } = objectTarget(opts, env, deleted);
      return out.bundle(await vault<T>('POST', `/${deleted}/${name}/recover`));
    }));

  deletedCommand('purge', `Permanently delete a soft-deleted ${noun}`)
    .action(action(async (opts: TargetOptions, env) => {
      const { vault, name } = objectTarget(opts, env, deleted);
      await vault('DELETE', `/${deleted}/${name}`);
      return undefined;
    }));

  withTarget('backup', liveId)
    .description(`Back up every version of a ${noun} to a file (an opaque, encrypted blob)`)
    .requiredOption('-f, --file <path>', 'the file to write the backup to')
    .action(action(async (opts: TargetOptions & { file: string }, env) => {
      const { vault, name } = objectTarget(opts, env, collection);
      const { value } = await vault<{ value: string }>('POST', `/${collection}/${name}/backup`);
      fs.writeFileSync(opts.file, Buffer.from(value, 'base64url'), { mode: 0o600 });
      return undefined;
    }));

  withVault(parent.command('restore'))
    .description(`Restore a ${noun} from a backup file`)
    .requiredOption('-f, --file <path>', 'the backup file')
    .action(action(async (opts: { vaultName?: string; id?: string; file: string }, env) => {
      const value = readFile(opts.file).toString('base64url');
      return out.bundle(await vaultTarget(opts, env)<T>('POST', `/${collection}/restore`, { body: { value } }));
    }));
}
