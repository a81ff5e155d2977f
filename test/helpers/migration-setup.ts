// What the step-by-step placement-migration tests share: a tenant moving from its hashed shard
// to the next one on a 3-primary cluster, the migration options (no grace, a short sweep), a
// migration of that move, and running one task to its end on a worker of its own.
import { expect } from 'vitest';
import type { RedisClient } from '../../controlplane/redis/connect.ts';
import type { MigrationOptions } from '../../controlplane/scheduler/migration-row.ts';
import { Migration } from '../../controlplane/scheduler/migration.ts';
import { SchedKeys } from '../../controlplane/scheduler/keys.ts';
import { SchedulerClient } from '../../controlplane/scheduler/client.ts';
import { SchedShard } from '../../controlplane/scheduler/shard.ts';
import type { Keys } from '../../controlplane/store/keys.ts';
import { hashShard } from '../../policies/placement/hash.ts';
import { claim, heartbeatWorker, quietLog } from './scheduler-harness.ts';

export const MOVER = 'mover';
export const OTHER = 'other';
export const SETTLE = {
  durationsKept: 101,
  usageBucketMs: 60_000,
  usageTtlMs: 3_600_000,
  jobTtlMs: 0,
};
export const REAP = { max: 1_000, jobTtlMs: 0, retryLimit: 3, backoffMs: 100 };
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The mover's home shard (by hash) and the one it moves to, as placement indexes. */
export const HOME = hashShard(MOVER, 3);
export const TARGET = (HOME + 1) % 3;

/** Resolves to what `p` settles with, or fails when it takes longer than `ms` (a hang). */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The mover's move from HOME to TARGET under `keys`, with its shards, keys and helpers. */
export function migrationSetup(
  client: RedisClient,
  shards: readonly string[],
  keys: Keys,
  o: Partial<MigrationOptions> = {},
) {
  const homeShard = shards[HOME] as string;
  const targetShard = shards[TARGET] as string;
  const A = new SchedShard(client, keys, homeShard);
  const B = new SchedShard(client, keys, targetShard);
  const opts: MigrationOptions = {
    redis: client,
    keys,
    shards,
    log: quietLog,
    graceMs: 0,
    sweepMs: 100,
    sweepEveryMs: 20,
    ...o,
  };
  const begin = (version = 1) => Migration.begin(opts, MOVER, homeShard, targetShard, version);
  /** Runs one task to its end on a worker of its own (ok, or a failure without retry). */
  const finish = async (shard: SchedShard, id: string, outcome: 'ok' | 'final' = 'ok') => {
    const now = Date.now();
    await heartbeatWorker(shard, `w-${id}`, now);
    const token = await claim(shard, id, `w-${id}`, now);
    const [r] = await shard.settle([{ taskId: id, token, outcome, detail: 'x' }], SETTLE, now);
    expect(r?.status).toBe(outcome === 'ok' ? 'ok' : 'dead');
    await shard.deregister(`w-${id}`, now);
  };
  return {
    A,
    B,
    a: new SchedKeys(keys, homeShard),
    b: new SchedKeys(keys, targetShard),
    opts,
    begin,
    finish,
    homeShard,
    targetShard,
    lockKey: `${keys.key('placement', 'migration', MOVER)}:lock`,
    onA: new SchedulerClient({ shard: A }),
  };
}
