import type { AuditEvent } from '../audit/audit-log.js';
import { KeyVaultError } from '../http/errors.js';

/**
 * The workspace's query language: a small subset of KQL over the `AzureDiagnostics` table, enough for the questions
 * an audit trail answers — who did what to which object, when, with what result:
 *
 *   AzureDiagnostics
 *   | where OperationName == 'SecretGet' and ResultType != 'Success'     (==, !=, =~, !~, contains, !contains, startswith, has, in (…))
 *   | where TimeGenerated > ago(1h)                                     (<, <=, >, >= against ago(…), datetime(…) or numbers)
 *   | where identity_claim_oid_g == '…' or CallerIPAddress startswith '127.0.0.5'
 *   | project TimeGenerated, OperationName, id_s                       (project, take/limit, sort/order by, count,
 *   | sort by TimeGenerated desc | take 10                              summarize count() by Column)
 *
 * `and` binds tighter than `or`; there are no parentheses. Anything else is a 400 naming what is not supported.
 */

export type Row = Record<string, string | number | boolean | null>;

export const COLUMNS: { name: string; type: 'datetime' | 'string' | 'real' | 'bool' }[] = [
  { name: 'TimeGenerated', type: 'datetime' }, { name: 'ResourceId', type: 'string' }, { name: 'Category', type: 'string' },
  { name: 'OperationName', type: 'string' }, { name: 'OperationVersion', type: 'string' }, { name: 'ResultType', type: 'string' },
  { name: 'ResultSignature', type: 'string' }, { name: 'ResultDescription', type: 'string' }, { name: 'DurationMs', type: 'real' },
  { name: 'CallerIPAddress', type: 'string' }, { name: 'CorrelationId', type: 'string' },
  { name: 'identity_claim_oid_g', type: 'string' }, { name: 'identity_claim_appid_g', type: 'string' }, { name: 'identity_claim_upn_s', type: 'string' },
  { name: 'id_s', type: 'string' }, { name: 'requestUri_s', type: 'string' }, { name: 'httpStatusCode_d', type: 'real' },
  { name: 'clientInfo_s', type: 'string' }, { name: 'isRbacAuthorized_b', type: 'bool' }, { name: 'isAccessPolicyMatch_b', type: 'bool' },
  { name: 'Resource', type: 'string' }, { name: 'ResourceGroup', type: 'string' }, { name: 'SubscriptionId', type: 'string' },
  { name: 'ResourceProvider', type: 'string' }, { name: 'ResourceType', type: 'string' }, { name: 'Type', type: 'string' },
];

/** An AuditEvent as a row of Azure Monitor's AzureDiagnostics table. */
export function toRow(e: AuditEvent): Row {
  const id = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/([^/]+)\/([^/]+)\/([^/]+)/i.exec(e.resourceId);
  const claim = e.identity?.claim;
  return {
    TimeGenerated: e.time, ResourceId: e.resourceId.toUpperCase(), Category: e.category, OperationName: e.operationName,
    OperationVersion: e.operationVersion ?? null, ResultType: e.resultType, ResultSignature: e.resultSignature,
    ResultDescription: e.resultDescription ?? null, DurationMs: e.durationMs, CallerIPAddress: e.callerIpAddress, CorrelationId: e.correlationId,
    identity_claim_oid_g: claim?.oid ?? null, identity_claim_appid_g: claim?.appid ?? null, identity_claim_upn_s: claim?.upn ?? null,
    id_s: e.properties.id ?? null, requestUri_s: e.properties.requestUri, httpStatusCode_d: e.properties.httpStatusCode,
    clientInfo_s: e.properties.clientInfo ?? null, isRbacAuthorized_b: e.properties.isRbacAuthorized ?? null,
    isAccessPolicyMatch_b: e.properties.isAccessPolicyMatch ?? null,
    Resource: id?.[5].toUpperCase() ?? null, ResourceGroup: id?.[2].toUpperCase() ?? null, SubscriptionId: id?.[1] ?? null,
    ResourceProvider: id?.[3].toUpperCase() ?? null, ResourceType: id?.[4].toUpperCase() ?? null, Type: 'AzureDiagnostics',
  };
}

/** Log Analytics' 400 for a request it cannot run: BadArgumentError, with what was wrong as the inner code. */
const queryError = (message: string, innerCode = 'SyntaxError') => new KeyVaultError(400, 'BadArgumentError', `The query could not be run: ${message}`, innerCode);

