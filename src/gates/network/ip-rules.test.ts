import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ipRuleSet, normaliseAddress, parseIpv4Range, rangeContains, rangesOverlap } from './ip-rules.js';

test('IPv4-mapped IPv6 addresses are their IPv4 address; others are left alone', () => {
  assert.equal(normaliseAddress('::ffff:127.0.0.5'), '127.0.0.5');
  assert.equal(normaliseAddress('::FFFF:10.1.2.3'), '10.1.2.3');
  assert.equal(normaliseAddress('::1'), '::1');
  assert.equal(normaliseAddress('127.0.0.1'), '127.0.0.1');
});

test('single addresses and CIDR ranges admit exactly their addresses, mapped or not', () => {
  const rules = ipRuleSet([{ value: '127.0.0.5' }, { value: '10.20.0.0/16' }]);
  assert.equal(rules.admits('127.0.0.5'), true);
  assert.equal(rules.admits('::ffff:127.0.0.5'), true);
  assert.equal(rules.admits('127.0.0.6'), false);
  assert.equal(rules.admits('10.20.255.1'), true);
  assert.equal(rules.admits('10.21.0.1'), false);
  assert.equal(rules.admits('::1'), false);
});

test('malformed rules admit nothing and do not throw', () => {
  const rules = ipRuleSet([{ value: 'not-an-ip' }, { value: '10.0.0.0/33' }, { value: '10.0.0.0/8/1' }, { value: '::1' }]);
  assert.equal(rules.admits('10.0.0.1'), false);
  assert.equal(rules.admits('::1'), false);
});

test('IPv4 ranges: parsed with their canonical form; containment and overlap', () => {
  assert.deepEqual(parseIpv4Range('127.10.1.0/24'), { first: 0x7f0a0100, prefix: 24, canonical: '127.10.1.0/24', hostBitsSet: false });
  assert.equal(parseIpv4Range('127.10.1.5/24')!.canonical, '127.10.1.0/24');
  assert.equal(parseIpv4Range('127.10.1.5/24')!.hostBitsSet, true);
  assert.equal(parseIpv4Range('10.0.0.1')!.prefix, 32);
  for (const bad of ['10.0.0.0/33', '10.0.0.0/', '10.0.0.0/8/1', '::1', '1.2.3', '10.0.0.0/-1', '']) assert.equal(parseIpv4Range(bad), undefined, bad);
  const vnet = parseIpv4Range('127.10.0.0/16')!;
  assert.equal(rangeContains(vnet, parseIpv4Range('127.10.255.0/24')!), true);
  assert.equal(rangeContains(vnet, parseIpv4Range('127.11.0.0/24')!), false);
  assert.equal(rangeContains(vnet, parseIpv4Range('127.0.0.0/8')!), false);
  assert.equal(rangesOverlap(parseIpv4Range('127.0.0.0/8')!, vnet), true);
  assert.equal(rangesOverlap(parseIpv4Range('127.10.1.0/25')!, parseIpv4Range('127.10.1.128/25')!), false);
});
