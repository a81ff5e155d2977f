// API fixtures: a knobs table with its own key prefix on a test Redis, a server built on it
// (inject-ready, optionally listening on a free port), and tokens of each role.
import type { FastifyInstance } from 'fastify';
import { Cluster } from 'ioredis';
import type { AuthOptions } from '../../controlplane/api/auth/hook.ts';
import { TokenStore } from '../../controlplane/api/auth/tokens.ts';
import type { Role } from '../../controlplane/api/auth/roles.ts';
import { buildServer } from '../../controlplane/api/server.ts';
import type { Clock } from '../../controlplane/knobs/clock.ts';
import { KnobTable } from '../../controlplane/knobs/table.ts';
import type { RedisClient } from '../../controlplane/redis/connect.ts';
import { uniqueKeys, type TestRedis } from './redis.ts';

export const ADMIN_TOKEN = 'test-admin-token-0123456789';
export const HOUR_MS = 3_600_000;

/** A clock tests move by hand, and set back when a fixture is reset. */
export class TestClock implements Clock {
  constructor(private ms: number) {}
  now(): number {
    return this.ms;
  }
  advance(ms: number): void {
    this.ms += ms;
  }
  set(ms: number): void {
    this.ms = ms;
  }
}

/** The API's clock as a live scheduler's (real time), for tests that run both. */
export function wallClock(): TestClock {
  return new (class extends TestClock {
    override now(): number {
      return Date.now();
    }
  })(0);
}

export interface ApiFixture {
  app: FastifyInstance;
  knobs: KnobTable;
  redis: RedisClient;
  clock: TestClock;
  /** A new token of `role` (and tenant); returns the plain token. */
  token(role: Role, tenant?: string): Promise<string>;
  /** `{ authorization: 'Bearer …' }` for a token. */
  bearer(token: string): { authorization: string };
  /** Deletes every row of this fixture's prefix and seeds the knobs again (a fresh table). */
  reset(): Promise<void>;
  /** http://127.0.0.1:<port> when started with listen. */
  url: string;
  close(): Promise<void>;
}

export async function startApi(
  redis: TestRedis,
  opts: { auth?: AuthOptions; listen?: boolean; startMs?: number; maxStreams?: number } = {},
): Promise<ApiFixture> {
  const client = redis.client();
  const keys = uniqueKeys();
  // The knobs' clock starts in the past, so history has real-looking times and moving it
  // forward passes every cooldown.
  const clock = new TestClock(opts.startMs ?? Date.now() - 2 * HOUR_MS);
  const knobs = new KnobTable(client, { keys, clock });
  await knobs.seed();
  const app = await buildServer({
    redis: client,
    knobs,
    clock,
    auth: opts.auth ?? { mode: 'tokens', adminToken: ADMIN_TOKEN },
    ...(opts.maxStreams ? { maxStreams: opts.maxStreams } : {}),
  });
  let url = '';
  if (opts.listen) {
    await app.listen({ port: 0, host: '127.0.0.1' });
    const addr = app.server.address();
    url = `http://127.0.0.1:${addr && typeof addr === 'object' ? addr.port : 0}`;
  }
  const tokens = new TokenStore(client, keys, clock);
  return {
    app,
    knobs,
    redis: client,
    clock,
    url,
    token: async (role, tenant) =>
      (await tokens.create({ name: `test-${role}`, role, tenant: tenant ?? null, actor: 'test' }))
        .token,
    bearer: (token) => ({ authorization: `Bearer ${token}` }),
    reset: async () => {
      const nodes = client instanceof Cluster ? client.nodes('master') : [client];
      for (const node of nodes) {
        const stream = node.scanStream({ match: `${keys.prefix}:*`, count: 500 });
        for await (const batch of stream as AsyncIterable<string[]>)
          for (const key of batch) await client.del(key); // one by one: keys span slots
      }
      clock.set(opts.startMs ?? Date.now() - 2 * HOUR_MS);
      await knobs.seed();
    },
    close: () => app.close(),
  };
}
