// The embedded stack's scheduler shards, named apart from the stack itself so that light
// callers (the CLI) need not load the services, the loop and TensorFlow with them.
import type { RedisClient } from '../redis/connect.ts';
import { shardNamesOnPrimaries } from '../scheduler/placement.ts';

/** The placement knob's domain: one shard per index (knobs/catalog.ts `placement.map`). */
export const SCHEDULER_SHARDS = 3;

/** The stack's shard names: spread over the primaries on a cluster, s0..s2 on one Redis. */
export function schedulerShardNames(redis: RedisClient): Promise<string[]> {
  return shardNamesOnPrimaries(redis, SCHEDULER_SHARDS);
}
