import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyRequest } from 'fastify';
import type { RequestContext } from '../../pipeline/context.js';
import type { Vault } from '../../control-plane/vaults.js';
import { KeyVaultError } from '../../http/errors.js';
import { keyKindOf, operationCost, parseThrottleProfile } from './budgets.js';
import { createThrottle } from './gate.js';

test('costs follow Azure\'s service-limits table, as weights on the 4,000-transaction vault budget', () => {
  assert.equal(operationCost('SecretGet'), 1);
  assert.equal(operationCost('SecretSet'), 4000 / 300);
  assert.equal(operationCost('KeyCreate'), 200);
  assert.equal(operationCost('KeySign', { hsm: false, type: 'RSA-2048' }), 1);
  assert.equal(operationCost('KeySign', { hsm: true, type: 'RSA-2048' }), 2);
  assert.equal(operationCost('KeySign', { hsm: false, type: 'RSA-3072' }), 4);
  assert.equal(operationCost('KeySign', { hsm: true, type: 'RSA-4096' }), 16);
  assert.equal(operationCost('KeySign', { hsm: true, type: 'EC' }), 2);
  assert.equal(operationCost('KeyList'), 1);
});

test('key kinds come from the public JWK', () => {
  assert.deepEqual(keyKindOf({ kty: 'RSA-HSM', n: Buffer.alloc(512).toString('base64url') }), { hsm: true, type: 'RSA-4096' });
  assert.deepEqual(keyKindOf({ kty: 'RSA', n: Buffer.alloc(384).toString('base64url') }), { hsm: false, type: 'RSA-3072' });
  assert.deepEqual(keyKindOf({ kty: 'EC' }), { hsm: false, type: 'EC' });
});

test('profiles: azure, off, or a positive multiplier', () => {
  assert.equal(parseThrottleProfile('azure'), 'azure');
  assert.equal(parseThrottleProfile('off'), 'off');
  assert.equal(parseThrottleProfile('0.01'), 0.01);
  assert.throws(() => parseThrottleProfile('-1'));
  assert.throws(() => parseThrottleProfile('fast'));
});

const vault = (name: string, subscriptionId = 'sub') => ({ name, subscriptionId, resourceId: `/subscriptions/${subscriptionId}/vaults/${name}` }) as unknown as Vault;
const request = { params: {} } as FastifyRequest;
const ctx = (v: Vault, operation = 'SecretGet') => ({ plane: 'vault', operation, vault: v }) as RequestContext;

test('a burst over budget is refused with an honest Retry-After; refused requests are not counted', async () => {
  let clock = 0;
  const throttle = createThrottle({ profile: 0.001, now: () => clock }); // 4 units per 10 s per vault
  const v = vault('a');
  for (let i = 0; i < 4; i++) { clock = i * 1000; await throttle.gate.check(request, ctx(v)); }
  assert.deepEqual(throttle.saturation(), [{ vault: 'a', percent: 100 }]);
  clock = 5000;
  await assert.rejects(async () => throttle.gate.check(request, ctx(v)), (err: KeyVaultError) =>
    err.status === 429 && err.code === 'Throttled' && err.headers!['retry-after'] === '5'
    && err.message === 'Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached');
  for (let i = 0; i < 10; i++) await assert.rejects(async () => throttle.gate.check(request, ctx(v)));
  clock = 10_000; // the first request's unit has expired, and the refused ones never counted
  await throttle.gate.check(request, ctx(v));
  await assert.rejects(async () => throttle.gate.check(request, ctx(v)), (err: KeyVaultError) => err.headers!['retry-after'] === '1');
});

test('the subscription budget is five vaults\' worth, shared by its vaults', async () => {
  const throttle = createThrottle({ profile: 0.001, now: () => 0 });
  for (let v = 0; v < 5; v++) for (let i = 0; i < 4; i++) await throttle.gate.check(request, ctx(vault(`v${v}`)));
  await assert.rejects(async () => throttle.gate.check(request, ctx(vault('v5'))), (err: KeyVaultError) => /SubscriptionRequestTypeLimitReached/.test(err.message));
  await throttle.gate.check(request, ctx(vault('other', 'sub2')));
});

test('a request larger than the whole budget runs in an empty window; off throttles nothing', async () => {
  const throttle = createThrottle({ profile: 0.001, now: () => 0 });
  await throttle.gate.check(request, ctx(vault('big'), 'KeyCreate'));
  await assert.rejects(async () => throttle.gate.check(request, ctx(vault('big'))));
  assert.equal(createThrottle({ profile: 'off' }).gate.appliesTo(ctx(vault('x'))), false);
});
