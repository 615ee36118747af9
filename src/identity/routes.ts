import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import type { Database } from '../storage/schema.js';
import type { Endpoints } from '../endpoints.js';
import type { Directory } from './directory.js';
import type { SigningKeys } from './signing-keys.js';
import { tokenRoutes } from './token-routes.js';
import { graphRoutes } from './graph-routes.js';
import { createManagedIdentityBindings, managedIdentityRoutes } from './managed-identity.js';
import { managedIdentityEndpoints } from './managed-identity-endpoints.js';
import { createTrustedIssuers, trustedIssuerRoutes } from './trusted-issuers.js';

/** Everything the identity area serves: the token service, the Graph-shaped directory API, managed identities and trusted issuers. */
export function identityRoutes(app: FastifyInstance, deps: {
  db: Kysely<Database>; directory: Directory; keys: SigningKeys; endpoints: Endpoints;
  tenantId: string; subscriptionId: string; adminObjectId: string;
}) {
  const bindings = createManagedIdentityBindings({ db: deps.db, directory: deps.directory });
  tokenRoutes(app, deps);
  managedIdentityEndpoints(app, { bindings, keys: deps.keys, endpoints: deps.endpoints });
  graphRoutes(app, deps);
  managedIdentityRoutes(app, { ...deps, bindings });
  trustedIssuerRoutes(app, { trustedIssuers: createTrustedIssuers({ db: deps.db, directory: deps.directory }), directory: deps.directory, adminObjectId: deps.adminObjectId });
}
