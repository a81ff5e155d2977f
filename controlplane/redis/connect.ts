// One way to get a Redis connection: a URL (one node) or a cluster seed list. Everything
// above this uses the `RedisClient` type, so the same code runs on one node and on Redis Cluster.
import { Cluster, Redis } from 'ioredis';

export type RedisClient = Redis | Cluster;

export type RedisTarget = { url: string } | { cluster: { host: string; port: number }[] };

export interface ConnectOptions {
  /** Name shown in CLIENT LIST, e.g. 'knob-client'. */
  name?: string;
  /** Redis ACL user and password (from the environment, never from the repo). */
  username?: string;
  password?: string;
  /** Commands fail after this many reconnect attempts instead of queueing forever. */
  maxRetriesPerRequest?: number | null;
}

/** Parses REDIS_URL or KNOBOS_REDIS_CLUSTER ("host:port,host:port") from the environment. */
export function targetFromEnv(env: NodeJS.ProcessEnv = process.env): RedisTarget | undefined {
  const seeds = env['KNOBOS_REDIS_CLUSTER'];
  if (seeds) {
    return {
      cluster: seeds.split(',').map((s) => {
        const [host, port] = s.trim().split(':');
        if (!host || !port || !Number.isInteger(Number(port))) {
          throw new Error(`KNOBOS_REDIS_CLUSTER: '${s}' is not host:port`);
        }
        return { host, port: Number(port) };
      }),
    };
  }
  const url = env['REDIS_URL'];
  return url ? { url } : undefined;
}

/**
 * How a cluster client rides through a failover. When a primary dies, its commands fail with
 * "Connection is closed" and are retried every retryDelayOnFailover after a slot-map refresh;
 * once the cluster marks it failed (cluster-node-timeout, 5 s on managed clusters) the other
 * nodes answer CLUSTERDOWN until a replica is promoted, then MOVED to the new primary. Every
 * retry counts against maxRedirections, so the budget (64 x 250 ms = 16 s) must outlast
 * detection plus election; ioredis's default (16 x 100 ms) gives up before a replica is promoted.
 */
export const RIDE_THROUGH_FAILOVER = {
  maxRedirections: 64,
  retryDelayOnFailover: 250,
  retryDelayOnClusterDown: 250,
  retryDelayOnTryAgain: 100,
  slotsRefreshTimeout: 2_000,
} as const;

export function connect(target: RedisTarget, opts: ConnectOptions = {}): RedisClient {
  const common = {
    ...(opts.name ? { connectionName: opts.name } : {}),
    ...(opts.username ? { username: opts.username } : {}),
    ...(opts.password ? { password: opts.password } : {}),
    maxRetriesPerRequest: opts.maxRetriesPerRequest === undefined ? 20 : opts.maxRetriesPerRequest,
    // Reconnect quickly at first, then back off to at most 2 s between attempts.
    retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2_000),
  };
  if ('url' in target) return new Redis(target.url, common);
  // A cluster client reconnects its node connections itself; retryStrategy is its own.
  const { retryStrategy, ...nodeOptions } = common;
  return new Cluster(target.cluster, {
    redisOptions: nodeOptions,
    scaleReads: 'master',
    clusterRetryStrategy: retryStrategy,
    enableOfflineQueue: true,
    ...RIDE_THROUGH_FAILOVER,
  });
}

/** A second connection to the same target, e.g. a subscriber. */
export function duplicate(client: RedisClient): RedisClient {
  return client.duplicate();
}
