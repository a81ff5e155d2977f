// The scheduler's decision-support queries against a real redis-server, on cases a review
// reproduced: dead letters behind many upstream_failed entries of the dead index, a draining
// worker in the loaded-worker lists, and bad bucket widths and windows of the usage query.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../controlplane/knobs/clock.ts';
import { SchedulerInputError } from '../controlplane/scheduler/errors.ts';
import type { SchedShard } from '../controlplane/scheduler/shard.ts';
import { startTestRedis, type TestRedis } from './helpers/redis.ts';
import { claim, startScheduler, type SchedulerHarness } from './helpers/scheduler-harness.ts';

const T0 = 1_700_000_000_000;
const SETTLE = {
  durationsKept: 101,
  usageBucketMs: 1_000,
  usageTtlMs: 600_000,
  jobTtlMs: 600_000,
};

describe('scheduler queries (review cases)', () => {
  let redis: TestRedis;
  const harnesses: SchedulerHarness[] = [];
  beforeAll(async () => {
    redis = await startTestRedis('single');
  });
  afterAll(async () => {
    await Promise.all(harnesses.map((h) => h.stop()));
    await redis?.stop();
  });
  async function harness() {
    const h = await startScheduler(redis, {
      service: { background: false, clock: new ManualClock(T0) },
    });
    harnesses.push(h);
    return h;
  }
  async function register(shard: SchedShard, id: string, now: number, slots: number) {
    await shard.heartbeat(
      {
        workerId: id,
        heartbeatMs: 60_000,
        capacity: { cpu: 2, memMb: 1024 },
        slots,
        host: 'test',
        pid: 1,
        renew: [],
      },
      now,
    );
  }
  /** Claims `id` on `worker` at `at` and fails it for good: a dead letter at `at + 10`. */
  async function kill(shard: SchedShard, id: string, worker: string, at: number) {
    const token = await claim(shard, id, worker, at, 60_000);
    const [r] = await shard.settle(
      [{ taskId: id, token, outcome: 'final', detail: `${id} broke` }],
      SETTLE,
      at + 10,
    );
    expect(r?.status).toBe('dead');
  }

  it('finds dead letters behind the upstream_failed entries of the dead index, newest first', async () => {
    const h = await harness();
    const shard = h.service.shard;
    const q = h.service.queries;
    await register(shard, 'w', T0, 8);
    const children = Array.from({ length: 150 }, (_, i) => ({
      id: `c${String(i).padStart(3, '0')}`,
      type: 'job',
      parents: ['root'],
    }));
    await h.service.client.submitMany([
      { id: 'd1', type: 'job' },
      { id: 'd2', type: 'job' },
      { id: 'root', type: 'job' },
      ...children,
    ]);
    await kill(shard, 'd1', 'w', T0 + 100);
    await kill(shard, 'd2', 'w', T0 + 200);
    // The newest: the root's 150 children join the dead index at the same time, no rows.
    await kill(shard, 'root', 'w', T0 + 300);
    expect(await shard.redis.zcard(shard.k.dead())).toBe(153);

    const all = await q.deadLetters(100);
    expect(all.map((r) => r.id)).toEqual(['root', 'd2', 'd1']);
    expect(all[0]).toMatchObject({ error: 'root broke', dead_at: T0 + 310, attempts: 1 });
    expect((await q.deadLetters(2)).map((r) => r.id)).toEqual(['root', 'd2']);
    expect(await q.deadLetterRows(100)).toMatchObject({ truncated: false });
    // Bounded: a scan of 60 entries stops among the children, before d2 and d1.
    const cut = await q.deadLetterRows(100, 60);
    expect(cut.rows.map((r) => r.id)).toEqual(['root']);
    expect(cut.truncated).toBe(true);
    expect(await q.deadLetters(0)).toEqual([]);
  });

  it('leaves a draining worker (no slots) out of both loaded-worker lists', async () => {
    const h = await harness();
    const shard = h.service.shard;
    const q = h.service.queries;
    await register(shard, 'idle', T0, 2);
    await register(shard, 'busy', T0, 2);
    await register(shard, 'drained', T0, 0);
    await register(shard, 'draining', T0, 2);
    await h.service.client.submitMany([
      { id: 'a', type: 'j' },
      { id: 'b', type: 'j' },
    ]);
    await claim(shard, 'a', 'busy', T0);
    await claim(shard, 'b', 'draining', T0);
    // It still runs b (half its cores) but takes nothing more.
    await register(shard, 'draining', T0 + 5, 0);

    const lists = await q.loadedWorkers({ now: T0 + 10, high: 0.5, low: 0.25 });
    expect(lists.overloaded.map((w) => w.id)).toEqual(['busy']);
    expect(lists.underloaded.map((w) => w.id)).toEqual(['idle']);
    // Still listed, with its slots, among all workers.
    const loads = await q.workerLoads(T0 + 10);
    expect(loads.find((w) => w.id === 'drained')).toMatchObject({ slots: 0, live: true });
  });

  it('refuses a bucket width that is not a positive integer, and non-finite bounds', async () => {
    const h = await harness();
    const q = h.service.queries;
    // This shard's usage buckets (the only keys the query reads): the whole database is no
    // measure, as the other tests' services still run (their reapers remove their workers).
    const usageKeys = () => h.redis.keys(h.service.shard.k.usage(0).replace(/0$/, '*'));
    const before = await usageKeys();
    for (const bucketMs of [0, -1_000, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      const err = await q.tenantUsageByBucket(T0, T0 + 10_000, bucketMs).catch((e: unknown) => e);
      expect(err, `bucketMs ${bucketMs}`).toBeInstanceOf(SchedulerInputError);
      expect(err).toMatchObject({
        field: 'bucketMs',
        // As submit names them: not a finite number (type), below 1 (min), a fraction (integer).
        rule: bucketMs === 1.5 ? 'integer' : Number.isFinite(bucketMs) ? 'min' : 'type',
        status: 400,
      });
      await expect(q.tenantUsage(T0, T0 + 10_000, bucketMs)).rejects.toBeInstanceOf(
        SchedulerInputError,
      );
    }
    await expect(q.tenantUsageByBucket(Number.NaN, T0, 1_000)).rejects.toMatchObject({
      field: 'fromMs',
      rule: 'type',
    });
    await expect(q.tenantUsageByBucket(T0, Number.POSITIVE_INFINITY, 1_000)).rejects.toMatchObject({
      field: 'toMs',
      rule: 'type',
    });
    expect(await usageKeys()).toEqual(before);
    // An empty window reads nothing (the placement loop's shadow report asks for one).
    expect(await q.tenantUsageByBucket(T0 + 1_000, T0 + 1_000, 1_000)).toEqual([]);
    expect(await q.tenantUsageByBucket(T0 + 2_000, T0 + 1_000, 1_000)).toEqual([]);
    // A valid window: one bucket per 1,000 ms, the one holding fromMs included.
    expect(await q.tenantUsageByBucket(T0 + 500, T0 + 3_000, 1_000)).toHaveLength(3);
  });
});
