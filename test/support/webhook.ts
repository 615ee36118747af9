import http, { type IncomingHttpHeaders, type RequestListener } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';

export interface Received { path: string; method: string; headers: IncomingHttpHeaders; body: string }

/**
 * A test Event Grid webhook at 127.0.0.1: plain HTTP (Coffer allows http:// for loopback endpoints only), or HTTPS
 * with `tls` (a certificate Coffer's process trusts, e.g. one issued by the test CA). It passes
 * both validation handshakes, answers notifications 200, and records every request. Paths choose its behaviour:
 * `/fail…` answers notifications 500, `/silent…` fails the handshakes.
 */
export async function startWebhook(opts: { tls?: { cert: string; key: string } } = {}) {
  const received: Received[] = [];
  const handler: RequestListener = (req, res) => {
    let body = '';
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', () => {
      const url = req.url ?? '/';
      received.push({ path: url, method: req.method ?? '', headers: req.headers, body });
      if (req.method === 'OPTIONS') {
        // CloudEvents abuse protection: allow the origin that asks (unless this endpoint plays deaf).
        res.writeHead(200, url.startsWith('/silent') ? {} : { 'WebHook-Allowed-Origin': String(req.headers['webhook-request-origin']) });
        return res.end();
      }
      if (req.headers['aeg-event-type'] === 'SubscriptionValidation') {
        const [event] = JSON.parse(body);
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(JSON.stringify(url.startsWith('/silent') ? {} : { validationResponse: event.data.validationCode }));
      }
      res.writeHead(url.startsWith('/fail') ? 500 : 200);
      res.end();
    });
  };
  const server = opts.tls ? https.createServer(opts.tls, handler) : http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`;
  /** Delivered events on `prefix`, unwrapped (Event Grid posts arrays, CloudEvents one event per request). */
  const events = (prefix: string) => received
    .filter((r) => r.path.startsWith(prefix) && r.method === 'POST' && r.headers['aeg-event-type'] === 'Notification')
    .flatMap((r) => { const parsed = JSON.parse(r.body); return Array.isArray(parsed) ? parsed : [parsed]; });
  return { received, base, events, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

export type Webhook = Awaited<ReturnType<typeof startWebhook>>;

/** Polls `probe` until it returns something truthy. */
export async function waitFor<T>(what: string, probe: () => T | undefined | false | 0 | null, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

