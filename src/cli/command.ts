import type { EventEmitter } from 'node:events';
import { Command, Option } from 'commander';
import { createCliContext, resolveProfile, type CliContext, type GlobalOptions } from './context.js';
import { CliError } from './errors.js';
import { OUTPUT_FORMATS, parseQuery, render } from './output.js';

/*
 * The shared frame of every az-style command family: global options, command groups, the action wrapper that
 * resolves credentials lazily and renders the result, and az's argument types.
 */
const globalOptions = () => [
  new Option('-o, --output <format>', 'output format').choices(OUTPUT_FORMATS).default('json'),
  new Option('--query <jmespath>', 'JMESPath query string, see http://jmespath.org/').argParser(parseQuery),
  new Option('--data-dir <dir>', 'take credentials from a local Coffer\'s data directory (env COFFER_DATA_DIR; default: the `coffer login` profile, else ./.coffer)'),
  new Option('--only-show-errors', 'only show errors, suppressing warnings'),
  new Option('--debug', 'trace HTTP requests (method, URL, status, request id) on stderr'),
];

/**
 * Gives every leaf command (outside the `except` groups, e.g. `server`, which has its own --data-dir) az's global
 * arguments. They live on the leaves, not the program, so a leaf's own option of the same name is never shadowed.
 * Call after every family has registered.
 */
export function applyGlobalOptions(root: Command, except: string[] = []) {
  const visit = (cmd: Command) => {
    if (cmd.commands.length) return cmd.commands.filter((c) => cmd !== root || !except.includes(c.name())).forEach(visit);
    for (const option of globalOptions()) {
      if (!cmd.options.some((o) => o.long === option.long)) cmd.addOption(option);
    }
  };
  visit(root);
}

/**
 * Commander lets an option that takes a value swallow the next argument whatever it is, so `server start --storage
 * --help` started a server on a SQLite file named `--help`. argparse (az) refuses that: an option's value may not look
 * like an option unless it is attached (`--value=--x`). This applies that rule to every option of every command,
 * checking the raw value as commander reads it (before any parser turns it into, say, a NaN port).
 */
export function refuseOptionLikeValues(root: Command, argv: string[] = process.argv) {
  const attached = new Set(argv.filter((a) => a.startsWith('-') && a.includes('=')));
  const visit = (cmd: Command) => {
    for (const option of cmd.options) {
      // Ahead of commander's own listener, which would otherwise judge the option as a value first (choices, parsers).
      (cmd as unknown as EventEmitter).prependListener(`option:${option.name()}`, (value: unknown) => {
        // With a space in it, it cannot be an option (a PEM's `-----BEGIN …`): argparse takes it as a value too.
        if (typeof value !== 'string' || !/^--\S*$/.test(value)) return;
        if ([option.long, option.short].some((flag) => flag && attached.has(`${flag}=${value}`))) return;
        const flag = option.long ?? option.short;
        throw new CliError(`argument ${flag}: expected one argument (${value} is an option; write ${flag}=${value} if it is the value)`, 2);
      });
    }
    cmd.commands.forEach(visit);
  };
  visit(root);
}

/** The command group `name` under `parent`, created on first use, so families can register in any order. */
export function group(parent: Command, name: string, description: string): Command {
  return parent.commands.find((c) => c.name() === name) ?? parent.command(name).description(description);
}

export interface ActionEnv {
  globals: GlobalOptions;
  /** The command's positional arguments. */
  args: string[];
  /** Credentials and clients, resolved on first use (login and help need none). */
  context(): CliContext;
}

/** Wraps an action: its return value is the command's result, rendered with `--query` and `--output`. */
export function action<O>(run: (opts: O, env: ActionEnv) => Promise<unknown>) {
  // Commander passes (...positional arguments, options, command).
  return async (...params: unknown[]) => {
    const command = params[params.length - 1] as Command;
    const globals = command.optsWithGlobals() as GlobalOptions & O;
    let context: CliContext | undefined;
    const env: ActionEnv = {
      globals,
      args: command.processedArgs as string[],
      context: () => (context ??= createCliContext(resolveProfile(globals), { debug: globals.debug })),
    };
    const result = await run(globals, env);
    process.stdout.write(render(result, { output: globals.output, query: globals.query, color: process.stdout.isTTY }));
  };
}

/** az's three-state flag: `--flag`, `--flag true|false|yes|no|1|0`. */
export function parseBool(value: string | undefined): boolean {
  if (value === undefined) return true;
  const v = value.toLowerCase();
  if (['true', 'yes', '1', 'on'].includes(v)) return true;
  if (['false', 'no', '0', 'off'].includes(v)) return false;
  throw new CliError(`argument value '${value}' is not a valid boolean; use true or false.`, 2);
}

export const boolOption = (flags: string, description: string) => new Option(flags, description).argParser((v: string) => parseBool(v));

/** az's `datetime_type`: ISO 8601, UTC unless a zone is given; returns unix seconds. */
export function parseDate(value: string, flag: string): number {
  const hasZone = /(Z|[+-]\d{2}:?\d{2})$/i.test(value);
  const normalized = hasZone ? value : /^\d{4}-\d{2}-\d{2}$/.test(value) ? `${value}T00:00:00Z` : value.includes('T') ? `${value}Z` : value;
  const ms = Date.parse(normalized);
  if (Number.isNaN(ms)) throw new CliError(`argument ${flag}: invalid datetime value: '${value}' (use ISO 8601, e.g. 2030-01-01T00:00:00Z)`, 2);
  return Math.floor(ms / 1000);
}

/** az's `--tags a=b c=d` (an empty string clears all tags). */
export function parseTags(values: string[] | undefined): Record<string, string> | undefined {
  if (values === undefined) return undefined;
  const tags: Record<string, string> = {};
  for (const pair of values.filter((v) => v !== '')) {
    const eq = pair.indexOf('=');
    tags[eq === -1 ? pair : pair.slice(0, eq)] = eq === -1 ? '' : pair.slice(eq + 1);
  }
  return tags;
}

export function parsePositiveInt(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new CliError(`argument ${flag}: invalid int value: '${value}'`, 2);
  return n;
}
