import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startTestServer, type TestServer } from '../support/server.js';
import { hasPythonModules, runPythonSdk } from '../support/python.js';

/**
 * The Python SDK (Debian's python3-azure: azure-keyvault-keys + azure-identity) through a create / sign / verify /
 * wrap / unwrap round trip against a real Coffer; the signatures it got from Coffer are checked again by node:crypto.
 * Skipped when the Debian package is not installed.
 */
const hasPythonSdk = hasPythonModules(['azure.keyvault.keys', 'azure.identity']);

const SCRIPT = String.raw`
import base64, hashlib, json, os, socket
# *.localhost names resolve to loopback, as the Node test processes arrange with their resolver.
_getaddrinfo = socket.getaddrinfo
def _resolve(host, *args, **kwargs):
    if isinstance(host, str) and host.endswith('.localhost'):
        host = '127.0.0.1'
    return _getaddrinfo(host, *args, **kwargs)
socket.getaddrinfo = _resolve

from azure.identity import ClientSecretCredential
from azure.keyvault.keys import KeyClient
from azure.keyvault.keys.crypto import CryptographyClient, KeyWrapAlgorithm, SignatureAlgorithm

env = os.environ
cred = ClientSecretCredential(env['TENANT'], env['CLIENT_ID'], env['CLIENT_SECRET'], authority=env['AUTHORITY'], instance_discovery=False)
# The SDK's default api-version, as a user leaves it (Debian's 4.8.0b3: 7.4-preview.1, a preview Key Vault still serves).
client = KeyClient(env['VAULT_URL'], cred)
b64 = lambda b: base64.urlsafe_b64encode(b).decode().rstrip('=')
out = {}

rsa = client.create_rsa_key('py-rsa', size=2048)
cc = CryptographyClient(rsa.id, cred)
digest = hashlib.sha256(b'from python').digest()
signed = cc.sign(SignatureAlgorithm.ps256, digest)
out['rsa'] = {'n': b64(rsa.key.n), 'e': b64(rsa.key.e), 'signature': b64(signed.signature),
  'verified': cc.verify(SignatureAlgorithm.ps256, digest, signed.signature).is_valid,
  'tampered': cc.verify(SignatureAlgorithm.ps256, hashlib.sha256(b'other').digest(), signed.signature).is_valid}
secret = os.urandom(32)
for alg in (KeyWrapAlgorithm.rsa_oaep, KeyWrapAlgorithm.rsa_oaep_256, KeyWrapAlgorithm.rsa1_5):
    wrapped = cc.wrap_key(alg, secret)
    out['unwrap_' + alg.value] = cc.unwrap_key(alg, wrapped.encrypted_key).key == secret

ec = client.create_ec_key('py-ec', curve='P-256K')
ecc = CryptographyClient(ec.id, cred)
signed = ecc.sign(SignatureAlgorithm.es256_k, digest)
out['ec'] = {'crv': ec.key.crv, 'x': b64(ec.key.x), 'y': b64(ec.key.y), 'signature': b64(signed.signature),
  'verified': ecc.verify(SignatureAlgorithm.es256_k, digest, signed.signature).is_valid}
out['got'] = client.get_key('py-ec').key.kty
out['api_version'] = client.api_version
print(json.dumps(out))
`;

let server: TestServer;
before(async () => {
  if (!hasPythonSdk) return;
  server = await startTestServer();
  await server.createVault('pythonkeys');
});
after(() => server?.close());

test('Python SDK: create, sign, verify, wrap, unwrap', { skip: !hasPythonSdk && 'python3-azure is not installed' }, async () => {
  const out = await runPythonSdk(server, 'pythonkeys', SCRIPT);

  assert.equal(out.rsa.verified, true);
  assert.equal(out.rsa.tampered, false);
  const rsaKey = crypto.createPublicKey({ key: { kty: 'RSA', n: out.rsa.n, e: out.rsa.e }, format: 'jwk' });
  assert.equal(crypto.verify('sha256', Buffer.from('from python'), {
    key: rsaKey, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32,
  }, Buffer.from(out.rsa.signature, 'base64url')), true);
  for (const alg of ['RSA-OAEP', 'RSA-OAEP-256', 'RSA1_5']) assert.equal(out[`unwrap_${alg}`], true, alg);

  assert.equal(out.ec.crv, 'P-256K');
  assert.equal(out.ec.verified, true);
  const ecKey = crypto.createPublicKey({ key: { kty: 'EC', crv: 'secp256k1', x: out.ec.x, y: out.ec.y }, format: 'jwk' });
  assert.equal(crypto.verify('sha256', Buffer.from('from python'), { key: ecKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(out.ec.signature, 'base64url')), true);
  assert.equal(out.got, 'EC');
  assert.equal(out.api_version, '7.4-preview.1', 'the SDK default, unpinned');
});
