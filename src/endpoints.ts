/**
 * The URLs clients see. The vault data plane lives on `{vault}.{dnsSuffix}`; every other host name serves the
 * token service, the management API and health. Ports are spelled out unless they are 443.
 */
export interface Endpoints {
  dnsSuffix: string;
  /** Entra-compatible authority host, e.g. https://localhost:8443 */
  authorityHost: string;
  /** ARM-compatible management endpoint (token audience for the control plane). */
  managementEndpoint: string;
  /** The data-plane resource named in the 401 challenge. */
  dataPlaneResource: string;
  /** Audiences accepted for data-plane tokens: the resource with and without its port. */
  dataPlaneAudiences: string[];
  vaultUrl(vaultName: string): string;
  /** The vault name addressed by a Host header, or undefined for a non-vault host. */
  vaultFromHost(host: string | undefined): string | undefined;
}

export function createEndpoints(opts: { dnsSuffix: string; publicPort: number; managementHost?: string }): Endpoints {
  const port = opts.publicPort === 443 ? '' : `:${opts.publicPort}`;
  const suffix = opts.dnsSuffix.toLowerCase();
  const host = (opts.managementHost ?? 'localhost').toLowerCase();
  const authorityHost = `https://${host.includes(':') ? `[${host}]` : host}${port}`;
  const dataPlaneResource = `https://${suffix}${port}`;
  const dotSuffix = `.${suffix}`;
  return {
    dnsSuffix: suffix,
    authorityHost,
    managementEndpoint: authorityHost,
    dataPlaneResource,
    dataPlaneAudiences: [...new Set([dataPlaneResource, `https://${suffix}`, `${dataPlaneResource}/`, `https://${suffix}/`])],
    vaultUrl: (name) => `https://${name}${dotSuffix}${port}`,
    vaultFromHost(host) {
      if (!host) return undefined;
      const hostname = host.replace(/:\d+$/, '').toLowerCase();
      if (!hostname.endsWith(dotSuffix)) return undefined;
      const vault = hostname.slice(0, -dotSuffix.length);
      return vault && !vault.includes('.') ? vault : undefined;
    },
  };
}
