import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ClientSecretCredential } from '@azure/identity';
import { SecretClient } from '@azure/keyvault-secrets';
import { startCoffer, type Coffer, type CofferOptions } from '../../src/server.js';
import type { BootstrapAdminFile } from '../../src/bootstrap.js';
import { freshDatabase } from './postgres.js';

/**
 * Starts a real Coffer (HTTPS on a free port, real tokens) in a fresh data dir whose CA is the test CA that
 * `npm test` put in NODE_EXTRA_CA_CERTS. The storage engine is SQLite unless COFFER_TEST_STORAGE_URL names another.
 */
export async function startTestServer(overrides: Partial<CofferOptions> = {}) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-test-'));
  seedTestCa(dataDir);
  const coffer = await startCoffer({
    host: '127.0.0.1', port: 0, dataDir, dnsSuffix: 'vault.localhost', seal: 'file', logLevel: 'silent',
    storageUrl: process.env.COFFER_TEST_STORAGE_URL ? await freshDatabase(process.env.COFFER_TEST_STORAGE_URL) : undefined,
    ...overrides,
  });
  const admin = JSON.parse(fs.readFileSync(path.join(dataDir, 'bootstrap-admin.json'), 'utf8')) as BootstrapAdminFile;
  const adminCredential = new ClientSecretCredential(admin.tenantId, admin.clientId, admin.clientSecret, {
    authorityHost: admin.authorityHost, disableInstanceDiscovery: true,
  });
  return {
    coffer,
    admin,
    adminCredential,
    dataDir,
    vaultUrl: (name: string) => coffer.endpoints.vaultUrl(name),
    /**
     * Creates a vault (in resource group rg-test) through the management API, as the bootstrap administrator, and
     * grants the administrator Key Vault Administrator on it: like a subscription Owner in Azure, it has no data access until granted.
     */
    createVault: (name: string, properties: Record<string, unknown> = {}) => createVaultAsAdmin(admin, adminCredential, name, properties),
    secretClient: (vault: string, options: ConstructorParameters<typeof SecretClient>[2] = {}) =>
      new SecretClient(coffer.endpoints.vaultUrl(vault), adminCredential, { retryOptions: { maxRetries: 0 }, ...options }),
    async close() {
      await coffer.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export type TestServer = Awaited<ReturnType<typeof startTestServer>>;

/** What startTestServer's createVault does, for any Coffer whose bootstrap administrator credentials you hold. */
export async function createVaultAsAdmin(admin: BootstrapAdminFile, adminCredential: ClientSecretCredential, name: string, properties: Record<string, unknown> = {}) {
  const token = await adminCredential.getToken(`${admin.managementEndpoint}/.default`);
  const arm = async (method: string, resource: string, body: unknown, apiVersion = '2025-05-01') => {
    const res = await fetch(`${admin.managementEndpoint}/subscriptions/${admin.subscriptionId}${resource}?api-version=${apiVersion}`, {
      method, headers: { authorization: `Bearer ${token!.token}`, 'content-type': 'application/json' }, body: JSON.stringify(body),
    });
    if (res.status >= 300) throw new Error(`${method} ${resource} failed: ${res.status} ${await res.text()}`);
    return res.json();
  };
  await arm('PUT', '/resourceGroups/rg-test', { location: 'local' }, '2022-09-01');
  const vault = await arm('PUT', `/resourceGroups/rg-test/providers/Microsoft.KeyVault/vaults/${name}`,
    { location: 'local', properties: { tenantId: admin.tenantId, sku: { family: 'A', name: 'standard' }, ...properties } });
  await arm('PUT', `/resourceGroups/rg-test/providers/Microsoft.KeyVault/vaults/${name}/providers/Microsoft.Authorization/roleAssignments/${crypto.randomUUID()}`, {
    properties: { roleDefinitionId: `/subscriptions/${admin.subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/00482a5a-887f-4fb3-b363-3b7fe8e74483`, principalId: admin.objectId },
  }, '2022-04-01');
  return vault;
}

export function seedTestCa(dataDir: string) {
  const caDir = process.env.COFFER_TEST_CA_DIR;
  if (!caDir) throw new Error('run tests with `npm test` (it provides the test CA)');
  fs.mkdirSync(path.join(dataDir, 'tls'), { recursive: true });
  for (const f of ['ca.crt', 'ca.key']) fs.copyFileSync(path.join(caDir, f), path.join(dataDir, 'tls', f));
}

export type { Coffer };
