import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import type { Database } from '../storage/schema.js';
import type { Clock } from '../clock.js';
import type { Endpoints } from '../endpoints.js';
import type { Directory } from '../identity/directory.js';
import type { Authorization } from './routes.js';
import type { VaultsService } from './vaults.js';
import { createArm } from './arm.js';
import { createResourceGroupsService } from './resource-groups.js';
import { createNetworkService, type NetworkService } from './network.js';
import { networkRoutes } from './network-routes.js';
import { createNetworkGate } from '../gates/network/gate.js';
import { createPrivateEndpointListeners } from '../gates/network/private-endpoint-listeners.js';
import type { GenerationCache } from '../storage/generation.js';

/** How many entries each of the network gate's caches keeps before it starts over. */
const CACHE_LIMITS = { trustedServices: 10_000, subnetPrefixes: 1_000, privateEndpoints: 1_000 };

/**
 * Coffer's network surface in one place, for the server to wire: the network resources (virtual networks, subnets,
 * private endpoints, trusted services), the data-plane network gate reading them, and this node's private-endpoint
 * listeners. What the gate reads (trusted services, subnet prefixes, private endpoints) is cached under the database's
 * cache generation, as the other gates' reads are: their tables bump it, so a change on any node reaches the next
 * request everywhere, and an unchanged generation costs no query.
 */
export function createNetworking(deps: {
  db: Kysely<Database>; clock: Clock; endpoints: Endpoints; directory: Directory; vaults: VaultsService; authorization: Authorization;
  subscriptionId: string; tenantId: string; adminObjectId: string;
  /** The database-validated cache the gate's reads are memoised in (refreshed per request by the first gate). */
  cache: GenerationCache;
  app: FastifyInstance; tls: { cert: string; key: string }; host: string; port: number;
  /** How often each node re-reads the private endpoints others created or deleted (default 5 s). */
  reconcileIntervalMs?: number;
}) {
  const network = createNetworkService({ db: deps.db, clock: deps.clock, subscriptionId: deps.subscriptionId });
  const listeners = createPrivateEndpointListeners({
    tls: deps.tls, mainHost: deps.host, port: deps.port, intervalMs: deps.reconcileIntervalMs,
    handler: (req, res) => deps.app.routing(req, res),
    addresses: () => network.privateEndpointAddresses(),
    onError: (address, err) => deps.app.log.error({ address, err: err.message }, 'cannot listen on a private endpoint address'),
  });
  const reads = cachedNetworkReads(network, deps.cache);
  return {
    network,
    gate: createNetworkGate({
      isTrustedService: (caller) => reads.isTrustedService(caller.principal.objectId),
      subnetPrefixes: reads.subnetPrefixes,
      privateLink: { arrivedAt: listeners.arrivedAt, vaultAt: reads.vaultAtAddress },
    }),
    /** Registers the Microsoft.Network routes and the trusted-services admin endpoints in the control plane's scope. */
    routes(scope: FastifyInstance) {
      const arm = createArm({ subscriptionId: deps.subscriptionId, tenantId: deps.tenantId, authorizer: deps.authorization.authorizer });
      const resourceGroups = createResourceGroupsService({ db: deps.db, clock: deps.clock, subscriptionId: deps.subscriptionId, vaults: deps.vaults });
      networkRoutes(scope, {
        arm, network, resourceGroups, vaults: deps.vaults, directory: deps.directory, endpoints: deps.endpoints,
        adminObjectId: deps.adminObjectId, onPrivateEndpointsChanged: () => listeners.reconcile(),
      });
    },
    /** Starts this node's private-endpoint listeners (after the main listener). */
    start: () => listeners.start(),
    close: () => listeners.close(),
  };
}

/**
 * What the network gate reads from the database, memoised under the cache generation: the tables behind each read
 * (trusted_services, subnets, private_endpoints) bump it, so an entry lives exactly until one of them changes.
 */
export function cachedNetworkReads(network: Pick<NetworkService, 'isTrustedService' | 'subnetPrefixes' | 'vaultAtAddress'>, cache: GenerationCache) {
  const trusted = cache.memo((principalId) => network.isTrustedService(principalId), CACHE_LIMITS.trustedServices);
  // Keyed by a rule set's whole list of subnet ids (as JSON: the ids are free text until matched).
  const prefixes = cache.memo((ids) => network.subnetPrefixes(JSON.parse(ids) as string[]), CACHE_LIMITS.subnetPrefixes);
  return {
    isTrustedService: trusted,
    subnetPrefixes: (subnetIds: string[]) => prefixes(JSON.stringify(subnetIds)),
    vaultAtAddress: cache.memo((address) => network.vaultAtAddress(address), CACHE_LIMITS.privateEndpoints),
  };
}
