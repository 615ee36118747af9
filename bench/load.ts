/**
 * The load generator, run as its own process so it never shares an event loop with the server it measures.
 * Input: one JSON argument (a LoadSpec). Output: one JSON line (a LoadResult) on stdout.
 */
import autocannon from 'autocannon';

export interface LoadSpec {
  url: string;
  method: 'GET' | 'PUT' | 'POST';
  headers: Record<string, string>;
  body?: string;
  /** When set, each request's path is `${pathPrefix}${i % rotate}${pathSuffix}` (spreads writes over names). */
  rotate?: { pathPrefix: string; pathSuffix: string; count: number };
  connections: number;
  durationSeconds: number;
}

export interface LoadResult {
  requestsPerSecond: number;
  p50: number;
  p99: number;
  errors: number;
  total: number;
}

const spec = JSON.parse(process.argv[2]) as LoadSpec;
let i = 0;
const instance = autocannon({
  url: spec.url,
  method: spec.method,
  headers: spec.headers,
  body: spec.body,
  connections: spec.connections,
  duration: spec.durationSeconds,
  // The server's certificate names localhost and *.{dnsSuffix}; autocannon does not verify it (rejectUnauthorized: false).
  servername: 'localhost',
  ...(spec.rotate
    ? { requests: [{ setupRequest: (req) => ({ ...req, path: `${spec.rotate!.pathPrefix}${i++ % spec.rotate!.count}${spec.rotate!.pathSuffix}` }) }] }
    : {}),
});
// autocannon's own histogram keeps whole milliseconds; sub-millisecond percentiles come from the raw times.
const times: number[] = [];
instance.on('response', (_client, status, _bytes, ms) => { if (status >= 200 && status < 300) times.push(ms); });
const result = await instance;
times.sort((a, b) => a - b);
const percentile = (p: number) => (times.length ? times[Math.min(times.length - 1, Math.floor((p / 100) * times.length))] : NaN);

const out: LoadResult = {
  requestsPerSecond: result.requests.average,
  p50: percentile(50),
  p99: percentile(99),
  errors: result.errors + result.timeouts + result.non2xx,
  total: result.requests.total,
};
process.stdout.write(JSON.stringify(out) + '\n');
