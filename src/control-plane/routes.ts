import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Vault, VaultsService } from './vaults.js';
import { KeyVaultError, forbidden } from '../http/errors.js';
import type { Clock } from '../clock.js';
import { parseDuration } from '../clock.js';
import type { SettingsRepository } from '../storage/settings.js';

type VaultParams = { subscriptionId: string; resourceGroup: string; vaultName: string };

const vaultBody = {
  type: 'object',
  required: ['location', 'properties'],
  properties: {
    location: { type: 'string', minLength: 1 },
    tags: { type: 'object', additionalProperties: { type: 'string' } },
    properties: {
      type: 'object',
      properties: {
        tenantId: { type: 'string' },
        sku: { type: 'object', properties: { family: { type: 'string' }, name: { type: 'string', enum: ['standard', 'premium', 'Standard', 'Premium'] } } },
        enableRbacAuthorization: { type: 'boolean' },
        softDeleteRetentionInDays: { type: 'integer' },
        enablePurgeProtection: { type: 'boolean' },
      },
    },
  },
} as const;

type VaultBody = {
  location: string;
  tags?: Record<string, string>;
  properties: { sku?: { name?: string }; enableRbacAuthorization?: boolean; softDeleteRetentionInDays?: number; enablePurgeProtection?: boolean };
};

export const toArmVault = (v: Vault) => ({
  id: v.resourceId,
  name: v.name,
  type: 'Microsoft.KeyVault/vaults',
  location: v.location,
  tags: v.tags,
  properties: v.properties,
});

/**
 * The ARM-compatible management API (minimal until the control-plane issue): create, read and list vaults,
 * and the administrator's test clock.
 */
export function controlPlaneRoutes(app: FastifyInstance, deps: {
  vaults: VaultsService; tenantId: string; subscriptionId: string; adminObjectId: string; clock: Clock; settings: SettingsRepository;
  runScheduler: () => Promise<void>;
}) {
  const { vaults, tenantId } = deps;
  const config = (operation: string) => ({ config: { plane: 'management' as const, operation } });
  const checkSubscription = (id: string) => {
    if (id.toLowerCase() !== deps.subscriptionId) {
      throw new KeyVaultError(404, 'SubscriptionNotFound', `The subscription '${id}' could not be found.`);
    }
  };
  const requireAdmin = (req: FastifyRequest) => {
    if (req.coffer.caller?.principal.objectId !== deps.adminObjectId) throw forbidden('Only the deployment administrator may do this.');
  };

  app.put<{ Params: VaultParams; Body: VaultBody }>('/subscriptions/:subscriptionId/resourceGroups/:resourceGroup/providers/Microsoft.KeyVault/vaults/:vaultName',
    { ...config('VaultPut'), schema: { body: vaultBody } }, async (req, reply) => {
      checkSubscription(req.params.subscriptionId);
      const p = req.body.properties;
      const vault = await vaults.create({
        name: req.params.vaultName,
        subscriptionId: deps.subscriptionId,
        resourceGroup: req.params.resourceGroup,
        location: req.body.location,
        tenantId,
        tags: req.body.tags,
        sku: p.sku?.name?.toLowerCase() as 'standard' | 'premium' | undefined,
        enableRbacAuthorization: p.enableRbacAuthorization,
        softDeleteRetentionInDays: p.softDeleteRetentionInDays,
        enablePurgeProtection: p.enablePurgeProtection,
      });
      reply.code(200);
      return toArmVault(vault);
    });

  app.get<{ Params: VaultParams }>('/subscriptions/:subscriptionId/resourceGroups/:resourceGroup/providers/Microsoft.KeyVault/vaults/:vaultName',
    config('VaultGet'), async (req) => {
      checkSubscription(req.params.subscriptionId);
      const vault = await vaults.getByName(req.params.vaultName);
      if (!vault || vault.resourceGroup.toLowerCase() !== req.params.resourceGroup.toLowerCase()) {
        throw new KeyVaultError(404, 'ResourceNotFound', `The Resource 'Microsoft.KeyVault/vaults/${req.params.vaultName}' under resource group '${req.params.resourceGroup}' was not found.`);
      }
      return toArmVault(vault);
    });

  app.get<{ Params: { subscriptionId: string; resourceGroup?: string } }>('/subscriptions/:subscriptionId/resourceGroups/:resourceGroup/providers/Microsoft.KeyVault/vaults',
    config('VaultList'), async (req) => {
      checkSubscription(req.params.subscriptionId);
      return { value: (await vaults.list({ subscriptionId: deps.subscriptionId, resourceGroup: req.params.resourceGroup })).map(toArmVault) };
    });

  app.get<{ Params: { subscriptionId: string } }>('/subscriptions/:subscriptionId/providers/Microsoft.KeyVault/vaults',
    config('VaultList'), async (req) => {
      checkSubscription(req.params.subscriptionId);
      return { value: (await vaults.list({ subscriptionId: deps.subscriptionId })).map(toArmVault) };
    });

  app.post<{ Body: { advance: string } }>('/coffer/admin/clock/advance', {
    ...config('ClockAdvance'),
    schema: { body: { type: 'object', required: ['advance'], properties: { advance: { type: 'string' } } } },
  }, async (req) => {
    requireAdmin(req);
    let ms: number;
    try {
      ms = parseDuration(req.body.advance);
    } catch (err) {
      throw new KeyVaultError(400, 'BadParameter', (err as Error).message);
    }
    // Added in the database, not to this node's copy: another node may have advanced the shared clock since.
    deps.clock.setOffset(await deps.settings.addToInteger('clock.offset_ms', ms));
    await deps.runScheduler();
    return { now: new Date(deps.clock.now()).toISOString(), offsetMs: deps.clock.offsetMs() };
  });
}
