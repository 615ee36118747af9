import { STATUS_CODES } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { FastifyRequest } from 'fastify';
import type { Storage } from '../storage/engine.js';
import { groupCommit } from '../storage/group-commit.js';
import { normaliseAddress } from '../gates/network/ip-rules.js';

/** Key Vault's AuditEvent, as Azure Monitor receives it from a vault's diagnostic settings. */
export interface AuditEvent {
  time: string;
  resourceId: string;
  operationName: string;
  operationVersion?: string;
  category: 'AuditEvent';
  resultType: 'Success' | 'Failure';
  /** The HTTP status as Azure names it: OK, Unauthorized, Forbidden, NotFound, TooManyRequests… */
  resultSignature: string;
  /** Why a request failed (the error message it was answered with); absent on success. */
  resultDescription?: string;
  durationMs: number;
  callerIpAddress: string;
  correlationId: string;
  identity?: { claim: { oid: string; appid?: string; upn?: string; tid: string; idtyp?: string } };
  properties: {
    /** The object (or vault) URI the operation acted on; the resource id for management operations. */
    id?: string;
    requestUri: string; httpStatusCode: number; clientInfo?: string; tlsVersion?: string;
    isRbacAuthorized?: boolean; isAccessPolicyMatch?: boolean; roleAssignmentId?: string;
  };
}

export interface AuditLog {
  /** Resolves once the record is durable: the response it describes is sent only afterwards. */
  record(req: FastifyRequest, statusCode: number, payload?: unknown): Promise<void>;
  flush(): Promise<void>;
}

/** The vault a management path acts on (its id, as written), if any: records about a vault route with its settings. */
const VAULT_ID = /^\/subscriptions\/[^/]+\/resourceGroups\/[^/]+\/providers\/Microsoft\.KeyVault\/vaults\/[^/?]+/i;

/**
 * Query parameters an audit record keeps: the ones Key Vault and ARM define. Anything else (an OAuth `code`, a
 * `client_secret` someone put in a URL) is left out, so no credential reaches a log through a URL.
 */
const LOGGED_QUERY_PARAMETERS = new Set(['api-version', 'maxresults', '$top', '$skiptoken', '$filter', 'includepending']);

function loggedUri(host: string, url: string) {
  const [path, query = ''] = url.split('?', 2);
  const kept = new URLSearchParams([...new URLSearchParams(query)].filter(([k]) => LOGGED_QUERY_PARAMETERS.has(k.toLowerCase()))).toString();
  return { path, uri: `https://${host}${path}${kept ? `?${kept}` : ''}` };
}

/** The error message a failed response carried (Azure-shaped bodies only; messages never carry values). */
function errorMessage(payload: unknown): string | undefined {
  const text = typeof payload === 'string' ? payload : Buffer.isBuffer(payload) ? payload.toString('utf8') : undefined;
  if (!text || text.length > 65_536 || !text.startsWith('{')) return undefined;
  try {
    const message = (JSON.parse(text) as { error?: { message?: unknown } }).error?.message;
    return typeof message === 'string' ? message.slice(0, 2048) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Durable audit with group commit: records that arrive while a batch is being written wait for the next batch,
 * and each batch is one transaction (one fsync) however many requests it covers. Every request on the vault,
 * management and token hosts is recorded — allowed, refused (401/403/429) or failed.
 * Records name the operation and the object's URI, never a value, token or key material.
 */
export function createAuditLog(deps: {
  storage: Storage;
  /** This node's id: routing to diagnostic settings reads each node's records in the order it wrote them. */
  origin?: string;
  /** The resource id of the vault a vault host names (for requests refused before the vault step resolved it). */
  vaultIdForHost?: (host: string | undefined) => Promise<string | undefined>;
  /** Called after each committed batch (the router delivers sooner). */
  onCommitted?: () => void;
}): AuditLog {
  type Pending = { time: number; record: string; resource_key: string | null; done: () => void; fail: (e: unknown) => void };
  let pending: Pending[] = [];
  let writing: Promise<void> | undefined;

  async function drain() {
    while (pending.length) {
      const batch = pending;
      pending = [];
      try {
        // The storage's group commit: a batch shares its transaction (and fsync) with the object writes queued with it.
        await groupCommit(deps.storage).run(async (trx) => {
          for (let i = 0; i < batch.length; i += 500) {
            await trx.insertInto('audit_events')
              .values(batch.slice(i, i + 500).map(({ time, record, resource_key }) => ({ time, record, resource_key, origin: deps.origin ?? null })))
              .execute();
          }
        });
        batch.forEach((b) => b.done());
        deps.onCommitted?.();
      } catch (err) {
        batch.forEach((b) => b.fail(err));
      }
    }
    writing = undefined;
  }

  async function describe(req: FastifyRequest, statusCode: number, payload: unknown) {
    const ctx = req.coffer;
    const now = Date.now();
    const claims = ctx.caller?.claims;
    const host = (req.headers.host ?? '').toLowerCase();
    const { path, uri } = loggedUri(host, req.url);
    const query = (req.query ?? {}) as Record<string, unknown>;
    let resourceId = '';
    let objectId: string | undefined;
    if (ctx.plane === 'vault') {
      resourceId = ctx.vault?.resourceId ?? (await deps.vaultIdForHost?.(req.headers.host).catch(() => undefined)) ?? '';
      objectId = `https://${host}${path.replace(/\/+$/, '')}`;
    } else if (ctx.plane === 'management') {
      resourceId = VAULT_ID.exec(path)?.[0] ?? path;
      objectId = path;
    }
    const failed = statusCode >= 400;
    const event: AuditEvent = {
      time: new Date(now).toISOString(),
      resourceId,
      operationName: ctx.operation,
      operationVersion: ctx.apiVersion ?? (typeof query['api-version'] === 'string' ? query['api-version'] : undefined),
      category: 'AuditEvent',
      resultType: failed ? 'Failure' : 'Success',
      resultSignature: (STATUS_CODES[statusCode] ?? String(statusCode)).replace(/[^A-Za-z]/g, ''),
      ...(failed ? { resultDescription: errorMessage(payload) ?? STATUS_CODES[statusCode] } : {}),
      durationMs: Math.round(performance.now() - ctx.startedAt),
      callerIpAddress: normaliseAddress(req.socket.remoteAddress ?? req.ip),
      correlationId: ctx.requestId,
      ...(claims ? {
        identity: { claim: { oid: claims.oid, appid: claims.appid ?? claims.azp, upn: claims.upn, tid: claims.tid, idtyp: claims.idtyp } },
      } : {}),
      properties: {
        id: objectId,
        requestUri: uri,
        httpStatusCode: statusCode,
        clientInfo: typeof req.headers['user-agent'] === 'string' ? req.headers['user-agent'].slice(0, 256) : undefined,
        tlsVersion: (req.socket as TLSSocket).getProtocol?.() ?? undefined,
        isRbacAuthorized: ctx.authorization?.isRbacAuthorized,
        isAccessPolicyMatch: ctx.authorization?.isAccessPolicyMatch,
        roleAssignmentId: ctx.authorization?.roleAssignmentId,
      },
    };
    return { time: now, record: JSON.stringify(event), resource_key: resourceId ? resourceId.toLowerCase() : null };
  }

  return {
    async record(req, statusCode, payload) {
      if (!req.coffer || req.coffer.plane === 'public') return;
      const entry = await describe(req, statusCode, payload);
      return new Promise((done, fail) => {
        pending.push({ ...entry, done, fail });
        writing ??= new Promise<void>((r) => setImmediate(r)).then(drain);
      });
    },
    async flush() {
      while (writing) await writing;
    },
  };
}
