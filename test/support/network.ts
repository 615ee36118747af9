import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { SecretClient } from '@azure/keyvault-secrets';
import type { TokenCredential } from '@azure/core-auth';
import type { TestServer } from './server.js';
import { armClient } from './arm.js';

/** What the network tests speak: Microsoft.Network and Microsoft.KeyVault api-versions. */
export const NETWORK_API = '2024-05-01';
export const VAULT_API = '2025-05-01';

/** A client that is `localAddress` on the wire (the whole of 127.0.0.0/8 is loopback). */
export const agentFrom = (localAddress: string) => new https.Agent({ localAddress, keepAlive: false });

/** A client whose DNS sends every vault name to `address`, as Azure's private DNS zone sends it to a private endpoint. */
export const agentTo = (address: string) => {
  const lookup = ((_host: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) =>
    (options?.all ? callback(null, [{ address, family: 4 }]) : callback(null, address, 4))) as unknown as LookupFunction;
  return new https.Agent({ keepAlive: false, lookup });
};

export const secretClientWith = (server: TestServer, vault: string, agent: https.Agent, credential: TokenCredential = server.adminCredential) =>
  new SecretClient(server.vaultUrl(vault), credential, { retryOptions: { maxRetries: 0 }, agent });

/** A raw data-plane GET as the administrator through `agent`, for the exact denial body and headers. */
export async function rawVaultGet(server: TestServer, vault: string, path: string, agent: https.Agent) {
  const token = await server.adminCredential.getToken(`${server.coffer.endpoints.dataPlaneAudiences[0]}/.default`);
  const url = new URL(`${server.vaultUrl(vault).replace(/\/$/, '')}${path}?api-version=7.5`);
  return new Promise<{ status: number; headers: Record<string, unknown>; body: any }>((resolve, reject) => {
    https.get(url, { agent, headers: { authorization: `Bearer ${token!.token}` } }, (res) => {
      let text = '';
      res.on('data', (c) => { text += c; }).on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text ? JSON.parse(text) : undefined }));
    }).on('error', reject);
  });
}

/** Management calls as the administrator, and the ids of rg-test (where startTestServer's createVault puts vaults). */
export function networkArm(server: () => TestServer) {
  const rg = () => `/subscriptions/${server().admin.subscriptionId}/resourceGroups/rg-test`;
  return {
    arm: (method: string, path: string, body?: unknown, apiVersion = NETWORK_API) => armClient(server(), server().adminCredential)(method, path, body, apiVersion),
    rg,
    vaultPath: (name: string) => `${rg()}/providers/Microsoft.KeyVault/vaults/${name}`,
    vnetPath: (name: string) => `${rg()}/providers/Microsoft.Network/virtualNetworks/${name}`,
    endpointPath: (name: string) => `${rg()}/providers/Microsoft.Network/privateEndpoints/${name}`,
  };
}

export const refusedByNetwork = (err: any) => err.statusCode === 403;
