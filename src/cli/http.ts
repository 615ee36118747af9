import fs from 'node:fs';
import https from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import { CliError, httpError } from './errors.js';
import { certificateAssertion } from './certificate-assertion.js';

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface HttpRequest {
  headers?: Record<string, string>;
  body?: string;
}

export type HttpClient = (method: string, url: string, request?: HttpRequest) => Promise<HttpResponse>;

/**
 * HTTPS with the server's CA when one is named (a local Coffer's own CA), else the system's trust store. `debug`
 * traces each exchange's method, URL, status and request id on stderr — never headers or bodies (tokens, secrets).
 */
export function createHttpClient(opts: { caCertPath?: string; debug?: boolean }): HttpClient {
  const agent = new https.Agent({ ca: opts.caCertPath ? readCaCert(opts.caCertPath) : undefined, keepAlive: false });
  return (method, url, request = {}) => new Promise((resolve, reject) => {
    const req = https.request(url, {
      method,
      agent,
      headers: { accept: 'application/json', 'user-agent': 'coffer-cli', ...request.headers },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        if (opts.debug) process.stderr.write(`DEBUG: ${method} ${url} -> ${res.statusCode} (x-ms-request-id: ${res.headers['x-ms-request-id'] ?? '-'})\n`);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', reject);
    });
    req.on('error', (err) => reject(new CliError(`Cannot reach ${new URL(url).origin}: ${err.message}`)));
    req.end(request.body);
  });
}

function readCaCert(file: string) {
  try {
    return fs.readFileSync(file);
  } catch {
    throw new CliError(`Cannot read the CA certificate '${file}'.`);
  }
}

export interface Credentials {
  tenantId: string;
  clientId: string;
  /** A service principal's secret, or … */
  clientSecret?: string;
  /** … a signed-in user's refresh token (the user's password is never stored), or … */
  refreshToken?: string;
  /** … a PEM file with a service principal's certificate and private key (a signed client assertion per token). */
  clientCertificatePath?: string;
  authorityHost: string;
}

/** The public client id az uses for user sign-ins; a user's tokens are issued to it. */
export const CLI_PUBLIC_CLIENT_ID = '04b07795-8ddb-461a-bbee-02f9e1bf7b46';

export const tokenEndpoint = (creds: Pick<Credentials, 'authorityHost' | 'tenantId'>) =>
  `${creds.authorityHost.replace(/\/$/, '')}/${encodeURIComponent(creds.tenantId)}/oauth2/v2.0/token`;

export type TokenProvider = (resource: string) => Promise<string>;

/** Tokens from the token service (client credentials, or a user's refresh token), one per resource per process. */
export function createTokenProvider(http: HttpClient, creds: Credentials): TokenProvider {
  const cache = new Map<string, Promise<string>>();
  return (resource) => {
    let token = cache.get(resource);
    if (!token) {
      token = (async () => {
        const scope = `${resource}/.default`;
        const body = new URLSearchParams(creds.refreshToken
          ? { grant_type: 'refresh_token', client_id: CLI_PUBLIC_CLIENT_ID, refresh_token: creds.refreshToken, scope }
          : creds.clientCertificatePath
            ? {
              grant_type: 'client_credentials', client_id: creds.clientId, scope, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
              client_assertion: await certificateAssertion(creds.clientCertificatePath, creds.clientId, tokenEndpoint(creds)),
            }
            : { grant_type: 'client_credentials', client_id: creds.clientId, client_secret: creds.clientSecret ?? '', scope }).toString();
        const res = await http('POST', tokenEndpoint(creds), {
          headers: { 'content-type': 'application/x-www-form-urlencoded' }, body,
        });
        if (res.status !== 200) throw httpError(res.status, res.body, 'The token service refused the credentials');
        return (JSON.parse(res.body) as { access_token: string }).access_token;
      })();
      cache.set(resource, token);
    }
    return token;
  };
}

