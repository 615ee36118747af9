import { test } from 'node:test';
import assert from 'node:assert/strict';
import { render, isoTime, subresourceName, parseQuery } from './output.js';
import { parseBool, parseDate, parseTags } from './command.js';
import { CliError } from './errors.js';

const secret = { name: 's1', value: 'v', enabled: true, tags: { b: '2', a: '1' }, versions: [1, 2], contentType: null, id: 'https://x/secrets/s1' };

test('json: sorted keys at every level, two-space indent, like json.dumps(sort_keys=True, indent=2)', () => {
  assert.equal(render({ b: 1, a: { d: [], c: {} } }, { output: 'json' }), '{\n  "a": {\n    "c": {},\n    "d": []\n  },\n  "b": 1\n}\n');
  assert.equal(render(secret, { output: 'json', query: 'missing' }), 'null\n');
  assert.equal(render(undefined, { output: 'json' }), '', 'commands without a result print nothing');
  assert.equal(render(secret, { output: 'jsonc', color: false }), render(secret, { output: 'json' }));
  assert.match(render(secret, { output: 'jsonc', color: true }), /\x1b\[/);
});

test('yaml: sorted keys in block style, lists level with their key, like yaml.safe_dump(default_flow_style=False)', () => {
  assert.equal(render({ b: [1, 'two'], a: { d: null, c: true } }, { output: 'yaml' }), 'a:\n  c: true\n  d: null\nb:\n- 1\n- two\n');
  assert.equal(render(secret, { output: 'yaml', query: 'name' }), 's1\n');
  assert.equal(render(secret, { output: 'yamlc', color: false }), render(secret, { output: 'yaml' }));
  assert.match(render(secret, { output: 'yamlc', color: true }), /\x1b\[94mname\x1b\[39m: /);
});

test('tsv: values of sorted keys, Python str() cells, query order kept', () => {
  // contentType, enabled, id, name, tags (a dict: empty), value, versions (a list: its length).
  assert.equal(render(secret, { output: 'tsv' }), 'None\tTrue\thttps://x/secrets/s1\ts1\t\tv\t2\n');
  assert.equal(render([secret, secret], { output: 'tsv', query: '[].{v:value,n:name,e:enabled}' }), 'v\ts1\tTrue\nv\ts1\tTrue\n');
  assert.equal(render(secret, { output: 'tsv', query: 'enabled' }), 'true\n');
  assert.equal(render(secret, { output: 'tsv', query: 'versions' }), '1\n2\n', 'a list result is one row per item');
  assert.equal(render(secret, { output: 'none' }), '');
});

test('table: scalar columns only, id skipped, capitalised headers, tabulate "simple" widths', () => {
  const out = render([{ name: 'a', contentType: 'text/plain', id: 'x', enabled: false }, { name: 'long-name', enabled: true }], { output: 'table' });
  assert.equal(out, [
    'ContentType    Enabled    Name     ',
    '-------------  ---------  ---------',
    'text/plain     False      a        ',
    '               True       long-name',
    '',
  ].join('\n'));
  assert.equal(render(secret, { output: 'table', query: '{Value:value, Name:name}' }), 'Value    Name  \n-------  ------\nv        s1    \n');
  assert.throws(() => render({ tags: {} }, { output: 'table' }), /Table output unavailable/);
});

test('Key Vault times as Python isoformat of UTC datetimes; names from ids', () => {
  assert.equal(isoTime(1588868782), '2020-05-07T16:26:22+00:00');
  assert.equal(isoTime(undefined), null);
  assert.equal(subresourceName('https://v.vault.localhost:8443/secrets/name/0123'), 'name');
  assert.equal(subresourceName(undefined), null);
});

test('argument types: booleans, ISO dates (UTC by default), tags, queries', () => {
  assert.equal(parseBool(undefined), true);
  assert.equal(parseBool('False'), false);
  assert.throws(() => parseBool('maybe'), (e: unknown) => e instanceof CliError && e.exitCode === 2);
  assert.equal(parseDate('2030-01-01', '--expires'), Date.UTC(2030, 0, 1) / 1000);
  assert.equal(parseDate('2030-01-01T10:00:00', '--expires'), Date.UTC(2030, 0, 1, 10) / 1000);
  assert.equal(parseDate('2030-01-01T10:00:00+02:00', '--expires'), Date.UTC(2030, 0, 1, 8) / 1000);
  assert.throws(() => parseDate('tomorrow', '--expires'), /--expires/);
  assert.deepEqual(parseTags(['a=b', 'c', 'd=e=f']), { a: 'b', c: '', d: 'e=f' });
  assert.deepEqual(parseTags(['']), {});
  assert.equal(parseTags(undefined), undefined);
  assert.equal(parseQuery("[?starts_with(name, 'a')]"), "[?starts_with(name, 'a')]");
  assert.throws(() => parseQuery('[[['), (e: unknown) => e instanceof CliError && e.exitCode === 2);
});
