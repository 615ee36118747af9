import { ClientSecretCredential, type TokenCredential } from '@azure/identity';
import { SecretClient } from '@azure/keyvault-secrets';
import type { TestServer } from './server.js';

export interface TestPrincipal {
  objectId: string;
  appId: string;
  credential: ClientSecretCredential;
}

export interface ArmResponse {
  status: number;
  body: any;
}

/** Raw management-API calls as one principal (for what no SDK in node_modules covers: groups, Microsoft.Authorization). */
export function armClient(server: TestServer, credential: TokenCredential) {
  const { admin } = server;
  return async (method: string, path: string, body?: unknown, apiVersion = '2022-04-01'): Promise<ArmResponse> => {
    const token = await credential.getToken(`${admin.managementEndpoint}/.default`);
    const sep = path.includes('?') ? '&' : '?';
    const res = await fetch(`${admin.managementEndpoint}${path}${sep}api-version=${apiVersion}`, {
      method,
      headers: { authorization: `Bearer ${token!.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
}

/** A new service principal with a client secret, made by the administrator through /coffer/admin/service-principals. */
export async function createPrincipal(server: TestServer, displayName: string): Promise<TestPrincipal> {
  const { status, body } = await armClient(server, server.adminCredential)('POST', '/coffer/admin/service-principals', { displayName });
  if (status !== 201) throw new Error(`principal create failed: ${status} ${JSON.stringify(body)}`);
  const credential = new ClientSecretCredential(body.tenantId, body.appId, body.clientSecret, {
    authorityHost: server.admin.authorityHost, disableInstanceDiscovery: true,
  });
  return { objectId: body.objectId, appId: body.appId, credential };
}

export const roleDefinitionId = (server: TestServer, guid: string) =>
  `/subscriptions/${server.admin.subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/${guid}`;

/** Assigns a role as the administrator; returns the assignment's id. */
export async function assignRole(server: TestServer, scope: string, roleGuid: string, principalId: string) {
  const { status, body } = await armClient(server, server.adminCredential)('PUT', `${scope}/providers/Microsoft.Authorization/roleAssignments/${crypto.randomUUID()}`, {
    properties: { roleDefinitionId: roleDefinitionId(server, roleGuid), principalId },
  });
  if (status !== 201) throw new Error(`role assignment failed: ${status} ${JSON.stringify(body)}`);
  return body.id as string;
}

export const secretClientAs = (server: TestServer, vault: string, credential: TokenCredential) =>
  new SecretClient(server.vaultUrl(vault), credential, { retryOptions: { maxRetries: 0 } });
