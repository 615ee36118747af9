import type { TestServer } from './server.js';

export interface RawResponse {
  status: number;
  headers: Headers;
  text: string;
  /** The parsed JSON body, or undefined when the body is empty or not JSON. */
  json: any;
}

/** A data-plane bearer token for the deployment's vault resource, as an SDK would obtain it. */
export async function dataPlaneToken(server: TestServer): Promise<string> {
  const token = await server.adminCredential.getToken(`${server.coffer.endpoints.dataPlaneResource}/.default`);
  return token!.token;
}

/** A management-plane bearer token (audience = the management endpoint). */
export async function managementToken(server: TestServer): Promise<string> {
  const token = await server.adminCredential.getToken(`${server.admin.managementEndpoint}/.default`);
  return token!.token;
}

/**
 * One raw HTTPS request, for what the SDK never sends (bad api-versions, malformed bodies, forged tokens).
 * `token: null` sends no Authorization header; a string body is sent as-is, anything else as JSON.
 */
export async function rawRequest(url: string, opts: {
  method?: string; token?: string | null; body?: unknown; headers?: Record<string, string>;
} = {}): Promise<RawResponse> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  let body: string | undefined;
  if (typeof opts.body === 'string') body = opts.body;
  else if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers['content-type'] ??= 'application/json';
  }
  const res = await fetch(url, { method: opts.method ?? 'GET', headers, body });
  const text = await res.text();
  let json: any;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}
