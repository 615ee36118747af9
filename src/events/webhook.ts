import crypto from 'node:crypto';
import net from 'node:net';
import type { DeliverySchema } from './events.js';

/**
 * Webhook HTTP: the endpoint rule, the validation handshakes and one delivery attempt. Coffer trusts what Node
 * trusts (the system CAs plus NODE_EXTRA_CA_CERTS); plain http:// is accepted only for loopback endpoints.
 */
export const DELIVERY_TIMEOUT_MS = 30_000;
const HANDSHAKE_TIMEOUT_MS = 10_000;
/** Event Grid's abuse-protection origin for CloudEvents webhooks. */
export const WEBHOOK_ORIGIN = 'eventgrid.azure.net';

export class EndpointError extends Error {}

/** The URL without its query (which may carry a key): what Azure reports back as `endpointBaseUrl`. */
export const endpointBaseUrl = (url: string) => url.split('?')[0];

export function checkEndpointUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new EndpointError(`The value '${endpointBaseUrl(raw)}' of endpointUrl is not a valid absolute URL.`);
  }
  if (url.protocol === 'https:') return url;
  if (url.protocol === 'http:' && isLoopback(url.hostname)) return url;
  throw new EndpointError(`Invalid endpointUrl '${endpointBaseUrl(raw)}': only https:// is supported (plain http:// only for a loopback address).`);
}

function isLoopback(hostname: string) {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (net.isIPv4(host)) return host.startsWith('127.');
  return host === '::1';
}

export interface AttemptOutcome {
  ok: boolean;
  status?: number;
  /** Why it failed, in words (never the response body, which the receiver controls). */
  error?: string;
}

async function send(url: string, init: RequestInit, timeoutMs: number): Promise<Response> {
  return fetch(url, { ...init, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
}

/**
 * The validation handshake. Event Grid schema: a SubscriptionValidationEvent whose validationCode must come back as
 * `{validationResponse}`. CloudEvents: the OPTIONS abuse-protection request, answered with WebHook-Allowed-Origin.
 */
export async function validateEndpoint(url: string, schema: DeliverySchema, subscriptionName: string, topic: string): Promise<void> {
  const fail = (detail: string) => new EndpointError(
    `Webhook validation handshake failed for ${endpointBaseUrl(url)}. ${detail} For troubleshooting, visit https://aka.ms/esvalidation.`);
  try {
    if (schema === 'CloudEventSchemaV1_0') {
      const res = await send(url, { method: 'OPTIONS', headers: { 'WebHook-Request-Origin': WEBHOOK_ORIGIN, 'WebHook-Request-Rate': '120' } }, HANDSHAKE_TIMEOUT_MS);
      const allowed = res.headers.get('webhook-allowed-origin');
      await res.arrayBuffer().catch(() => undefined);
      if (res.status !== 200) throw fail(`Http OPTIONS request failed with response code ${res.status}.`);
      if (allowed !== '*' && allowed?.toLowerCase() !== WEBHOOK_ORIGIN) throw fail('The response did not allow the origin (WebHook-Allowed-Origin).');
      return;
    }
    const validationCode = crypto.randomUUID();
    const res = await send(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'aeg-event-type': 'SubscriptionValidation', 'aeg-subscription-name': subscriptionName.toUpperCase(), 'aeg-data-version': '2', 'aeg-metadata-version': '1' },
      body: JSON.stringify([{
        id: crypto.randomUUID(), topic, subject: '', data: { validationCode },
        eventType: 'Microsoft.EventGrid.SubscriptionValidationEvent', eventTime: new Date().toISOString(), metadataVersion: '1', dataVersion: '2',
      }]),
    }, HANDSHAKE_TIMEOUT_MS);
    if (res.status !== 200) throw fail(`Http POST request failed with response code ${res.status}.`);
    const body = await res.json().catch(() => undefined) as { validationResponse?: unknown } | undefined;
    if (body?.validationResponse !== validationCode) throw fail('The response did not echo the validationCode as validationResponse.');
  } catch (err) {
    if (err instanceof EndpointError) throw err;
    throw fail('Http request failed with response code Unknown.');
  }
}

/** One delivery attempt of one event (Event Grid: an array of one; CloudEvents: structured mode). */
export async function deliverEvent(url: string, schema: DeliverySchema, eventJson: string, headers: { subscriptionName: string; deliveryCount: number }): Promise<AttemptOutcome> {
  const cloud = schema === 'CloudEventSchemaV1_0';
  try {
    const res = await send(url, {
      method: 'POST',
      headers: {
        'content-type': cloud ? 'application/cloudevents+json; charset=utf-8' : 'application/json',
        'aeg-event-type': 'Notification',
        'aeg-subscription-name': headers.subscriptionName.toUpperCase(),
        'aeg-delivery-count': String(headers.deliveryCount),
        'aeg-data-version': '1',
        'aeg-metadata-version': '1',
      },
      body: cloud ? eventJson : `[${eventJson}]`,
    }, DELIVERY_TIMEOUT_MS);
    await res.arrayBuffer().catch(() => undefined);
    if (res.status >= 200 && res.status <= 204) return { ok: true, status: res.status };
    return { ok: false, status: res.status, error: `HTTP ${res.status}` };
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code;
    return { ok: false, error: (err as Error).name === 'TimeoutError' ? 'timed out' : cause ?? (err as Error).message };
  }
}
