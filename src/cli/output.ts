import jmespath from 'jmespath';
import YAML from 'yaml';
import { CliError } from './errors.js';

/** az's output formats (knack's OutputProducer). */
export const OUTPUT_FORMATS = ['json', 'jsonc', 'yaml', 'yamlc', 'tsv', 'table', 'none'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export interface RenderOptions {
  output: OutputFormat;
  query?: string;
  /** Colour jsonc and yamlc only on a terminal, as az does. */
  color?: boolean;
}

/** az's `jmespath_type`: a bad query is a usage error found before the command runs. */
export function parseQuery(query: string): string {
  try {
    // @types/jmespath omits compile(), which jmespath exports: parsing without evaluating.
    (jmespath as unknown as { compile(expression: string): unknown }).compile(query);
  } catch (err) {
    throw new CliError(`argument --query: invalid jmespath_type value: '${query}' (${(err as Error).message})`, 2);
  }
  return query;
}

/**
 * Renders a command result exactly as az does: `--query` (JMESPath) first, then the format. JSON output always sorts
 * keys; tsv and table sort keys unless a query chose their order.
 */
export function render(result: unknown, opts: RenderOptions): string {
  if (result === undefined) return '';
  const queryActive = Boolean(opts.query);
  const data = opts.query ? jmespath.search(result, opts.query) : result;
  switch (opts.output) {
    case 'none': return '';
    case 'json': return formatJson(data);
    case 'jsonc': return opts.color ? colorizeJson(formatJson(data)) : formatJson(data);
    case 'yaml': return formatYaml(data);
    case 'yamlc': return opts.color ? colorizeYaml(formatYaml(data)) : formatYaml(data);
    case 'tsv': return formatTsv(data, !queryActive);
    case 'table': return formatTable(data, !queryActive);
  }
}

function sortKeysDeep(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeysDeep);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.keys(value).sort().map((k) => [k, sortKeysDeep((value as Record<string, unknown>)[k])]));
  }
  return value;
}

/** Python's `json.dumps(indent=2, sort_keys=True, ensure_ascii=False)` plus a newline. JSON null for JMESPath misses. */
export function formatJson(data: unknown): string {
  return JSON.stringify(sortKeysDeep(data ?? null), null, 2) + '\n';
}

function colorizeJson(json: string): string {
  return json.replace(/("(?:[^"\\]|\\.)*")(\s*:)?|\b(true|false|null)\b|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g,
    (match, str: string | undefined, colon: string | undefined, literal: string | undefined) => {
      if (str) return colon ? `\x1b[94m${str}\x1b[39m${colon}` : `\x1b[33m${str}\x1b[39m`;
      if (literal) return `\x1b[36m${literal}\x1b[39m`;
      return `\x1b[34m${match}\x1b[39m`;
    });
}

/** PyYAML's `safe_dump(default_flow_style=False)`, as az uses: sorted keys, block style, lists not indented under their key. */
export function formatYaml(data: unknown): string {
  return YAML.stringify(data ?? null, { sortMapEntries: true, indentSeq: false, lineWidth: 0 });
}

/** Keys in one colour, scalar values in another (az's yamlc highlights with Pygments; this is its gist). */
function colorizeYaml(text: string): string {
  return text.split('\n').map((line) => line.replace(/^(\s*(?:- )?)([^\s:#][^:]*?)(:)(\s|$)(.*)$/, (_, lead: string, key: string, colon: string, space: string, rest: string) =>
    `${lead}\x1b[94m${key}\x1b[39m${colon}${space}${rest ? `\x1b[33m${rest}\x1b[39m` : ''}`)).join('\n');
}

/** Python's `str()` of a JSON value, which is what knack writes into tsv cells and tables. */
function pythonStr(value: unknown): string {
  if (value === null || value === undefined) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  return String(value);
}

const entries = (obj: Record<string, unknown>, sortKeys: boolean) => {
  const keys = Object.keys(obj);
  return (sortKeys ? keys.sort() : keys).map((k) => [k, obj[k]] as const);
};

/** knack's `_TsvOutput`: one row per item, values only, tab-separated; nested lists print their length, dicts nothing. */
export function formatTsv(data: unknown, sortKeys: boolean): string {
  const cell = (v: unknown) => (Array.isArray(v) ? String(v.length) : v && typeof v === 'object' ? '' : pythonStr(v));
  const row = (item: unknown) => {
    if (Array.isArray(item)) return item.map(cell).join('\t');
    if (item && typeof item === 'object') return entries(item as Record<string, unknown>, sortKeys).map(([, v]) => cell(v)).join('\t');
    if (typeof item === 'boolean') return String(item);
    return pythonStr(item);
  };
  return (Array.isArray(data) ? data : [data]).map((item) => row(item) + '\n').join('');
}

const TABLE_SKIP_KEYS = new Set(['id', 'type', 'etag']);

/**
 * knack's `_TableOutput` rendered like `tabulate(tablefmt="simple", disable_numparse=True)`: scalar fields only
 * (no id/type/etag, no nulls), headers with a capitalised first letter, every cell left-aligned, columns at least
 * two wider than their header and separated by two spaces.
 */
export function formatTable(data: unknown, sortKeys: boolean): string {
  const rows = (Array.isArray(data) ? data : [data]).map((item) => {
    const row = new Map<string, string>();
    if (Array.isArray(item)) item.forEach((v, i) => row.set(`Column${i + 1}`, pythonStr(v)));
    else if (item && typeof item === 'object') {
      for (const [k, v] of entries(item as Record<string, unknown>, sortKeys)) {
        if (TABLE_SKIP_KEYS.has(k) || v === null || v === undefined || typeof v === 'object') continue;
        row.set(k ? k[0].toUpperCase() + k.slice(1) : k, pythonStr(v));
      }
    } else row.set('Result', pythonStr(item));
    return row;
  });
  const headers = [...new Set(rows.flatMap((r) => [...r.keys()]))];
  if (!headers.length) {
    if (!rows.length) return '\n';
    throw new CliError('Table output unavailable. Use the --query option to specify an appropriate query. Use --debug for more info.');
  }
  const widths = headers.map((h) => Math.max(h.length + 2, ...rows.map((r) => (r.get(h) ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ');
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map((r) => line(headers.map((h) => r.get(h) ?? '')))].join('\n') + '\n';
}

/** Unix seconds as Python's `datetime.isoformat()` of a UTC datetime, the way az prints Key Vault times. */
export function isoTime(unixSeconds: number | undefined | null): string | null {
  if (unixSeconds === undefined || unixSeconds === null) return null;
  return new Date(unixSeconds * 1000).toISOString().replace(/\.000Z$/, '+00:00').replace(/Z$/, '+00:00');
}

/** The object name in a Key Vault id `https://{vault}/{collection}/{name}[/{version}]` (az's extract_subresource_name). */
export function subresourceName(id: string | undefined | null): string | null {
  return id ? id.split('/')[4] ?? null : null;
}
