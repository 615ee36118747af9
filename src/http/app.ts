import crypto from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, { LogController, type FastifyInstance, type FastifyError, type FastifyReply } from 'fastify';
import { KeyVaultError } from './errors.js';

export const BODY_LIMIT = 1024 * 1024;

/**
 * The HTTPS server and its error boundary: every failure leaves as an Azure-shaped error; client mistakes are 4xx,
 * and a 5xx body never carries internal detail (which could include a value being processed).
 */
export function createHttpApp(opts: { tls: { cert: string; key: string }; logLevel: string }): FastifyInstance {
  const app = Fastify({
    https: { cert: opts.tls.cert, key: opts.tls.key },
    logger: opts.logLevel === 'silent' ? false : {
      level: opts.logLevel,
      // Method, URL and status only: headers (tokens) and bodies (values) are never logged.
      serializers: {
        req: (req) => ({ method: req.method, url: loggedUrl(req.url), remoteAddress: req.ip }),
        res: (res) => ({ statusCode: res.statusCode }),
      },
    },
    bodyLimit: BODY_LIMIT,
    // Names are validated by their services (Azure answers 400 for a bad name), so the router's own cap (100 by
    // default, below the 127 characters a secret name may have) is raised to Node's header-size limit.
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 16 * 1024 },
    // URLs the router cannot even parse (bad %-encoding) never reach the hooks: answer them Azure-shaped here.
    frameworkErrors: (err, _req, reply) => {
      const status = err.statusCode && err.statusCode < 500 ? err.statusCode : 400;
      (reply as FastifyReply).header('x-ms-request-id', crypto.randomUUID()).code(status)
        .send(new KeyVaultError(status, 'BadParameter', 'The request URI is not valid.').toBody());
    },
    requestIdHeader: false,
    logController: new LogController({ disableRequestLogging: opts.logLevel !== 'debug' }),
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
    forceCloseConnections: true,
    clientErrorHandler: azureShapedClientError,
  });

  // Form bodies belong to the OAuth token endpoint only; everywhere else the API speaks JSON.
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 64 * 1024 }, (req, body, done) => {
    if (req.routeOptions.config?.plane !== 'token') {
      return done(new KeyVaultError(415, 'UnsupportedMediaType', 'Unsupported Media Type: application/x-www-form-urlencoded. The request body must be JSON.'), undefined);
    }
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });

  app.setErrorHandler((err: FastifyError | KeyVaultError, req, reply) => {
    if (err instanceof KeyVaultError) {
      if (err.headers) reply.headers(err.headers);
      return reply.code(err.status).send(err.toBody());
    }
    const fe = err as FastifyError;
    if (fe.validation) {
      const first = fe.validation[0];
      const where = `${fe.validationContext ?? 'body'}${first?.instancePath ?? ''}`;
      return reply.code(400).send(new KeyVaultError(400, 'BadParameter', `The parameter ${where} ${first?.message ?? 'is invalid'}.`).toBody());
    }
    if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
      const code = fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? 'RequestEntityTooLarge'
        : fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' ? 'UnsupportedMediaType' : 'BadParameter';
      const message = fe.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || fe.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || fe instanceof SyntaxError
        ? 'The request body is not valid JSON.' : fe.message;
      return reply.code(fe.statusCode).send(new KeyVaultError(fe.statusCode, code, message).toBody());
    }
    req.log.error({ err: { type: fe.name, code: fe.code, stack: fe.stack } }, 'request failed');
    return reply.code(500).send(new KeyVaultError(500, 'InternalServerError', `The server encountered an internal error. Request id: ${req.coffer?.requestId ?? 'unknown'}.`).toBody());
  });

  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send(new KeyVaultError(404, 'NotFound', `The requested resource ${req.method} ${req.url.split('?')[0]} was not found.`).toBody());
  });
  return app;
}

/**
 * Requests Node's HTTP parser rejects before Fastify sees them (oversized headers or URL, malformed framing) still
 * get an Azure-shaped error, then the connection closes (its framing can no longer be trusted).
 */
function azureShapedClientError(err: NodeJS.ErrnoException, socket: Duplex) {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  if (socket.writable) {
    const [status, code, message] = err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'RequestHeaderFieldsTooLarge', 'The request URI or headers are too large.']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'RequestTimeout', 'The request was not received in time.']
        : [400, 'BadRequest', 'The request is not valid HTTP.'];
    const body = JSON.stringify(new KeyVaultError(status, code, message).toBody());
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n`
      + `Content-Length: ${Buffer.byteLength(body)}\r\nx-ms-request-id: ${crypto.randomUUID()}\r\nConnection: close\r\n\r\n${body}`);
  }
  socket.destroy(err);
}

/**
 * The URL as request logs show it: no query string (it may carry a resource or a code), and the IMDS binding secret
 * in `/coffer/imds/{binding}/…` replaced, since that path segment is a credential.
 */
export function loggedUrl(url: string): string {
  return url.split('?')[0].replace(/^(\/coffer\/imds\/)[^/]+/i, '$1REDACTED');
}