export interface JsonRequest {
  body?: unknown;
}

/** A JSON API call: parsed body on 2xx (undefined when empty), a CliError shaped like az's otherwise. */
async function jsonCall(http: HttpClient, method: string, url: string, token: string, request: JsonRequest) {
  const res = await http(method, url, {
    headers: {
      authorization: `Bearer ${token}`,
      ...(request.body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    body: request.body !== undefined ? JSON.stringify(request.body) : undefined,
  });
  return res;
}

function parseOk<T>(res: HttpResponse, operation: string): T {
  if (res.status < 200 || res.status >= 300) throw httpError(res.status, res.body, `${operation} failed`);
  return (res.body ? JSON.parse(res.body) : undefined) as T;
}

export type ApiCall = <T = unknown>(method: string, pathOrUrl: string, request?: JsonRequest) => Promise<T>;

/** The management API (ARM-compatible); tokens have the management endpoint as audience. */
export function createManagementClient(http: HttpClient, tokens: TokenProvider, managementEndpoint: string): ApiCall {
  const base = managementEndpoint.replace(/\/$/, '');
  return async (method, path, request = {}) => {
    const res = await jsonCall(http, method, `${base}${path}`, await tokens(base), request);
    return parseOk(res, `${method} ${path.split('?')[0]}`);
  };
}

/** The `resource` of a Key Vault `WWW-Authenticate: Bearer … resource="…"` challenge. */
export function challengeResource(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header.join(', ') : header;
  return value ? /resource="([^"]+)"/.exec(value)?.[1] : undefined;
}

/**
 * A vault's data plane. The token's resource is computed from the DNS suffix; a 401 challenge naming another
 * resource is followed once — only when that resource is a parent domain of the vault host, as the SDKs verify,
 * so a token is never requested for an unrelated audience. Absolute URLs (nextLink) must stay on the vault's host.
 */
export function createVaultClient(http: HttpClient, tokens: TokenProvider, vaultUrl: string, defaultResource: string, apiVersion: string): ApiCall {
  const vault = new URL(vaultUrl);
  let resource = defaultResource;
  return async (method, pathOrUrl, request = {}) => {
    const url = new URL(pathOrUrl, vault);
    if (url.host !== vault.host) throw new CliError(`Refusing to follow a link to another host: ${url.host}`);
    if (!url.searchParams.has('api-version')) url.searchParams.set('api-version', apiVersion);
    let res = await jsonCall(http, method, url.toString(), await tokens(resource), request);
    const challenged = res.status === 401 ? challengeResource(res.headers['www-authenticate']) : undefined;
    if (challenged && challenged.replace(/\/$/, '') !== resource) {
      const challengedHost = new URL(challenged).hostname;
      if (vault.hostname !== challengedHost && !vault.hostname.endsWith(`.${challengedHost}`)) {
        throw new CliError(`The challenge resource '${challenged}' does not match the vault host '${vault.hostname}'.`);
      }
      resource = challenged.replace(/\/$/, '');
      res = await jsonCall(http, method, url.toString(), await tokens(resource), request);
    }
    return parseOk(res, `${method} ${url.pathname}`);
  };
}

/**
 * Every item of a Key Vault list, following absolute `nextLink`s; `max` (az's `--maxresults`) caps the items and
 * the page size (the service allows at most 25 per page).
 */
export async function listAll<T>(call: ApiCall, path: string, max?: number): Promise<T[]> {
  const items: T[] = [];
  let next: string | undefined = max ? `${path}${path.includes('?') ? '&' : '?'}maxresults=${Math.min(max, 25)}` : path;
  while (next && (max === undefined || items.length < max)) {
    const page: { value?: T[]; nextLink?: string | null } = await call('GET', next);
    items.push(...(page.value ?? []));
    next = page.nextLink ?? undefined;
  }
  return max === undefined ? items : items.slice(0, max);
}
