// Feature detection of the Redis we are connected to. RediSearch (needed by redis-om's search)
// is absent from Debian's redis-server: we detect it and never depend on it.
import type { RedisClient } from '../redis/connect.ts';

export interface RedisFeatures {
  version: string;
  cluster: boolean;
  /** RediSearch 2 loaded (FT.* commands). */
  search: boolean;
  modules: string[];
}

export async function detectFeatures(redis: RedisClient): Promise<RedisFeatures> {
  const info = (await redis.info('server')) as string;
  const version = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
  const cluster = /redis_mode:cluster/.test(info) || 'nodes' in redis;
  let modules: string[] = [];
  try {
    const list = (await redis.call('MODULE', 'LIST')) as unknown[][];
    modules = list.map((m) => String(m[1]));
  } catch {
    // MODULE may be refused by ACLs; no module then.
  }
  return { version, cluster, search: modules.some((m) => m === 'search' || m === 'ft'), modules };
}
