/**
 * Azure Key Vault's service limits (transactions per 10 seconds, per vault), expressed as weights on one budget:
 * enforcement is on the weighted sum, as Azure's table says ("The throttling thresholds are weighted, and
 * enforcement is on their sum"). One unit is one secret/vault transaction, so a vault's budget is 4,000 units and an
 * operation whose own limit is L costs 4,000 / L units (an RSA-4096 software-key sign costs 8).
 * Source: learn.microsoft.com/azure/key-vault/general/service-limits (current table).
 */
export const WINDOW_MS = 10_000;
export const VAULT_BUDGET = 4000;
/** "A subscription-wide limit for all transaction types is five times per key vault limit." */
export const SUBSCRIPTION_FACTOR = 5;

const SECRET_CREATE_LIMIT = 300;
const KEY_CREATE_LIMIT = { software: 20, hsm: 10 };
/** "All other transactions" per key type, for software keys; HSM-protected keys allow half. */
const KEY_OTHER_LIMIT: Record<string, number> = { 'RSA-2048': 4000, 'RSA-3072': 1000, 'RSA-4096': 500, EC: 4000 };

/** What the throttle needs to know about a key an operation uses. */
export interface KeyKind {
  hsm: boolean;
  /** `RSA-2048`, `RSA-3072`, `RSA-4096` or `EC` (every curve shares EC's limits). */
  type: string;
}

/** Operations that create a key version: weighed as Azure's "CREATE key" column. */
const KEY_CREATES = new Set(['KeyCreate', 'KeyRotate']);
/** Operations on one key whose weight depends on that key's type ("all other transactions" of its row). */
export const KEY_TYPED_OPERATIONS = new Set(['KeyGet', 'KeyUpdate', 'KeySign', 'KeyVerify', 'KeyEncrypt', 'KeyDecrypt', 'KeyWrap', 'KeyUnwrap', 'KeyRelease', 'KeyBackup']);

/**
 * The cost of one operation in budget units. Key creates are weighed as software creates: the key type (and so
 * HSM or not) is in the request body, which is not yet read when the gate runs.
 */
export function operationCost(operation: string, key?: KeyKind): number {
  if (operation === 'SecretSet') return VAULT_BUDGET / SECRET_CREATE_LIMIT;
  if (KEY_CREATES.has(operation)) return VAULT_BUDGET / KEY_CREATE_LIMIT.software;
  if (KEY_TYPED_OPERATIONS.has(operation) && key) {
    const limit = KEY_OTHER_LIMIT[key.type] ?? KEY_OTHER_LIMIT['RSA-2048'];
    return VAULT_BUDGET / (key.hsm ? limit / 2 : limit);
  }
  return 1;
}

/** The throttle's kind of a key, from its public JWK as the keys service returns it. */
export function keyKindOf(jwk: { kty?: string; n?: string }): KeyKind {
  const kty = jwk.kty ?? 'RSA';
  const hsm = kty.endsWith('-HSM');
  if (kty.startsWith('EC')) return { hsm, type: 'EC' };
  const bits = jwk.n ? Buffer.from(jwk.n, 'base64url').length * 8 : 2048;
  return { hsm, type: bits > 3072 ? 'RSA-4096' : bits > 2048 ? 'RSA-3072' : 'RSA-2048' };
}

/** `--throttle azure|off|<multiplier>`: Azure's budgets, none, or Azure's scaled (0.01 = a hundredth). */
export type ThrottleProfile = 'azure' | 'off' | number;

export function parseThrottleProfile(value: string): ThrottleProfile {
  if (value === 'azure' || value === 'off') return value;
  const multiplier = Number(value);
  if (!Number.isFinite(multiplier) || multiplier <= 0) throw new Error(`--throttle must be azure, off or a positive multiplier, not '${value}'`);
  return multiplier;
}

export const profileMultiplier = (profile: ThrottleProfile): number | undefined =>
  profile === 'off' ? undefined : profile === 'azure' ? 1 : profile;
