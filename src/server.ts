import path from 'node:path';
import crypto from 'node:crypto';
import net, { type AddressInfo } from 'node:net';
import { openStorage } from './storage/engine.js';
import { createSettingsRepository } from './storage/settings.js';
import { unsealRootKey, type SealKind } from './crypto/seal.js';
import { createKeyring } from './crypto/envelope.js';
import { loadOrCreateTls } from './crypto/tls.js';
import { createClock } from './clock.js';
import { createEndpoints } from './endpoints.js';
import { createDirectory } from './identity/directory.js';
import { createSigningKeys } from './identity/signing-keys.js';
import { createTokenVerifier, issuerFor } from './identity/tokens.js';
import { identityRoutes } from './identity/routes.js';
import { createTrustedIssuers } from './identity/trusted-issuers.js';
import { createIdentityGate } from './gates/identity/gate.js';
import { bootstrap, refreshBootstrapFile } from './bootstrap.js';
import { createHttpApp } from './http/app.js';
import { installPipeline, createVaultResolver, apiVersionGate, objectNameGate } from './pipeline/pipeline.js';
import { createAuditLog } from './audit/audit-log.js';
import { createMonitor, type MonitorOptions } from './monitor/monitor.js';
import { azureMetricsRoutes } from './metrics/azure-metrics.js';
import { createGateCache } from './pipeline/gate-cache.js';
import { createGenerationCache, createGenerationReader } from './storage/generation.js';
import { createVaultsService } from './control-plane/vaults.js';
import { controlPlaneRoutes, createAuthorization, ensureBootstrapOwner } from './control-plane/routes.js';
import { createAuthorizationGate } from './gates/authorization/gate.js';
import { createNetworking } from './control-plane/networking.js';
import { createThrottle } from './gates/throttle/gate.js';
import { keyKindOf, type ThrottleProfile } from './gates/throttle/budgets.js';
import { createMetrics } from './metrics/metrics.js';
import { createObjectStore } from './objects/store.js';
import { createSecretsService } from './objects/secrets/service.js';
import { secretsRoutes } from './objects/secrets/routes.js';
import { createKeysService } from './objects/keys/service.js';
import { keysRoutes } from './objects/keys/routes.js';
import { createKeyRotationJob } from './objects/keys/rotation-job.js';
import { createHsmCollectionJob } from './objects/keys/hsm-gc-job.js';
import { createCertificatesService } from './objects/certificates/service.js';
import { installManagedObjectGuard } from './objects/certificates/managed-guard.js';
import { createCertificateContacts } from './objects/certificates/contacts.js';
import { createCertificateIssuers } from './objects/certificates/issuers.js';
import { createCertificateRenewalJob } from './objects/certificates/renewal-job.js';
import { createIntegratedCa } from './objects/certificates/integrated-ca.js';
import { certificatesRoutes } from './objects/certificates/routes.js';
import { createCertificateNotifications } from './objects/certificates/notifications.js';
import { createPkcs11Hsm, type Pkcs11Options } from './objects/keys/hsm.js';
import { createScheduler } from './scheduler/scheduler.js';
import { createEventGrid } from './events/event-grid.js';

export interface CofferOptions {
  host: string;
  port: number;
  dataDir: string;
  dnsSuffix: string;
  storageUrl?: string;
  tlsCert?: string;
  tlsKey?: string;
  seal: SealKind;
  sealPassphrase?: string;
  nodeId?: string;
  /** The port clients use in URLs, when a load balancer fronts this node on another port. */
  publicPort?: number;
  /** The host name clients use for the token service and management API (default localhost). */
  publicHost?: string;
  logLevel?: string;
  schedulerIntervalMs?: number;
  /** Data-plane throttling: Azure's budgets, none (when omitted), or Azure's scaled by a multiplier. The CLI defaults to azure. */
  throttle?: ThrottleProfile;
  /** Also serve /metrics unauthenticated over plain HTTP on 127.0.0.1 at this port (0: any free port). */
  metricsPort?: number;
  /** Diagnostic settings' delivery: storage-account root, dead-letter file, webhook retries (tests shorten them). */
  monitor?: MonitorOptions;
  /** The PKCS#11 token holding premium vaults' HSM keys (none: -HSM key types are refused). */
  pkcs11?: Pkcs11Options;
  /** Attestation authorities trusted by key release policies (secure key release of exportable keys). */
  attestationAuthorities?: string[];
}

export const DEFAULTS = { host: '127.0.0.1', port: 8443, dataDir: '.coffer', dnsSuffix: 'vault.localhost', seal: 'file' as SealKind };

