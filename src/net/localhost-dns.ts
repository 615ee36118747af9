import dns from 'node:dns';

/**
 * RFC 6761: every `*.localhost` name is loopback. Many resolvers (glibc without nss-myhostname) do not know that,
 * so the Coffer CLI — and any Node process started with `--import coffer/dist/net/register-localhost.js` — resolves
 * them itself. Other names go to the system resolver unchanged.
 */
export function isLocalhostName(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/\.$/, '');
  return h === 'localhost' || h.endsWith('.localhost');
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void;

export function installLocalhostResolver() {
  const original = dns.lookup as unknown as (...args: unknown[]) => void;
  if ((original as { cofferLocalhost?: boolean }).cofferLocalhost) return;
  const patched = function lookup(hostname: string, options: unknown, callback?: LookupCallback) {
    const cb = (typeof options === 'function' ? options : callback) as LookupCallback;
    const opts = (typeof options === 'object' && options !== null ? options : typeof options === 'number' ? { family: options } : {}) as dns.LookupOptions;
    if (typeof hostname === 'string' && isLocalhostName(hostname) && hostname.toLowerCase() !== 'localhost') {
      const address = opts.family === 6 ? '::1' : '127.0.0.1';
      const family = opts.family === 6 ? 6 : 4;
      process.nextTick(() => (opts.all ? cb(null, [{ address, family }]) : cb(null, address, family)));
      return;
    }
    return original.call(dns, hostname, options, callback);
  };
  (patched as unknown as { cofferLocalhost: boolean }).cofferLocalhost = true;
  (dns as { lookup: unknown }).lookup = patched;
}
