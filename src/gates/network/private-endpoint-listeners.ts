import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyRequest } from 'fastify';
import { normaliseAddress } from './ip-rules.js';

/** Where a request arrived, for the network gate: the private-endpoint address, or undefined for the public listener. */
export type PrivateEndpointArrival = (req: FastifyRequest) => string | undefined;

const WILDCARDS = new Set(['0.0.0.0', '::', '']);

/**
 * One HTTPS listener per private endpoint, on the endpoint's address and the main listener's port, handing requests to
 * the same Fastify app (so every gate, route and audit record is the same). Each node reconciles its listeners from
 * the database — at once when this node creates or deletes an endpoint, and every `intervalMs` for changes made on
 * other nodes. When the main listener is a wildcard address it already accepts connections to every local address,
 * so no extra listener is bound and the connection's local address alone tells a private-endpoint request.
 */
export function createPrivateEndpointListeners(deps: {
  tls: { cert: string; key: string };
  mainHost: string;
  port: number;
  /** Fastify's request handler (`app.routing`). */
  handler: (req: IncomingMessage, res: ServerResponse) => void;
  /** Every private endpoint's address, from the database. */
  addresses: () => Promise<string[]>;
  onError: (address: string, err: Error) => void;
  intervalMs?: number;
}) {
  const wildcard = WILDCARDS.has(deps.mainHost);
  const servers = new Map<string, https.Server>();
  /** The addresses whose listener failed to bind (reported once, retried on every reconcile). */
  const failed = new Set<string>();
  /** Connections accepted by a private-endpoint listener (a request's socket tells its listener). */
  const privateSockets = new WeakSet<Socket>();
  let known = new Set<string>();
  let chain: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  const listen = (address: string) => new Promise<https.Server>((resolve, reject) => {
    const server = https.createServer({ cert: deps.tls.cert, key: deps.tls.key }, deps.handler);
    server.on('secureConnection', (socket) => privateSockets.add(socket));
    server.once('error', reject).listen(deps.port, address, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
  const stop = (server: https.Server) => new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });

  async function apply() {
    if (closed) return;
    const wanted = new Set(await deps.addresses());
    known = wanted;
    if (wildcard) return;
    for (const [address, server] of servers) {
      if (!wanted.has(address)) {
        servers.delete(address);
        await stop(server);
      }
    }
    for (const address of wanted) {
      if (servers.has(address) || closed) continue;
      try {
        servers.set(address, await listen(address));
        failed.delete(address);
      } catch (err) {
        if (!failed.has(address)) deps.onError(address, err as Error);
        failed.add(address);
      }
    }
  }

  return {
    /** Brings this node's listeners in line with the database; calls are serialised. */
    reconcile(): Promise<void> {
      chain = chain.then(apply, apply);
      return chain;
    },
    start() {
      timer = setInterval(() => { this.reconcile().catch(() => undefined); }, deps.intervalMs ?? 5000);
      timer.unref();
      return this.reconcile();
    },
    /** The private-endpoint address a request arrived on, if it arrived on one. */
    arrivedAt: ((req) => {
      const local = normaliseAddress(req.socket.localAddress ?? '');
      if (privateSockets.has(req.socket)) return local;
      return wildcard && known.has(local) ? local : undefined;
    }) as PrivateEndpointArrival,
    async close() {
      closed = true;
      clearInterval(timer);
      await chain.catch(() => undefined);
      await Promise.all([...servers.values()].map(stop));
      servers.clear();
    },
  };
}
