/**
 * The baseline: a bare Node `https` server with Coffer's own certificate, answering every request with a fixed JSON
 * body chosen by method and path (the bodies Coffer returned for the same requests). It reads request bodies fully,
 * as Coffer must, and does nothing else: the ceiling for TLS + HTTP + JSON on this machine.
 * Input: one JSON argument { cert, key, port, bodies: { get, put, list } }. Prints `ready` once listening.
 */
import https from 'node:https';

const { cert, key, port, bodies } = JSON.parse(process.argv[2]) as {
  cert: string; key: string; port: number; bodies: { get: string; put: string; list: string; sign?: string };
};

const server = https.createServer({ cert, key }, (req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const path = (req.url ?? '').split('?')[0];
    const body = req.method === 'PUT' ? bodies.put
      : req.method === 'POST' ? (bodies.sign ?? bodies.put)
        : path === '/secrets' ? bodies.list : bodies.get;
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
});
server.keepAliveTimeout = 72_000;
server.listen(port, '127.0.0.1', () => process.stdout.write('ready\n'));
process.once('SIGTERM', () => server.close(() => process.exit(0)));