/** Wires Coffer's services from explicit dependencies and starts listening. */
export async function startCoffer(options: CofferOptions) {
  const dataDir = path.resolve(options.dataDir);
  const storage = await openStorage({ url: options.storageUrl, dataDir });
  const settings = createSettingsRepository(storage.db);
  // The PKCS#11 token serves premium vaults' HSM keys and, with `--seal pkcs11`, seals the root key.
  const hsm = options.pkcs11 && createPkcs11Hsm(options.pkcs11);
  const rootKey = await unsealRootKey({ kind: options.seal, dataDir, passphrase: options.sealPassphrase, token: hsm }, settings);
  const keyring = createKeyring(rootKey);
  rootKey.fill(0);
  const clock = createClock(Number((await settings.get('clock.offset_ms')) ?? 0));
  const tls = await loadOrCreateTls({ dataDir, dnsSuffix: options.dnsSuffix, publicHost: options.publicHost, certFile: options.tlsCert, keyFile: options.tlsKey });

  const app = createHttpApp({ tls, logLevel: options.logLevel ?? 'info' });
  // URLs carry the real port, so a requested port 0 (tests) is resolved to a free one before routes are built.
  const port = options.port === 0 ? await freePort(options.host) : options.port;
  const endpoints = createEndpoints({ dnsSuffix: options.dnsSuffix, publicPort: options.publicPort ?? port, managementHost: options.publicHost });

  const directory = createDirectory({ db: storage.db, clock });
  const keys = createSigningKeys({ db: storage.db, keyring });
  const describe = {
    authorityHost: endpoints.authorityHost,
    managementEndpoint: endpoints.managementEndpoint,
    vaultDnsSuffix: endpoints.dnsSuffix,
    caCertPath: tls.caCertPath,
  };
  const deployment = await bootstrap({ settings, directory, dataDir, describe });
  refreshBootstrapFile(dataDir, describe);
  await keys.current();

  const issuer = issuerFor(endpoints.authorityHost, deployment.tenantId);
  // What the gates read per request, cached while the database's cache generation (bumped by triggers) stands still.
  const generationCache = createGenerationCache({ readGeneration: createGenerationReader(storage) });
  const identityGate = createIdentityGate({
    endpoints, tenantId: deployment.tenantId, directory: { getPrincipal: (objectId) => gateCache.getPrincipal(objectId) },
    verifyDataPlane: createTokenVerifier({ keys, issuer, audiences: endpoints.dataPlaneAudiences, tenantId: deployment.tenantId }),
    verifyManagement: createTokenVerifier({ keys, issuer, audiences: [endpoints.managementEndpoint, `${endpoints.managementEndpoint}/`], tenantId: deployment.tenantId }),
    verifyExternal: createTrustedIssuers({ db: storage.db, directory: { getPrincipal: (objectId) => gateCache.getPrincipal(objectId) }, cache: generationCache }).verify,
  });
  const eventGrid = createEventGrid({ storage, clock, keyring, endpoints, dataDir, cache: generationCache, onError: (err) => app.log.error({ err: (err as Error).message }, 'event delivery failed') });
  const vaults = createVaultsService({ storage, keyring, clock, endpoints, events: eventGrid.hooks });
  const authorization = createAuthorization({ db: storage.db, clock, memberships: directory.memberGroupsOf });
  const networking = createNetworking({
    db: storage.db, clock, endpoints, directory, vaults, authorization, app, tls, host: options.host, port,
    subscriptionId: deployment.subscriptionId, tenantId: deployment.tenantId, adminObjectId: deployment.adminObjectId,
    cache: generationCache,
  });
  const gateCache = createGateCache({
    cache: generationCache,
    getPrincipal: directory.getPrincipal, getVault: vaults.getByName, memberships: authorization.memberships, authorizer: authorization.authorizer,
  });
  await ensureBootstrapOwner(storage.db, authorization.assignments, deployment);
  const store = createObjectStore({ storage, keyring, clock });
  const secrets = createSecretsService({ store, endpoints, keyring, events: eventGrid.hooks });
  const keyObjects = createKeysService({ store, endpoints, keyring, clock, hsm, events: eventGrid.hooks,
    release: { authorities: options.attestationAuthorities ?? [], signingKey: () => keys.current() } });
  const nodeId = options.nodeId ?? crypto.randomUUID();
  const scheduler = createScheduler({
    storage, clock, nodeId, intervalMs: options.schedulerIntervalMs,
    onError: (job, err) => app.log.error({ job, err: (err as Error).message }, 'scheduled job failed'),
    onJobDone: (job, result) => app.log.info({ job, result, node: nodeId }, 'scheduled job done'),
  });
  scheduler.add({ name: 'purge-deleted-objects', run: (now) => store.purgeDue(now) });
  scheduler.add({ name: 'purge-deleted-vaults', run: (now) => vaults.purgeDue(now) });
  scheduler.add(createKeyRotationJob({ storage, keys: keyObjects }));
  if (hsm) scheduler.add(createHsmCollectionJob({ storage, hsm }));
  const certificates = createCertificatesService({ store, endpoints, keyring, clock, ca: createIntegratedCa({ settings, keyring, clock }), events: eventGrid.hooks, db: storage.db });
  const certificateContacts = createCertificateContacts({ db: storage.db, endpoints });
  const certificateNotifications = createCertificateNotifications({ db: storage.db, contacts: certificateContacts, dataDir });
  scheduler.add(createCertificateRenewalJob({ storage, certificates, notifications: certificateNotifications }));
  eventGrid.schedule(scheduler);

  const throttle = createThrottle({
    // `coffer server start` defaults to azure; embedders (and the test harness, whose suites create keys faster than
    // Azure's 20 per 10 s) opt in.
    profile: options.throttle ?? 'off',
    keyKind: async (vault, name, version) => keyKindOf((await keyObjects.get(vault, name, version)).key),
    liveNodes: () => scheduler.liveNodes(),
  });
  const metrics = createMetrics({ saturation: throttle.saturation });
  const monitor = createMonitor({
    storage, clock, dataDir, nodeId, subscriptionId: deployment.subscriptionId, tenantId: deployment.tenantId,
    authorizer: authorization.authorizer, vaults, registry: metrics.registry, options: options.monitor,
    onError: (route, err) => app.log.error({ route, err: (err as Error).message }, 'audit delivery failed'),
  });
  const audit = createAuditLog({
    storage, origin: nodeId, onCommitted: () => monitor.router.kick(),
    vaultIdForHost: async (host) => {
      const name = endpoints.vaultFromHost(host);
      // The gate cache: 401s (every SDK client's first request) then cost no database read.
      return name === undefined ? undefined : (await gateCache.getVault(name))?.resourceId;
    },
  });
  installPipeline(app, {
    endpoints,
    audit,
    gates: [gateCache.gate, identityGate, createVaultResolver({ endpoints, getVault: gateCache.getVault }), apiVersionGate, objectNameGate,
      createAuthorizationGate({ authorizer: gateCache.authorizer, memberships: gateCache.memberships }),
      networking.gate, throttle.gate],
  });
  metrics.install(app);
  await app.register(async (scope) => {
    identityRoutes(scope, {
      db: storage.db, directory, keys, endpoints, tenantId: deployment.tenantId, subscriptionId: deployment.subscriptionId, adminObjectId: deployment.adminObjectId,
    });
    controlPlaneRoutes(scope, {
      db: storage.db, authorization, directory,
      vaults, tenantId: deployment.tenantId, subscriptionId: deployment.subscriptionId, adminObjectId: deployment.adminObjectId,
      clock, settings, runScheduler: () => scheduler.runNow(),
    });
    networking.routes(scope);
    eventGrid.routes(scope, { vaults, authorizer: authorization.authorizer, subscriptionId: deployment.subscriptionId, tenantId: deployment.tenantId });
    // Before the keys' and secrets' routes: it attaches itself to those of the operations it guards.
    installManagedObjectGuard(scope, { certificates });
    secretsRoutes(scope, { secrets, endpoints });
    keysRoutes(scope, { keys: keyObjects, endpoints });
    certificatesRoutes(scope, {
      certificates, contacts: certificateContacts,
      issuers: createCertificateIssuers({ db: storage.db, endpoints, keyring, clock }), endpoints,
    });
    scope.get('/healthz', { config: { plane: 'public', operation: 'Health' } }, async () => ({ status: 'ok', node: nodeId }));
    metrics.routes(scope, { adminObjectId: deployment.adminObjectId });
    monitor.routes(scope);
    azureMetricsRoutes(scope, { arm: monitor.arm, registry: metrics.registry, vaults, startedAt: Date.now(), now: () => clock.now() });
  });
  await app.listen({ host: options.host, port });
  await networking.start();
  const metricsListener = options.metricsPort === undefined ? undefined : await metrics.listen(options.metricsPort);
  scheduler.start();
  monitor.router.start();

  return {
    app,
    port,
    endpoints,
    deployment,
    storage,
    dataDir,
    caCertPath: tls.caCertPath,
    clock,
    scheduler,
    metricsPort: metricsListener?.port,
    async close() {
      await scheduler.stop();
      await eventGrid.close();
      await metricsListener?.close();
      await networking.close();
      await app.close();
      await audit.flush();
      await monitor.router.stop();
      await storage.close();
    },
  };
}

export type Coffer = Awaited<ReturnType<typeof startCoffer>>;

function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer().once('error', reject).listen(0, host, () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}
