import type { FastifyRequest } from 'fastify';
import type { Gate } from '../../pipeline/pipeline.js';
import type { Vault } from '../../control-plane/vaults.js';
import { KeyVaultError } from '../../http/errors.js';
import { KEY_TYPED_OPERATIONS, SUBSCRIPTION_FACTOR, VAULT_BUDGET, operationCost, profileMultiplier, type KeyKind, type ThrottleProfile } from './budgets.js';
import { createSlidingWindow, type SlidingWindow } from './sliding-window.js';

export interface ThrottleDeps {
  profile: ThrottleProfile;
  /** The kind of the key an operation names (undefined when there is no such key: it is then weighed as RSA-2048). */
  keyKind?(vault: Vault, name: string, version: string | undefined): Promise<KeyKind | undefined>;
  /**
   * How many nodes share the cluster's budgets: each node enforces its share (see docs/MULTINODE.md); the scheduler
   * counts them from the nodes' heartbeats. 1 when omitted.
   */
  liveNodes?(): number;
  /** Monotonic milliseconds; budgets follow real time, not the service clock a test may advance. */
  now?(): number;
}

const throttled = (reason: string, retryAfterMs: number) => new KeyVaultError(429, 'Throttled',
  `Request was not processed because too many requests were received. Reason: ${reason}`, undefined,
  { 'retry-after': String(Math.max(1, Math.ceil(retryAfterMs / 1000))) });

/**
 * The data plane's throttling step, last of the gates (only requests that would otherwise run spend budget):
 * Azure's per-vault budget per 10-second window, weighted by operation and key type, within a subscription-wide
 * budget of five vaults' worth. Over budget: 429 Throttled with a Retry-After of the seconds until the budget frees.
 */
export function createThrottle(deps: ThrottleDeps) {
  const multiplier = profileMultiplier(deps.profile);
  const now = deps.now ?? (() => performance.now());
  const liveNodes = deps.liveNodes ?? (() => 1);
  const vaults = new Map<string, { name: string; window: SlidingWindow }>();
  const subscriptions = new Map<string, SlidingWindow>();
  const vaultBudget = () => (VAULT_BUDGET * (multiplier ?? 1)) / Math.max(1, liveNodes());

  async function costOf(req: FastifyRequest, vault: Vault, operation: string) {
    const params = (req.params ?? {}) as { name?: string; version?: string };
    const key = KEY_TYPED_OPERATIONS.has(operation) && params.name && deps.keyKind
      ? await deps.keyKind(vault, params.name, params.version || undefined).catch(() => undefined) : undefined;
    return operationCost(operation, key);
  }

  const gate: Gate = {
    name: 'throttle',
    appliesTo: (ctx) => multiplier !== undefined && ctx.plane === 'vault',
    async check(req, ctx) {
      const vault = ctx.vault!;
      const cost = await costOf(req, vault, ctx.operation);
      const at = now();
      const budget = vaultBudget();
      const vaultWindow = vaults.get(vault.resourceId)?.window ?? createSlidingWindow();
      vaults.set(vault.resourceId, { name: vault.name, window: vaultWindow });
      const subscriptionWindow = subscriptions.get(vault.subscriptionId) ?? createSlidingWindow();
      subscriptions.set(vault.subscriptionId, subscriptionWindow);
      if (!vaultWindow.fits(at, cost, budget)) throw throttled('VaultRequestTypeLimitReached', vaultWindow.msUntilFits(at, cost, budget));
      const subscriptionBudget = budget * SUBSCRIPTION_FACTOR;
      if (!subscriptionWindow.fits(at, cost, subscriptionBudget)) {
        throw throttled('SubscriptionRequestTypeLimitReached', subscriptionWindow.msUntilFits(at, cost, subscriptionBudget));
      }
      vaultWindow.add(at, cost);
      subscriptionWindow.add(at, cost);
    },
  };

  return {
    gate,
    /** Each vault's budget use in the current window, in percent (Azure's SaturationShoebox). */
    saturation(): { vault: string; percent: number }[] {
      if (multiplier === undefined) return [];
      const at = now();
      const budget = vaultBudget();
      return [...vaults.values()].map(({ name, window }) => ({ vault: name, percent: Math.min(100, (window.used(at) / budget) * 100) }));
    },
  };
}

