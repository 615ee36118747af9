import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { startTestServer, type TestServer } from '../support/server.js';
import { hasPythonModules, runPythonSdk } from '../support/python.js';

/**
 * The Python SDK (Debian's python3-azure: azure-keyvault-certificates + azure-keyvault-secrets) creates a self-signed
 * certificate through its poller and downloads it as the managed secret; the PFX is then opened by node:crypto's
 * OpenSSL here. Skipped when the Debian package is not installed.
 */
const hasPythonSdk = hasPythonModules(['azure.keyvault.certificates', 'azure.keyvault.secrets', 'azure.identity']);

const SCRIPT = String.raw`
import json, os, socket
# The test's vault host (*.localhost) is loopback; Python's resolver is pointed there as Node's is.
_resolve_original = socket.getaddrinfo
socket.getaddrinfo = lambda host, *a, **k: _resolve_original('127.0.0.1' if str(host).endswith('.localhost') else host, *a, **k)

from azure.identity import ClientSecretCredential
from azure.keyvault.certificates import CertificateClient, CertificatePolicy
from azure.keyvault.secrets import SecretClient

env = os.environ
cred = ClientSecretCredential(env['TENANT'], env['CLIENT_ID'], env['CLIENT_SECRET'], authority=env['AUTHORITY'], instance_discovery=False)
# The SDKs' default api-versions, as a user leaves them.
certs = CertificateClient(env['VAULT_URL'], cred)
policy = CertificatePolicy(issuer_name='Self', subject='CN=python.example.test', san_dns_names=['python.example.test'], validity_in_months=2)
cert = certs.begin_create_certificate('py-cert', policy).result()
secret = SecretClient(env['VAULT_URL'], cred).get_secret('py-cert')
print(json.dumps({'version': cert.properties.version, 'cer': bytes(cert.cer).hex(), 'contentType': secret.properties.content_type, 'value': secret.value}))
`;

let server: TestServer;
before(async () => {
  if (!hasPythonSdk) return;
  server = await startTestServer();
  await server.createVault('pythoncerts');
});
after(() => server?.close());

test('Python SDK: create a self-signed certificate and download it', { skip: !hasPythonSdk && 'python3-azure is not installed' }, async () => {
  const out = await runPythonSdk(server, 'pythoncerts', SCRIPT);
  assert.match(out.version, /^[0-9a-f]{32}$/);
  assert.equal(out.contentType, 'application/x-pkcs12');
  const cert = new crypto.X509Certificate(Buffer.from(out.cer, 'hex'));
  assert.equal(cert.subject, 'CN=python.example.test');
  assert.equal(cert.subjectAltName, 'DNS:python.example.test');
  // The downloaded PFX carries the same certificate; openssl's PKCS#12 parser reads it.
  const pem = spawnSync('openssl', ['pkcs12', '-passin', 'pass:', '-nodes'], { input: Buffer.from(out.value, 'base64') }).stdout.toString();
  assert.match(pem, /BEGIN PRIVATE KEY/);
  assert.equal(new crypto.X509Certificate(pem.slice(pem.indexOf('-----BEGIN CERTIFICATE'))).fingerprint256, cert.fingerprint256);
});
