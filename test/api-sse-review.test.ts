// Event streams opened in a race: one that arrives while the server is closing is refused
// and does not hold app.close() up, and one whose token is revoked while it is being opened
// ends at once, not at the next heartbeat (15 s). The races are made deterministic by running
// the other side (close, revoke) inside the route's one await between auth and registration:
// the knobs table's epoch() read.
import { afterEach, beforeAll, afterAll, describe, expect, it, vi } from 'vitest';
import { ADMIN_TOKEN, startApi, type ApiFixture } from './helpers/api-server.ts';
import { startTestRedis, type TestRedis } from './helpers/redis.ts';

/** Runs `during` once, inside the events route, after auth and before the stream is attached. */
function beforeAttach(api: ApiFixture, during: () => Promise<void>): void {
  const epoch = api.knobs.epoch.bind(api.knobs);
  vi.spyOn(api.knobs, 'epoch').mockImplementationOnce(async () => {
    await during();
    return epoch();
  });
}

/** Resolves true when the response body ends within `ms`, false when it is still open. */
async function endsWithin(res: Response, ms: number): Promise<boolean> {
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const timer = new Promise<false>((r) => setTimeout(() => r(false), ms));
  const drained = (async () => {
    while (!(await reader.read()).done);
    return true as const;
  })().catch(() => true as const);
  return Promise.race([drained, timer]);
}

describe('event streams opened in a race', () => {
  let redis: TestRedis;
  const aborts: AbortController[] = [];

  beforeAll(async () => {
    redis = await startTestRedis('single');
  });
  afterEach(() => {
    vi.restoreAllMocks();
    for (const a of aborts.splice(0)) a.abort();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  function open(api: ApiFixture, token: string): Promise<Response> {
    const ac = new AbortController();
    aborts.push(ac);
    return fetch(`${api.url}/api/events`, { headers: api.bearer(token), signal: ac.signal });
  }

  it('refuses a stream that reaches the hub after close began, and close returns', async () => {
    const api = await startApi(redis, { listen: true });
    let closing: Promise<void> | undefined;
    beforeAttach(api, async () => {
      closing = api.app.close();
      // The server stops listening right after its preClose hooks (the hub's close) ran.
      while (api.app.server.listening) await new Promise((r) => setTimeout(r, 5));
    });
    try {
      const res = await open(api, ADMIN_TOKEN);
      expect(res.status).toBe(503);
      expect(((await res.json()) as { error: unknown }).error).toMatchObject({
        code: 'KNOBOS_API_UNAVAILABLE',
      });
      const closed = await Promise.race([
        (closing as Promise<void>).then(() => true),
        new Promise<false>((r) => setTimeout(() => r(false), 2_000)),
      ]);
      expect(closed).toBe(true);
    } finally {
      // On failure, let the close finish: no stream or kept-alive socket holds it.
      for (const a of aborts) a.abort();
      api.app.server.closeAllConnections();
      await closing;
    }
  });

  it('ends at once a stream whose token is revoked between auth and registration', async () => {
    const api = await startApi(redis, { listen: true });
    try {
      const token = await api.token('viewer');
      const id = token.split('_')[1] as string;
      beforeAttach(api, async () => {
        const res = await api.app.inject({
          method: 'DELETE',
          url: `/api/tokens/${id}`,
          headers: api.bearer(ADMIN_TOKEN),
        });
        expect(res.statusCode).toBe(200);
      });
      const res = await open(api, token);
      expect(res.status).toBe(200); // it was live when checked
      // Well under the 15 s heartbeat that would otherwise catch it.
      expect(await endsWithin(res, 2_000)).toBe(true);
      // The token is dead for new streams too.
      expect((await open(api, token)).status).toBe(401);
    } finally {
      for (const a of aborts) a.abort();
      await api.close();
    }
  });
});
