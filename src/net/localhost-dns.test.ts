import { test } from 'node:test';
import assert from 'node:assert/strict';
import dns from 'node:dns';
import { installLocalhostResolver, isLocalhostName } from './localhost-dns.js';

test('*.localhost names are loopback (RFC 6761)', async () => {
  assert.ok(isLocalhostName('myvault.vault.localhost'));
  assert.ok(isLocalhostName('LOCALHOST.'));
  assert.ok(!isLocalhostName('localhost.example.com'));
  installLocalhostResolver();
  const { address } = await dns.promises.lookup('myvault.vault.localhost').catch(() => ({ address: '' }));
  const viaCallback = await new Promise<string>((resolve, reject) => dns.lookup('a.b.vault.localhost', (err, addr) => (err ? reject(err) : resolve(addr))));
  assert.equal(viaCallback, '127.0.0.1');
  // dns.promises is not patched; the callback API (used by net/https) is.
  assert.ok(address === '' || address === '127.0.0.1' || address === '::1');
});
