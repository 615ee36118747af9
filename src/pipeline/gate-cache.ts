import type { Principal } from '../identity/directory.js';
import type { Vault } from '../control-plane/vaults.js';
import type { Authorizer } from '../gates/authorization/evaluate.js';
import type { GenerationCache } from '../storage/generation.js';
import type { Gate } from './pipeline.js';

/** How many entries each cache keeps before it starts over (it also starts over whenever the generation moves). */
const LIMITS = { principals: 10_000, vaults: 1_000, memberships: 10_000, decisions: 50_000 };

/**
 * What the gates read on every request — the principal of a token, the vault of a host name, a principal's groups,
 * and the caller's RBAC decision for an action on a resource — cached under the database's cache generation
 * (`src/storage/generation.ts`). The `gate` goes first in the pipeline: it reads the generation once per request,
 * so a change committed by any node (a revoked role assignment, a disabled principal, a firewall rule) reaches the
 * next request on every node.
 */
export function createGateCache(deps: {
  cache: GenerationCache;
  getPrincipal(objectId: string): Promise<Principal | undefined>;
  getVault(name: string): Promise<Vault | undefined>;
  memberships(principalId: string): Promise<string[]>;
  authorizer: Authorizer;
}) {
  const { cache, authorizer } = deps;
  const decisions = cache.memo((key) => {
    const [principalId, resource, dataAction] = key.split('\n');
    return authorizer.findDataActionGrant(principalId, resource, dataAction);
  }, LIMITS.decisions);
  const vaults = cache.memo(deps.getVault, LIMITS.vaults);

  const gate: Gate = {
    name: 'cache-generation',
    appliesTo: (ctx) => ctx.plane === 'vault' || ctx.plane === 'management',
    check: () => cache.refresh(),
  };
  return {
    gate,
    getPrincipal: cache.memo(deps.getPrincipal, LIMITS.principals),
    // Vault names compare case-insensitively.
    getVault: (name: string) => vaults(name.toLowerCase()),
    memberships: cache.memo(deps.memberships, LIMITS.memberships),
    /** The authorizer with data-action decisions cached; control-plane checks are rare and stay uncached. */
    authorizer: {
      ...authorizer,
      findDataActionGrant: (principalId, resource, dataAction) => decisions(`${principalId}\n${resource}\n${dataAction}`),
    } satisfies Authorizer,
  };
}
