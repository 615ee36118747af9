import type { VaultProperties } from '../control-plane/vaults.js';

/** Azure's DeletionRecoveryLevel for a vault's settings (soft delete is always on). */
export function recoveryLevel(p: Pick<VaultProperties, 'softDeleteRetentionInDays' | 'enablePurgeProtection'>): string {
  const customized = p.softDeleteRetentionInDays < 90 ? 'CustomizedRecoverable' : 'Recoverable';
  return p.enablePurgeProtection ? customized : `${customized}+Purgeable`;
}
