import type { Principal } from '../identity/directory.js';
import type { TokenClaims } from '../identity/tokens.js';
import type { Vault } from '../control-plane/vaults.js';

/** Which host family a route belongs to: `vault` routes answer on `{vault}.{dnsSuffix}`, the rest elsewhere. */
export type Plane = 'vault' | 'management' | 'token' | 'public';

export interface RouteConfig {
  plane: Plane;
  /** Azure's operation name for audit and metrics, e.g. SecretGet. */
  operation: string;
}

export interface Caller {
  claims: TokenClaims;
  principal: Principal;
}

/** Everything the pipeline learns about a request, as it walks the gates. */
export interface RequestContext {
  requestId: string;
  startedAt: number;
  plane: Plane;
  operation: string;
  apiVersion?: string;
  caller?: Caller;
  vault?: Vault;
}

declare module 'fastify' {
  interface FastifyRequest {
    coffer: RequestContext;
  }
  interface FastifyContextConfig {
    plane?: Plane;
    operation?: string;
  }
}
