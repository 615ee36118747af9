import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyVaultError } from '../../http/errors.js';
import { addMonths, resolvePolicy } from './policy.js';

const NOW = Date.UTC(2030, 0, 1);

test("an empty policy gets Azure's defaults", () => {
  const p = resolvePolicy({ issuer: { name: 'Self' }, x509_props: { subject: 'CN=a' } }, undefined, NOW);
  assert.deepEqual(p.key_props, { exportable: true, kty: 'RSA', key_size: 2048, reuse_key: false });
  assert.equal(p.secret_props.contentType, 'application/x-pkcs12');
  assert.equal(p.x509_props.validity_months, 12);
  assert.deepEqual(p.x509_props.ekus, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
  assert.deepEqual(p.lifetime_actions, [{ trigger: { lifetime_percentage: 80 }, action: { action_type: 'AutoRenew' } }]);
  assert.deepEqual(p.attributes, { enabled: true, created: NOW, updated: NOW });
});

test('an Unknown issuer\'s default lifetime action emails the contacts (Coffer cannot renew with an external CA)', () => {
  const p = resolvePolicy({ issuer: { name: 'Unknown' }, x509_props: { subject: 'CN=a' } }, undefined, NOW);
  assert.deepEqual(p.lifetime_actions, [{ trigger: { lifetime_percentage: 80 }, action: { action_type: 'EmailContacts' } }]);
});

test('a patch merges over the prior policy and keeps its creation time', () => {
  const prior = resolvePolicy({ issuer: { name: 'Self' }, x509_props: { subject: 'CN=a' } }, undefined, NOW);
  const next = resolvePolicy({ key_props: { kty: 'EC' }, x509_props: { validity_months: 3 } }, prior, NOW + 1000);
  assert.equal(next.key_props.kty, 'EC');
  assert.equal(next.key_props.crv, 'P-256');
  assert.equal(next.key_props.key_size, undefined);
  assert.equal(next.x509_props.subject, 'CN=a');
  assert.equal(next.x509_props.validity_months, 3);
  assert.deepEqual(next.attributes, { enabled: true, created: NOW, updated: NOW + 1000 });
});

test('impossible policies are 400 BadParameter', () => {
  const bad = [
    { key_props: { kty: 'oct' } },
    { key_props: { key_size: 1024 } },
    { key_props: { kty: 'EC', crv: 'P-256K' } },
    { key_props: { kty: 'EC', key_size: 2048 } },
    { key_props: { kty: 'EC', crv: 'P-384', key_size: 256 } },
    { secret_props: { contentType: 'text/plain' } },
    { x509_props: { validity_months: 0 } },
    { x509_props: { ekus: ['serverAuth'] } },
    { x509_props: { key_usage: ['everything'] } },
    { lifetime_actions: [{ trigger: {}, action: { action_type: 'AutoRenew' } }] },
    { lifetime_actions: [{ trigger: { lifetime_percentage: 100 }, action: { action_type: 'AutoRenew' } }] },
    { lifetime_actions: [{ trigger: { days_before_expiry: 400 }, action: { action_type: 'AutoRenew' } }] },
    { lifetime_actions: [{ trigger: { days_before_expiry: 10 }, action: { action_type: 'Explode' } }] },
  ];
  for (const input of bad) {
    assert.throws(() => resolvePolicy(input, undefined, NOW), (e: unknown) => e instanceof KeyVaultError && e.status === 400, JSON.stringify(input));
  }
});

test('an EC key may name its size only as its curve\'s', () => {
  assert.equal(resolvePolicy({ key_props: { kty: 'EC', crv: 'P-384', key_size: 384 } }, undefined, NOW).key_props.key_size, 384);
  assert.equal(resolvePolicy({ key_props: { kty: 'EC', crv: 'P-521' } }, undefined, NOW).key_props.key_size, undefined);
});

test('validity months are calendar months', () => {
  assert.equal(addMonths(new Date('2030-01-31T10:00:00Z'), 1).toISOString(), '2030-02-28T10:00:00.000Z');
  assert.equal(addMonths(new Date('2031-12-15T00:00:00Z'), 12).toISOString(), '2032-12-15T00:00:00.000Z');
});
