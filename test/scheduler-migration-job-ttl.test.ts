// A finished job's row (and its #tasks set) expires after the job TTL on its shard; a move
// copied it to the new shard without its expiry, so it lived there for ever. It keeps the time
// it had left.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RedisClient } from '../controlplane/redis/connect.ts';
import { shardNamesOnPrimaries } from '../controlplane/scheduler/placement.ts';
import { claim, heartbeatWorker } from './helpers/scheduler-harness.ts';
import { migrationSetup, MOVER, SETTLE } from './helpers/migration-setup.ts';
import { startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';

describe('a finished job moved with its tenant keeps its time to live', () => {
  let redis: TestRedis;
  let client: RedisClient;
  let shards: string[];
  beforeAll(async () => {
    redis = await startTestRedis('cluster', { replicas: 0 });
    client = redis.client();
    shards = await shardNamesOnPrimaries(client, 3);
  }, 120_000);
  afterAll(async () => redis?.stop());

  it('keeps a finished job row expiring after the move', async () => {
    const keys = uniqueKeys();
    const s = migrationSetup(client, shards, keys);
    await s.onA.submitMany([
      { id: 'j1', type: 't', tenant: MOVER, jobId: 'J' },
      { id: 'j2', type: 't', tenant: MOVER, jobId: 'J' },
    ]);
    const now = Date.now();
    for (const id of ['j1', 'j2']) {
      await heartbeatWorker(s.A, `w-${id}`, now);
      const token = await claim(s.A, id, `w-${id}`, now);
      await s.A.settle(
        [{ taskId: id, token, outcome: 'ok', detail: 'x' }],
        { ...SETTLE, jobTtlMs: 3_600_000 },
        now,
      );
    }
    expect(await client.hget(s.a.job('J'), 'remaining')).toBe('0');
    expect(await client.pttl(s.a.job('J'))).toBeGreaterThan(0);
    expect((await (await s.begin()).run()).phase).toBe('done');
    expect(await client.hget(s.b.job('J'), 'remaining')).toBe('0');
    expect({
      jobRowTtlPositive: (await client.pttl(s.b.job('J'))) > 0,
      jobTasksTtlPositive: (await client.pttl(s.b.jobTasks('J'))) > 0,
    }).toEqual({ jobRowTtlPositive: true, jobTasksTtlPositive: true });
  }, 60_000);
});
