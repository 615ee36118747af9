import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTimespan, runQuery, type Row } from './workspace-query.js';

const NOW = Date.parse('2030-01-01T12:00:00Z');
const row = (over: Partial<Row>): Row => ({
  TimeGenerated: '2030-01-01T11:30:00.000Z', OperationName: 'SecretGet', ResultType: 'Success', ResultSignature: 'OK',
  httpStatusCode_d: 200, identity_claim_oid_g: 'alice', id_s: 'https://v.vault.localhost/secrets/a', CallerIPAddress: '127.0.0.1', ...over,
});
const rows = [
  row({}),
  row({ TimeGenerated: '2030-01-01T09:00:00.000Z', ResultType: 'Failure', ResultSignature: 'Forbidden', httpStatusCode_d: 403, identity_claim_oid_g: 'bob' }),
  row({ OperationName: 'SecretSet', id_s: "https://v.vault.localhost/secrets/it's|piped" }),
];
const result = (query: string) => {
  const [{ columns, rows: out }] = runQuery(query, rows, NOW).tables;
  return out.map((r) => Object.fromEntries(columns.map((c, i) => [c.name, r[i]])));
};

test('where: comparisons, case-insensitive operators, and/or precedence, in-lists, quoted pipes', () => {
  assert.equal(result("AzureDiagnostics | where OperationName == 'SecretGet'").length, 2);
  assert.equal(result("AzureDiagnostics | where OperationName =~ 'secretget' and ResultType != 'Success'").length, 1);
  assert.equal(result("AzureDiagnostics | where ResultSignature == 'Forbidden' or OperationName == 'SecretSet' and identity_claim_oid_g == 'alice'").length, 2);
  assert.equal(result("AzureDiagnostics | where identity_claim_oid_g in ('bob', 'carol')").length, 1);
  assert.equal(result('AzureDiagnostics | where httpStatusCode_d >= 400').length, 1);
  assert.equal(result("AzureDiagnostics | where id_s contains \"it's|piped\"").length, 1, 'a | inside a string is not a pipe');
  assert.equal(result("AzureDiagnostics | where CallerIPAddress startswith '127.0.' and id_s !contains 'piped'").length, 2);
});

test('time filters: ago() and datetime() against the service clock', () => {
  assert.equal(result('AzureDiagnostics | where TimeGenerated > ago(1h)').length, 2);
  assert.equal(result('AzureDiagnostics | where TimeGenerated < datetime(2030-01-01T10:00:00Z)').length, 1);
});

test('project, sort, take, count and summarize', () => {
  assert.deepEqual(result("AzureDiagnostics | sort by TimeGenerated asc | take 1 | project identity_claim_oid_g"), [{ identity_claim_oid_g: 'bob' }]);
  assert.deepEqual(result('AzureDiagnostics | count'), [{ Count: 3 }]);
  assert.deepEqual(result('AzureDiagnostics | summarize count() by OperationName'), [{ OperationName: 'SecretGet', count_: 2 }, { OperationName: 'SecretSet', count_: 1 }]);
});

test('anything outside the subset is refused with what is not supported', () => {
  for (const [query, message] of [
    ['SigninLogs', /does not exist/],
    ['AzureDiagnostics | join (x) on y', /'join' is not supported/],
    ['AzureDiagnostics | where Nope == 1', /unknown column 'Nope'/],
    ["AzureDiagnostics | where OperationName == 'unterminated", /unterminated/],
    ['AzureDiagnostics | where TimeGenerated > yesterday', /not a supported value/],
    ['AzureDiagnostics | take many', /row count/],
  ] as const) {
    assert.throws(() => runQuery(query, rows, NOW), (e: any) => e.status === 400 && e.code === 'BadArgumentError' && message.test(e.message), query);
  }
});

test('timespans: durations, start/end and start/duration', () => {
  assert.deepEqual(parseTimespan('PT1H', NOW), [NOW - 3_600_000, NOW]);
  assert.deepEqual(parseTimespan('P1DT30M', NOW), [NOW - 88_200_000, NOW]);
  assert.deepEqual(parseTimespan('2030-01-01T00:00:00Z/2030-01-02T00:00:00Z', NOW), [Date.parse('2030-01-01T00:00:00Z'), Date.parse('2030-01-02T00:00:00Z')]);
  assert.deepEqual(parseTimespan('2030-01-01T00:00:00Z/PT2H', NOW), [Date.parse('2030-01-01T00:00:00Z'), Date.parse('2030-01-01T02:00:00Z')]);
  for (const bad of ['P', 'PT', 'yesterday', '1h', 'x/PT1H']) assert.throws(() => parseTimespan(bad, NOW), /ISO 8601/, bad);
  // An inverted interval is a 400, not an empty result; an empty one (start = end) is a valid interval.
  assert.throws(() => parseTimespan('2030-01-02T00:00:00Z/2030-01-01T00:00:00Z', NOW),
    (e: any) => e.status === 400 && e.code === 'BadArgumentError' && e.innerCode === 'InvalidTimespan' && /ends before it starts/.test(e.message));
  assert.deepEqual(parseTimespan('2030-01-01T00:00:00Z/2030-01-01T00:00:00Z', NOW), [Date.parse('2030-01-01T00:00:00Z'), Date.parse('2030-01-01T00:00:00Z')]);
});
