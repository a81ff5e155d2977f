// Test fixtures: real redis-server processes (one node, or a cluster of 3 primaries with one
// replica each, as deployed) started per suite, a unique key prefix per test, and clients that
// are closed afterwards.
import { randomBytes } from 'node:crypto';
import { ManagedCluster } from '../../controlplane/redis/managed-cluster.ts';
import { ManagedRedis, type AppendFsync } from '../../controlplane/redis/managed.ts';
import { connect, type RedisClient, type RedisTarget } from '../../controlplane/redis/connect.ts';
import { Keys } from '../../controlplane/store/keys.ts';

export type Backend = 'single' | 'cluster';

export interface TestRedis {
  backend: Backend;
  target: RedisTarget;
  /** A new client; closed by stop(). */
  client(): RedisClient;
  stop(): Promise<void>;
  single?: ManagedRedis;
  cluster?: ManagedCluster;
}

export async function startTestRedis(
  backend: Backend,
  /** replicas: per primary of a cluster (default 1; 0 for a cluster of primaries only). */
  opts: { appendfsync?: AppendFsync; replicas?: number } = {},
): Promise<TestRedis> {
  const clients: RedisClient[] = [];
  const track = (c: RedisClient): RedisClient => {
    clients.push(c);
    c.on('error', () => {});
    return c;
  };
  if (backend === 'single') {
    const single = await ManagedRedis.start(
      opts.appendfsync ? { appendfsync: opts.appendfsync } : {},
    );
    const target = { url: single.url };
    return {
      backend,
      target,
      single,
      client: () => track(connect(target)),
      stop: async () => {
        clients.forEach((c) => c.disconnect());
        await single.stop();
      },
    };
  }
  const cluster = await ManagedCluster.start({
    primaries: 3,
    replicasPerPrimary: opts.replicas ?? 1,
    ...(opts.appendfsync ? { appendfsync: opts.appendfsync } : {}),
  });
  const target = { cluster: cluster.seeds };
  return {
    backend,
    target,
    cluster,
    client: () => track(connect(target)),
    stop: async () => {
      clients.forEach((c) => c.disconnect());
      await cluster.stop();
    },
  };
}

/** Each test gets its own key prefix, so tests never see each other's rows. */
export function uniqueKeys(): Keys {
  return new Keys(`t${randomBytes(4).toString('hex')}`);
}

/** Polls until fn() is true; fails with `what` after timeoutMs. */
export async function eventually(
  fn: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
}
