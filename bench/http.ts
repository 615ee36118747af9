import https from 'node:https';

/**
 * One HTTPS request to the Coffer under test: always to 127.0.0.1 on `port`, with the Host header choosing the vault
 * or the token/management host, and the data dir's CA as the only trust anchor.
 */
export function request(opts: { port: number; host: string; ca: string; method: string; path: string; headers?: Record<string, string>; body?: string }) {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = https.request({
      host: '127.0.0.1', port: opts.port, method: opts.method, path: opts.path, ca: opts.ca, servername: 'localhost',
      headers: { host: `${opts.host}:${opts.port}`, ...(opts.body !== undefined ? { 'content-length': Buffer.byteLength(opts.body) } : {}), ...opts.headers },
      agent: false,
    }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.once('error', reject);
    req.end(opts.body);
  });
}

export async function requestOk(opts: Parameters<typeof request>[0], expected = 200) {
  const res = await request(opts);
  if (res.status !== expected) throw new Error(`${opts.method} ${opts.path} on ${opts.host}: ${res.status} ${res.body.slice(0, 500)}`);
  return res.body;
}
