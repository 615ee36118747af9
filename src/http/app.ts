import Fastify, { LogController, type FastifyInstance, type FastifyError } from 'fastify';
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
        req: (req) => ({ method: req.method, url: req.url.split('?')[0], remoteAddress: req.ip }),
        res: (res) => ({ statusCode: res.statusCode }),
      },
    },
    bodyLimit: BODY_LIMIT,
    // Object names reach 127 characters (find-my-way's default cap of 100 would answer 414 for legal names).
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 256 },
    requestIdHeader: false,
    logController: new LogController({ disableRequestLogging: opts.logLevel !== 'debug' }),
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
    forceCloseConnections: true,
  });

  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 64 * 1024 },
    (_req, body, done) => done(null, Object.fromEntries(new URLSearchParams(body as string))));

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
