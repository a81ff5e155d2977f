// The Idempotency-Key header of the API's once-only writes (register a policy, change or roll
// back a knob): the request's key becomes the table's request id, scoped by the caller so two
// callers' keys never meet. A retry of the same request with the same key answers the first
// outcome; the key with another request is refused (field requestId, rule same_request).
import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
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

/** The table's request id for the request's Idempotency-Key, or undefined without one. */
export function requestIdOf(request: FastifyRequest): string | undefined {
  const key = request.headers['idempotency-key'];
  if (typeof key !== 'string') return undefined;
  const actor = createHash('sha256').update(request.auth.actor).digest('hex').slice(0, 16);
  return `${actor}:${key}`;
}
