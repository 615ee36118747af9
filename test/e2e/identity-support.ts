import 'reflect-metadata';
import assert from 'node:assert/strict';
import crypto, { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import type { TokenCredential } from '@azure/identity';
import { SecretClient } from '@azure/keyvault-secrets';
import { startTestServer, type TestServer } from '../support/server.js';
import { ROLE_IDS } from '../../src/gates/authorization/builtin-roles.js';

/** What the identity suites share: a real Coffer with one RBAC vault holding `app-secret`, and the administrator's API. */
export const APP_SECRET_VALUE = 's3cr3t-value';

export interface ApiResult { status: number; body: any }

/** A Graph / ARM / Coffer call on the management host, as the bootstrap administrator unless another token is given. */
export function managementApi(server: TestServer) {
  return async (method: string, path: string, body?: unknown, token?: string): Promise<ApiResult> => {
    const bearer = token ?? (await server.adminCredential.getToken(`${server.admin.managementEndpoint}/.default`))!.token;
    const res = await fetch(`${server.admin.managementEndpoint}${path}`, {
      method,
      headers: { authorization: `Bearer ${bearer}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
}

/** Starts a Coffer with the RBAC vault `vault` holding `app-secret`; helpers to grant and to read it. */
export async function startTestServerWithSecret(vault: string) {
  const server = await startTestServer();
  await server.createVault(vault, { enableRbacAuthorization: true });
  await server.secretClient(vault).setSecret('app-secret', APP_SECRET_VALUE);
  const mgmt = managementApi(server);
  const vaultScope = `/subscriptions/${server.admin.subscriptionId}/resourceGroups/rg-test/providers/Microsoft.KeyVault/vaults/${vault}`;
  return {
    server,
    mgmt,
    vaultScope,
    /** Gives a principal the Key Vault Secrets User role on the vault. */
    async grantSecretsUser(principalId: string) {
      const res = await mgmt('PUT', `${vaultScope}/providers/Microsoft.Authorization/roleAssignments/${crypto.randomUUID()}?api-version=2022-04-01`, {
        properties: { roleDefinitionId: `/subscriptions/${server.admin.subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/${ROLE_IDS.keyVaultSecretsUser}`, principalId },
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
    },
    /** Reads `app-secret` through the SDK (challenge verification on, the default) with this credential. */
    readWith: (credential: TokenCredential) =>
      new SecretClient(server.vaultUrl(vault), credential, { retryOptions: { maxRetries: 0 } }).getSecret('app-secret'),
  };
}

export type TestServerWithSecret = Awaited<ReturnType<typeof startTestServerWithSecret>>;

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

/** A self-signed RSA certificate for an app: its DER (base64, as Graph's keyCredentials take it) and a PEM of key + certificate. */
export async function selfSignedCertificate(commonName: string) {
  const alg = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 };
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01', name: `CN=${commonName}`, notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 86_400_000), keys, signingAlgorithm: alg,
  });
  const keyPem = x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY');
  return { derBase64: Buffer.from(cert.rawData).toString('base64'), pem: `${keyPem}\n${cert.toString('pem')}\n` };
}
