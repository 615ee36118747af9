import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadOrCreateTls } from './tls.js';
import { createEndpoints } from '../endpoints.js';

test('the local CA re-issues the server certificate when a public host is added, and it covers that name', async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-tls-'));
  try {
    const first = new crypto.X509Certificate((await loadOrCreateTls({ dataDir, dnsSuffix: 'vault.localhost' })).cert);
    assert.equal(first.checkHost('coffer.example.internal'), undefined);
    assert.ok(first.checkHost('kv1.vault.localhost'));

    const named = new crypto.X509Certificate((await loadOrCreateTls({ dataDir, dnsSuffix: 'vault.localhost', publicHost: 'coffer.example.internal' })).cert);
    assert.equal(named.checkHost('coffer.example.internal'), 'coffer.example.internal');
    assert.ok(named.checkHost('localhost'));

    const byAddress = new crypto.X509Certificate((await loadOrCreateTls({ dataDir, dnsSuffix: 'vault.localhost', publicHost: '10.1.2.3' })).cert);
    assert.equal(byAddress.checkIP('10.1.2.3'), '10.1.2.3');
    assert.equal(byAddress.checkIssued(new crypto.X509Certificate(fs.readFileSync(path.join(dataDir, 'tls', 'ca.crt'), 'utf8'))), true);
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test('the public host names the token issuer and management endpoint; vault URLs keep the DNS suffix', () => {
  const named = createEndpoints({ dnsSuffix: 'kv.example.internal', publicPort: 443, managementHost: 'Coffer.Example.Internal' });
  assert.equal(named.authorityHost, 'https://coffer.example.internal');
  assert.equal(named.managementEndpoint, 'https://coffer.example.internal');
  assert.equal(named.vaultUrl('kv1'), 'https://kv1.kv.example.internal');
  assert.equal(createEndpoints({ dnsSuffix: 'vault.localhost', publicPort: 8443, managementHost: '::1' }).authorityHost, 'https://[::1]:8443');
  assert.equal(createEndpoints({ dnsSuffix: 'vault.localhost', publicPort: 8443 }).authorityHost, 'https://localhost:8443');
});
