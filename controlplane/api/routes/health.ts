// Liveness and readiness, public (no data): /healthz answers while the process serves HTTP;
// /readyz also pings Redis, with a deadline, and answers 503 when it is not reachable.
import type { FastifyInstance } from 'fastify';
import type { RedisClient } from '../../redis/connect.ts';
import { errorBody } from '../errors.ts';
import { ref } from '../schemas.ts';

const READY_DEADLINE_MS = 1_000;

async function ping(redis: RedisClient): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), READY_DEADLINE_MS);
  });
  try {
    return await Promise.race([
      redis.ping().then(
        (r) => r === 'PONG',
        () => false,
      ),
      deadline,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export function healthRoutes(app: FastifyInstance, redis: RedisClient, startedAt: number): void {
  const ok = {
    type: 'object',
    properties: { status: { type: 'string' }, uptimeS: { type: 'number' } },
  } as const;
  app.get(
    '/healthz',
    {
      schema: {
        tags: ['operations'],
        summary: 'Liveness',
        security: [],
        response: { 200: ok },
      },
    },
    async () => ({ status: 'ok', uptimeS: (Date.now() - startedAt) / 1000 }),
  );
  app.get(
    '/readyz',
    {
      schema: {
        tags: ['operations'],
        summary: 'Readiness: Redis answers a PING within 1 s',
        security: [],
        response: { 200: ok, 503: ref('ApiError') },
      },
    },
    async (_request, reply) => {
      if (await ping(redis)) return { status: 'ready', uptimeS: (Date.now() - startedAt) / 1000 };
      return reply
        .code(503)
        .send(
          errorBody(
            'KNOBOS_API_UNAVAILABLE',
            `Redis did not answer a PING within ${READY_DEADLINE_MS} ms`,
          ),
        );
    },
  );
}
