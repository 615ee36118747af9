import type { FastifyRequest } from 'fastify';
import type { Storage } from '../storage/engine.js';

export interface AuditEvent {
  time: string;
  resourceId: string;
  operationName: string;
  operationVersion?: string;
  category: 'AuditEvent';
  resultType: 'Success' | 'Failure';
  resultSignature: string;
  durationMs: number;
  callerIpAddress: string;
  correlationId: string;
  identity?: { claim: { oid: string; appid?: string; tid: string } };
  properties: {
    requestUri: string; httpStatusCode: number; clientInfo?: string;
    isRbacAuthorized?: boolean; isAccessPolicyMatch?: boolean; roleAssignmentId?: string;
  };
}

export interface AuditLog {
  /** Resolves once the record is durable: the response it describes is sent only afterwards. */
  record(req: FastifyRequest, statusCode: number): Promise<void>;
  flush(): Promise<void>;
}

/**
 * Durable audit with group commit: records that arrive while a batch is being written wait for the next batch,
 * and each batch is one transaction (one fsync) however many requests it covers.
 * Records name the operation and the object's URI, never a value, token or key material.
 */
export function createAuditLog(deps: { storage: Storage }): AuditLog {
  const { db } = deps.storage;
  let pending: { time: number; record: string; done: () => void; fail: (e: unknown) => void }[] = [];
  let writing: Promise<void> | undefined;

  async function drain() {
    while (pending.length) {
      const batch = pending;
      pending = [];
      try {
        await db.transaction().execute(async (trx) => {
          for (let i = 0; i < batch.length; i += 500) {
            await trx.insertInto('audit_events').values(batch.slice(i, i + 500).map(({ time, record }) => ({ time, record }))).execute();
          }
        });
        batch.forEach((b) => b.done());
      } catch (err) {
        batch.forEach((b) => b.fail(err));
      }
    }
    writing = undefined;
  }

  return {
    record(req, statusCode) {
      const ctx = req.coffer;
      if (!ctx || ctx.plane === 'public') return Promise.resolve();
      const now = Date.now();
      const claims = ctx.caller?.claims;
      const event: AuditEvent = {
        time: new Date(now).toISOString(),
        resourceId: ctx.vault?.resourceId ?? '',
        operationName: ctx.operation,
        operationVersion: ctx.apiVersion,
        category: 'AuditEvent',
        resultType: statusCode < 400 ? 'Success' : 'Failure',
        resultSignature: String(statusCode),
        durationMs: Math.round(performance.now() - ctx.startedAt),
        callerIpAddress: req.ip,
        correlationId: ctx.requestId,
        ...(claims ? { identity: { claim: { oid: claims.oid, appid: claims.appid, tid: claims.tid } } } : {}),
        properties: {
          requestUri: `https://${req.headers.host ?? ''}${req.url}`,
          httpStatusCode: statusCode,
          clientInfo: typeof req.headers['user-agent'] === 'string' ? req.headers['user-agent'].slice(0, 256) : undefined,
          isRbacAuthorized: ctx.authorization?.isRbacAuthorized,
          isAccessPolicyMatch: ctx.authorization?.isAccessPolicyMatch,
          roleAssignmentId: ctx.authorization?.roleAssignmentId,
        },
      };
      return new Promise((done, fail) => {
        pending.push({ time: now, record: JSON.stringify(event), done, fail });
        writing ??= new Promise<void>((r) => setImmediate(r)).then(drain);
      });
    },
    async flush() {
      while (writing) await writing;
    },
  };
}
