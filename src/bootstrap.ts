import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { SettingsRepository } from './storage/settings.js';
import type { Directory } from './identity/directory.js';

export interface Deployment {
  tenantId: string;
  subscriptionId: string;
  adminObjectId: string;
}

export interface BootstrapAdminFile {
  tenantId: string;
  subscriptionId: string;
  clientId: string;
  clientSecret: string;
  objectId: string;
  authorityHost: string;
  managementEndpoint: string;
  vaultDnsSuffix: string;
  caCertPath?: string;
}

/**
 * First start: a tenant, a default subscription and an administrator service principal. Only the node that wins the
 * race to create the tenant creates the administrator and writes `bootstrap-admin.json` (0600) — the one place its
 * client secret is ever shown.
 */
export async function bootstrap(deps: {
  settings: SettingsRepository; directory: Directory; dataDir: string;
  describe: Omit<BootstrapAdminFile, 'tenantId' | 'subscriptionId' | 'clientId' | 'clientSecret' | 'objectId'>;
}): Promise<Deployment> {
  const { settings, directory } = deps;
  const candidate = crypto.randomUUID();
  const tenantId = await settings.putIfAbsent('tenant_id', candidate);
  const subscriptionId = await settings.putIfAbsent('subscription_id', crypto.randomUUID());
  if (tenantId === candidate) {
    const admin = await directory.createServicePrincipal({ displayName: 'coffer-bootstrap-admin', tenantId });
    const secret = await directory.addClientSecret(admin.objectId);
    await settings.put('admin_object_id', admin.objectId);
    const file: BootstrapAdminFile = {
      tenantId, subscriptionId, clientId: admin.appId!, clientSecret: secret.secretText, objectId: admin.objectId, ...deps.describe,
    };
    fs.mkdirSync(deps.dataDir, { recursive: true });
    fs.writeFileSync(path.join(deps.dataDir, 'bootstrap-admin.json'), JSON.stringify(file, null, 2) + '\n', { mode: 0o600 });
  }
  let adminObjectId = await settings.get('admin_object_id');
  for (let i = 0; !adminObjectId && i < 50; i++) {
    // Another node is finishing the bootstrap.
    await new Promise((r) => setTimeout(r, 100));
    adminObjectId = await settings.get('admin_object_id');
  }
  if (!adminObjectId) throw new Error('bootstrap did not complete: no administrator');
  return { tenantId, subscriptionId, adminObjectId };
}

/** Keeps the bootstrap file's descriptive fields in step with how this node was started. */
export function refreshBootstrapFile(dataDir: string, describe: Partial<BootstrapAdminFile>) {
  const file = path.join(dataDir, 'bootstrap-admin.json');
  if (!fs.existsSync(file)) return;
  const current = JSON.parse(fs.readFileSync(file, 'utf8'));
  fs.writeFileSync(file, JSON.stringify({ ...current, ...describe }, null, 2) + '\n', { mode: 0o600 });
}
