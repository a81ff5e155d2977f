// Maps every failure to the registry's JSON error body: typed KnobosErrors keep their code
// and status; fastify's own errors (schema validation, body parsing, bad URLs) become stable
// API codes; a lost Redis connection is a 503; anything else is a bug, logged, and a 500
// whose message gives nothing away.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { KnobosError } from '../store/errors.ts';
import { ApiError, errorBody, fromKnobosError, type ApiErrorCode } from './errors.ts';

/** fastify's error codes for malformed requests, and the API code each becomes. */
const FASTIFY_CODES: Record<string, ApiErrorCode> = {
  FST_ERR_CTP_EMPTY_JSON_BODY: 'KNOBOS_API_BAD_JSON',
  FST_ERR_CTP_INVALID_JSON_BODY: 'KNOBOS_API_BAD_JSON',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'KNOBOS_API_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_BODY_TOO_LARGE: 'KNOBOS_API_BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'KNOBOS_API_BAD_REQUEST',
  FST_ERR_BAD_URL: 'KNOBOS_API_BAD_REQUEST',
  FST_ERR_MAX_PARAM_LENGTH: 'KNOBOS_API_URI_TOO_LONG',
};

/** Clearer messages than fastify's for some codes. */
const FRIENDLY: Partial<Record<ApiErrorCode, string>> = {
  KNOBOS_API_UNSUPPORTED_MEDIA_TYPE: 'request bodies must be application/json',
  KNOBOS_API_BAD_JSON:
    'the body is not valid JSON (or is empty while content-type is application/json)',
};

/** ioredis failures that mean "Redis is away", not "our bug". */
function isRedisUnavailable(err: Error): boolean {
  return (
    err.name === 'MaxRetriesPerRequestError' ||
    /Connection is closed|Stream isn't writeable|ECONNREFUSED|ECONNRESET|ETIMEDOUT|CLUSTERDOWN|TRYAGAIN|All nodes failed|Cluster isn't ready|LOADING/.test(
      err.message,
    )
  );
}

interface AjvError {
  instancePath?: string;
  keyword?: string;
  message?: string;
  params?: Record<string, unknown>;
}

/** One validation failure as { field, rule, message }; field is e.g. `body.baseVersion`. */
function validationError(err: FastifyError): ApiError {
  const first = (err.validation?.[0] ?? {}) as AjvError;
  // 'querystring' is fastify's name; the API's field names say `query.<name>`.
  const where =
    err.validationContext === 'querystring' ? 'query' : (err.validationContext ?? 'request');
  const path = (first.instancePath ?? '').split('/').filter(Boolean);
  const missing = first.params?.['missingProperty'];
  const extra = first.params?.['additionalProperty'];
  if (typeof missing === 'string') path.push(missing);
  if (typeof extra === 'string') path.push(extra);
  const field = [where, ...path].join('.');
  const rule = first.keyword ?? 'schema';
  const what = typeof extra === 'string' ? 'is not allowed' : (first.message ?? 'is invalid');
  return new ApiError('KNOBOS_API_VALIDATION', `${field} ${what}`, { field, rule });
}

/** The typed error a failure maps to. */
export function classify(err: unknown): KnobosError {
  if (err instanceof KnobosError) return err;
  const e = err as FastifyError;
  if (e && typeof e === 'object') {
    if (e.validation) return validationError(e);
    const code = e.code ? FASTIFY_CODES[e.code] : undefined;
    if (code) return new ApiError(code, FRIENDLY[code] ?? e.message);
    // Any other client error fastify raises (it sets statusCode 4xx) is a malformed request.
    if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500)
      return new ApiError('KNOBOS_API_BAD_REQUEST', e.message);
    if (e instanceof Error && isRedisUnavailable(e))
      return new ApiError('KNOBOS_API_UNAVAILABLE', 'Redis is not reachable; try again shortly');
  }
  return new ApiError('KNOBOS_API_INTERNAL', 'internal error; the server log has the details');
}

function send(request: FastifyRequest, reply: FastifyReply, err: unknown): FastifyReply {
  const typed = classify(err);
  if (typed.status >= 500)
    request.log.error({ err, reqId: request.id }, `request failed: ${typed.code}`);
  const { status, body } = fromKnobosError(typed);
  if (status === 500) body.error['requestId'] = request.id;
  return reply.code(status).type('application/json; charset=utf-8').send(body);
}

export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err, request, reply) => send(request, reply, err));
  app.setNotFoundHandler((request, reply) =>
    reply
      .code(404)
      .send(
        errorBody(
          'KNOBOS_API_ROUTE_NOT_FOUND',
          `no route ${request.method} ${request.url.split('?')[0]}`,
        ),
      ),
  );
}

/** fastify's `frameworkErrors` option: bad URLs and overlong params get the same bodies. */
export function frameworkErrors(
  err: FastifyError,
  request: FastifyRequest,
  reply: FastifyReply,
): void {
  void send(request, reply, err);
}
