// The Idempotency-Key header of the API's once-only writes (register a policy, change or roll
// back a knob): the request's key becomes the table's request id, scoped by the caller so two
// callers' keys never meet. A retry of the same request with the same key answers the first
// outcome; the key with another request is refused (field requestId, rule same_request). Each
// table compares the requests made to its own route; a key is also held by the first route it
// was used on, so another route's write under it is refused too (each table saw only its own).
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { RedisClient } from '../redis/connect.ts';
import type { Keys } from '../store/keys.ts';
import { REQUEST_TTL_MS } from '../store/request-id.ts';
import { ApiError } from './errors.ts';
import { headers } from './schemas.ts';

/** The request headers of a once-only write: the usual ones and an optional Idempotency-Key. */
export const idempotentHeaders = {
  ...headers,
  properties: {
    ...headers.properties,
    'idempotency-key': {
      type: 'string',
      pattern: '^[A-Za-z0-9_.:-]{1,100}$',
      description:
        'a key for this request (1 to 100 letters, digits, - _ . :): a retry of the same request with the same key within 24 h answers the first outcome and changes nothing more; the key with another request is refused',
    },
  },
} as const;

/** The caller's scope of its keys: two callers' keys never meet. */
function actorOf(request: FastifyRequest): string {
  return createHash('sha256').update(request.auth.actor).digest('hex').slice(0, 16);
}

/** The table's request id for the request's Idempotency-Key, or undefined without one. */
export function requestIdOf(request: FastifyRequest): string | undefined {
  const key = request.headers['idempotency-key'];
  if (typeof key !== 'string') return undefined;
  return `${actorOf(request)}:${key}`;
}

/**
 * Holds each Idempotency-Key (per caller, 24 h) for the route it was first used on, before the
 * route's handler runs: the same key on another once-only route is refused. In the knobs
 * family, which the API's Redis user writes.
 */
export function holdIdempotencyKeys(
  app: FastifyInstance,
  deps: { redis: RedisClient; keys: Keys },
): void {
  app.addHook('preHandler', async (request) => {
    const key = request.headers['idempotency-key'];
    const declared = (request.routeOptions.schema?.headers as typeof headers | undefined)
      ?.properties;
    if (typeof key !== 'string' || !declared || !('idempotency-key' in declared)) return;
    const route = `${request.method} ${request.routeOptions.url}`;
    const held = deps.keys.key('knobs', 'api_idempotency', actorOf(request), key);
    if ((await deps.redis.set(held, route, 'PX', REQUEST_TTL_MS, 'NX')) === 'OK') return;
    const first = await deps.redis.get(held);
    if (first !== null && first !== route)
      throw new ApiError(
        'KNOBOS_API_VALIDATION',
        `requestId: Idempotency-Key ${key} was used for another request (${first}); a retry must send the same request`,
        { field: 'requestId', rule: 'same_request' },
      );
  });
}