/** Splits on `sep` outside single or double quotes. */
function splitOutsideQuotes(text: string, sep: RegExp): string[] {
  const parts: string[] = [];
  let quote: string | undefined;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = undefined;
      continue;
    }
    if (c === '"' || c === "'") { quote = c; continue; }
    sep.lastIndex = i;
    const m = sep.exec(text);
    if (m && m.index === i) {
      parts.push(text.slice(start, i));
      i += m[0].length - 1;
      start = i + 1;
    }
  }
  if (quote) throw queryError('an unterminated string literal.');
  parts.push(text.slice(start));
  return parts.map((p) => p.trim());
}

const DURATION_UNITS: Record<string, number> = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1_000, ms: 1 };

/** A literal: 'text', "text", number, true/false, ago(1h), datetime(2024-01-01T00:00:00Z), now(). */
function literal(text: string, now: number): string | number | boolean {
  const t = text.trim();
  const quoted = /^(['"])(.*)\1$/s.exec(t);
  if (quoted) return quoted[2].replace(/\\(.)/g, '$1');
  if (/^-?\d+(\.\d+)?$/.test(t)) return Number(t);
  if (t === 'true' || t === 'false') return t === 'true';
  if (t === 'now()') return new Date(now).toISOString();
  const ago = /^ago\(\s*(\d+(?:\.\d+)?)\s*(d|h|m|s|ms)\s*\)$/.exec(t);
  if (ago) return new Date(now - Number(ago[1]) * DURATION_UNITS[ago[2]]).toISOString();
  const datetime = /^datetime\(\s*['"]?([^'")]+)['"]?\s*\)$/.exec(t);
  if (datetime && !Number.isNaN(Date.parse(datetime[1]))) return new Date(datetime[1]).toISOString();
  throw queryError(`'${t}' is not a supported value (a string, number, bool, ago(…), datetime(…) or now()).`);
}

const column = (name: string) => {
  if (!COLUMNS.some((c) => c.name === name)) throw queryError(`unknown column '${name}'.`);
  return name;
};

type Predicate = (row: Row) => boolean;

function condition(text: string, now: number): Predicate {
  const m = /^([A-Za-z_][\w]*)\s*(==|!=|=~|!~|<=|>=|<|>|!contains|contains|startswith|!has|has|in)\s*(.+)$/s.exec(text.trim());
  if (!m) throw queryError(`'${text.trim()}' is not a supported condition.`);
  const name = column(m[1]);
  const op = m[2];
  const str = (v: unknown) => (v === null || v === undefined ? '' : String(v));
  if (op === 'in') {
    const list = /^\((.*)\)$/s.exec(m[3].trim());
    if (!list) throw queryError('in expects a parenthesised list.');
    const values = splitOutsideQuotes(list[1], /,/g).map((v) => literal(v, now));
    return (row) => values.some((v) => row[name] === v);
  }
  const value = literal(m[3], now);
  const lower = str(value).toLowerCase();
  switch (op) {
    case '==': return (row) => row[name] === value;
    case '!=': return (row) => row[name] !== value;
    case '=~': return (row) => str(row[name]).toLowerCase() === lower;
    case '!~': return (row) => str(row[name]).toLowerCase() !== lower;
    case 'contains': case 'has': return (row) => str(row[name]).toLowerCase().includes(lower);
    case '!contains': case '!has': return (row) => !str(row[name]).toLowerCase().includes(lower);
    case 'startswith': return (row) => str(row[name]).toLowerCase().startsWith(lower);
    default: {
      const compare = (a: unknown) => (typeof value === 'number' ? Number(a) - value : str(a).localeCompare(str(value)));
      const test = { '<': (n: number) => n < 0, '<=': (n: number) => n <= 0, '>': (n: number) => n > 0, '>=': (n: number) => n >= 0 }[op as '<'];
      return (row) => row[name] !== null && test(compare(row[name]));
    }
  }
}

export interface QueryResult { tables: { name: 'PrimaryResult'; columns: { name: string; type: string }[]; rows: unknown[][] }[] }

/** Runs `query` over `rows` (already limited to the request's timespan). `now` is the service clock, for ago(). */
export function runQuery(query: string, rows: Row[], now: number): QueryResult {
  const [source, ...stages] = splitOutsideQuotes(query.trim(), /\|/g);
  if (source !== 'AzureDiagnostics') throw queryError(`the table '${source}' does not exist; audit records are in AzureDiagnostics.`);
  let current = rows;
  let columns = COLUMNS.map((c) => ({ name: c.name, type: c.type }));
  for (const stage of stages) {
    const [keyword, rest = ''] = [stage.split(/\s+/, 1)[0], stage.slice(stage.split(/\s+/, 1)[0].length).trim()];
    switch (keyword) {
      case 'where': {
        const anyOf = splitOutsideQuotes(rest, /\s+or\s+/gi).map((alt) => splitOutsideQuotes(alt, /\s+and\s+/gi).map((c) => condition(c, now)));
        current = current.filter((row) => anyOf.some((all) => all.every((p) => p(row))));
        break;
      }
      case 'take': case 'limit': {
        if (!/^\d+$/.test(rest)) throw queryError(`${keyword} expects a row count.`);
        current = current.slice(0, Number(rest));
        break;
      }
      case 'project': {
        const names = splitOutsideQuotes(rest, /,/g).map((n) => column(n));
        columns = names.map((n) => columns.find((c) => c.name === n) ?? { name: n, type: 'string' });
        current = current.map((row) => Object.fromEntries(names.map((n) => [n, row[n]])));
        break;
      }
      case 'sort': case 'order': {
        const m = /^by\s+([A-Za-z_]\w*)(?:\s+(asc|desc))?$/.exec(rest);
        if (!m) throw queryError(`${keyword} expects 'by Column [asc|desc]'.`);
        const name = column(m[1]);
        const sign = m[2] === 'asc' ? 1 : -1;
        current = [...current].sort((a, b) => sign * (a[name] === b[name] ? 0 : String(a[name]) < String(b[name]) ? -1 : 1));
        break;
      }
      case 'count': {
        if (rest) throw queryError('count takes no arguments.');
        columns = [{ name: 'Count', type: 'long' as never }];
        current = [{ Count: current.length }];
        break;
      }
      case 'summarize': {
        const m = /^count\(\)(?:\s+by\s+([A-Za-z_]\w*))?$/.exec(rest);
        if (!m) throw queryError("summarize supports 'count()' and 'count() by Column'.");
        if (!m[1]) {
          columns = [{ name: 'count_', type: 'long' as never }];
          current = [{ count_: current.length }];
          break;
        }
        const name = column(m[1]);
        const counts = new Map<unknown, number>();
        for (const row of current) counts.set(row[name], (counts.get(row[name]) ?? 0) + 1);
        columns = [columns.find((c) => c.name === name) ?? { name, type: 'string' }, { name: 'count_', type: 'long' as never }];
        current = [...counts].map(([k, n]) => ({ [name]: k as Row[string], count_: n }));
        break;
      }
      default:
        throw queryError(`the operator '${keyword}' is not supported (where, project, take, limit, sort, order, count, summarize).`);
    }
  }
  return { tables: [{ name: 'PrimaryResult', columns, rows: current.map((row) => columns.map((c) => row[c.name] ?? null)) }] };
}

/** An ISO 8601 timespan as Log Analytics takes it: `PT1H`, `P1D`, `start/end` or `start/duration`; returns [from, to]. */
export function parseTimespan(timespan: string, now: number): [number, number] {
  const duration = (d: string) => {
    const m = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/i.exec(d);
    if (!m || d.toUpperCase() === 'P' || d.toUpperCase() === 'PT') return undefined;
    return (Number(m[1] ?? 0) * 86_400 + Number(m[2] ?? 0) * 3_600 + Number(m[3] ?? 0) * 60 + Number(m[4] ?? 0)) * 1000;
  };
  const [a, b] = timespan.split('/');
  const bad = () => queryError(`'${timespan}' is not an ISO 8601 timespan (PT1H, P1D, start/end or start/duration).`);
  if (b === undefined) {
    const ms = duration(a);
    if (ms === undefined) throw bad();
    return [now - ms, now];
  }
  const start = Date.parse(a);
  if (Number.isNaN(start)) throw bad();
  const end = Number.isNaN(Date.parse(b)) ? (duration(b) === undefined ? NaN : start + duration(b)!) : Date.parse(b);
  if (Number.isNaN(end)) throw bad();
  // Log Analytics refuses an interval that ends before it starts rather than answering it with no rows.
  if (end < start) throw queryError(`the timespan '${timespan}' ends before it starts.`, 'InvalidTimespan');
  return [start, end];
}
