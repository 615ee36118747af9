import crypto from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { KeyVaultError, badParameter, notFound } from '../http/errors.js';
import type { Endpoints } from '../endpoints.js';
import type { RequestContext } from './context.js';
import type { AuditLog } from '../audit/audit-log.js';
import { checkObjectName } from '../objects/names.js';
import { normaliseAddress } from '../gates/network/ip-rules.js';

/** One step of the request pipeline; throws a KeyVaultError to stop the request. */
export interface Gate {
  name: string;
  appliesTo(ctx: RequestContext): boolean;
  check(req: FastifyRequest, ctx: RequestContext): Promise<void> | void;
}

/** The stable versions, in order; the latest is the one Key Vault's errors recommend. */
const STABLE_DATA_PLANE_API_VERSIONS = ['7.0', '7.1', '7.2', '7.3', '7.4', '7.5', '7.6', '2025-07-01'];
const LATEST = STABLE_DATA_PLANE_API_VERSIONS.at(-1);
/** Previews Key Vault shipped and still serves; SDK releases default to them (Debian's Python SDK: 7.4-preview.1). */
const PREVIEW_DATA_PLANE_API_VERSIONS = ['7.2-preview', '7.3-preview', '7.4-preview.1', '7.5-preview.1', '7.6-preview.1', '7.6-preview.2'];
export const SUPPORTED_DATA_PLANE_API_VERSIONS = [...STABLE_DATA_PLANE_API_VERSIONS, ...PREVIEW_DATA_PLANE_API_VERSIONS];

/** The data plane's api-version rule: required, and one Key Vault has shipped. */
export const apiVersionGate: Gate = {
  name: 'api-version',
  appliesTo: (ctx) => ctx.plane === 'vault',
  check(req, ctx) {
    const given = (req.query as Record<string, unknown>)['api-version'];
    // A repeated parameter reaches the service as one comma-joined value, which is no version Key Vault knows.
    const version = Array.isArray(given) ? given.join(',') : given;
    if (typeof version !== 'string' || version === '') throw badParameter('The api-version query parameter (?api-version=) is required for all requests.');
    if (!SUPPORTED_DATA_PLANE_API_VERSIONS.includes(version)) {
      throw badParameter(`The specified version (${version}) is not recognized. Consider using the latest supported version (${LATEST}).`);
    }
    ctx.apiVersion = version;
  },
};

/**
 * Object names in the URL (secrets, keys, certificates, issuers share one rule) are checked before any gate or
 * handler uses them in a lookup, so a malformed name is a 400 everywhere and never reaches the database.
 */
export const objectNameGate: Gate = {
  name: 'object-name',
  appliesTo: (ctx) => ctx.plane === 'vault',
  check(req) {
    const name = (req.params as Record<string, unknown> | undefined)?.name;
    if (typeof name === 'string') checkObjectName(name);
  },
};

/**
 * Installs the one pipeline every request walks: request id and host routing, then the gates in order
 * (identity → vault → api-version → authorization → network → throttling, as each lands), the handler,
 * and the audit record, written before the response leaves.
 */
export function installPipeline(app: FastifyInstance, deps: { endpoints: Endpoints; gates: Gate[]; audit: AuditLog }) {
  const { endpoints, gates, audit } = deps;
  app.decorateRequest('coffer', null as unknown as RequestContext);

  app.addHook('onRequest', async (req, reply) => {
    const config = req.routeOptions.config ?? {};
    const vaultName = endpoints.vaultFromHost(req.headers.host);
    const ctx: RequestContext = {
      requestId: crypto.randomUUID(),
      startedAt: performance.now(),
      plane: config.plane ?? 'public',
      operation: config.operation ?? 'Unknown',
    };
    req.coffer = ctx;
    reply.header('x-ms-request-id', ctx.requestId);
    const clientRequestId = req.headers['x-ms-client-request-id'];
    if (typeof clientRequestId === 'string' && clientRequestId.length <= 128) reply.header('x-ms-client-request-id', clientRequestId);
    reply.header('cache-control', 'no-cache');
    reply.header('x-content-type-options', 'nosniff');
    reply.header('strict-transport-security', 'max-age=31536000;includeSubDomains');

    if (vaultName !== undefined) {
      reply.header('x-ms-keyvault-service-version', '1.9.2500.1');
      reply.header('x-ms-keyvault-region', 'local');
      // The address the firewall judges: an IPv4-mapped IPv6 peer (dual-stack listener) is reported as IPv4.
      const address = normaliseAddress(req.socket.remoteAddress ?? '');
      const v6 = address.includes(':');
      reply.header('x-ms-keyvault-network-info', `conn_type=${v6 ? 'IPv6' : 'IPv4'};addr=${address};act_addr_fam=${v6 ? 'InterNetworkV6' : 'InterNetwork'};`);
    }
    // Vault routes answer only on vault hosts, and everything else only off them.
    if ((ctx.plane === 'vault') !== (vaultName !== undefined) || !req.routeOptions.config?.plane) {
      throw notFound('NotFound', `The requested resource ${req.method} ${req.url.split('?')[0]} was not found.`);
    }
    for (const gate of gates) {
      if (gate.appliesTo(ctx)) await gate.check(req, ctx);
    }
  });

  app.addHook('onSend', async (req, reply, payload) => {
    try {
      await audit.record(req, reply.statusCode, payload);
    } catch (err) {
      // Fail closed, as Vault does: a response that could not be audited is not sent (whatever it carried).
      req.log.error({ err: { type: (err as Error).name, code: (err as { code?: string }).code } }, 'audit record could not be written');
      reply.code(503).type('application/json; charset=utf-8');
      return JSON.stringify(new KeyVaultError(503, 'ServiceUnavailable', `The request could not be audited, so its response was withheld. Request id: ${req.coffer?.requestId ?? 'unknown'}.`).toBody());
    }
    return payload;
  });
}

/** The vault step: resolves the vault named by the host (after identity, so strangers cannot probe for vaults). */
export function createVaultResolver(deps: { endpoints: Endpoints; getVault: (name: string) => Promise<RequestContext['vault']> }): Gate {
  return {
    name: 'vault',
    appliesTo: (ctx) => ctx.plane === 'vault',
    async check(req, ctx) {
      const name = deps.endpoints.vaultFromHost(req.headers.host)!;
      const vault = await deps.getVault(name);
      if (!vault) throw new KeyVaultError(404, 'VaultNotFound', `The vault '${name}' was not found.`);
      ctx.vault = vault;
    },
  };
}
