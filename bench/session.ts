import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { BootstrapAdminFile } from '../src/bootstrap.js';
import { request, requestOk } from './http.js';

export const VAULT = 'bench';
export const API = 'api-version=7.5';
/** The built-in role "Key Vault Administrator" (all data actions on secrets, keys and certificates). */
const KEY_VAULT_ADMINISTRATOR = '00482a5a-887f-4fb3-b363-3b7fe8e74483';

export type Session = Awaited<ReturnType<typeof openSession>>;

/** Tokens for the bootstrap administrator, a vault, and a helper to call it (as an SDK would, over HTTPS). */
export async function openSession(opts: { dataDir: string; port: number; publicPort?: number }) {
  const { dataDir, port } = opts;
  // Nodes behind one public port share the token audience and the vault host clients name; each is reached on its own port.
  const publicPort = opts.publicPort ?? port;
  const admin = JSON.parse(fs.readFileSync(path.join(dataDir, 'bootstrap-admin.json'), 'utf8')) as BootstrapAdminFile;
  const ca = fs.readFileSync(admin.caCertPath!, 'utf8');
  const token = async (scope: string) => JSON.parse(await requestOk({
    port, ca, host: 'localhost', method: 'POST', path: `/${admin.tenantId}/oauth2/v2.0/token`,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: admin.clientId, client_secret: admin.clientSecret, scope }).toString(),
  })).access_token as string;
  const management = await token(`${admin.managementEndpoint}/.default`);
  const arm = (method: string, resource: string, apiVersion: string, body?: unknown) => request({
    port, ca, host: 'localhost', method, path: `/subscriptions/${admin.subscriptionId}${resource}?api-version=${apiVersion}`,
    headers: { authorization: `Bearer ${management}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const vaultResource = `/resourceGroups/rg-bench/providers/Microsoft.KeyVault/vaults/${VAULT}`;
  if ((await arm('GET', vaultResource, '2025-05-01')).status === 404) {
    // As an Azure subscription owner, the administrator manages the vault but reads its secrets only once granted a role.
    for (const [method, resource, apiVersion, body] of [
      ['PUT', '/resourceGroups/rg-bench', '2022-09-01', { location: 'local' }],
      ['PUT', vaultResource, '2025-05-01', { location: 'local', properties: { tenantId: admin.tenantId, sku: { family: 'A', name: 'standard' } } }],
      ['PUT', `${vaultResource}/providers/Microsoft.Authorization/roleAssignments/${crypto.randomUUID()}`, '2022-04-01', {
        properties: { roleDefinitionId: `/subscriptions/${admin.subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/${KEY_VAULT_ADMINISTRATOR}`, principalId: admin.objectId },
      }],
    ] as const) {
      const res = await arm(method, resource, apiVersion, body);
      if (res.status >= 300) throw new Error(`${method} ${resource}: ${res.status} ${res.body.slice(0, 500)}`);
    }
  }
  const dataPlane = await token(`https://${admin.vaultDnsSuffix}:${publicPort}/.default`);
  const vaultHeaders = { host: `${VAULT}.${admin.vaultDnsSuffix}:${publicPort}`, authorization: `Bearer ${dataPlane}`, 'content-type': 'application/json' };
  return {
    vaultHeaders,
    vaultUrl: `https://127.0.0.1:${port}`,
    vault: (method: string, p: string, body?: string) =>
      requestOk({ port, ca, host: vaultHeaders.host.replace(/:\d+$/, ''), method, path: `${p}${p.includes('?') ? '&' : '?'}${API}`, headers: vaultHeaders, body }),
  };
}
