// Leased tasks by lease expiry: `limit` of them while that many run, though a speculated task
// holds two members of the leases index (one per copy). Reading `limit` members (what the
// API's tasks?state=leased listing did) named fewer tasks while more were leased.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SchedShard } from '../controlplane/scheduler/shard.ts';
import { startTestRedis, type TestRedis } from './helpers/redis.ts';
import { dispatchOne, startScheduler, type SchedulerHarness } from './helpers/scheduler-harness.ts';

const T0 = 1_700_000_000_000;
const KNOBS = { leaseMs: 10_000, retryLimit: 3, backoffMs: 100 };

describe('leased task ids', () => {
  let redis: TestRedis;
  let h: SchedulerHarness;
  let shard: SchedShard;

  beforeAll(async () => {
    redis = await startTestRedis('single');
    h = await startScheduler(redis, { service: { background: false } });
    shard = h.service.shard;
    for (const w of ['wa', 'wb'])
      await shard.heartbeat(
        {
          workerId: w,
          heartbeatMs: 60_000,
          capacity: { cpu: 16, memMb: 8192 },
          slots: 16,
          host: 'test',
          pid: 1,
          renew: [],
        },
        T0,
      );
    await h.service.client.submitMany(
      Array.from({ length: 6 }, (_, i) => ({ id: `t${i}`, type: 'job' })),
    );
    // t0..t2 run first and get a speculative copy each, whose leases expire before t3..t5's.
    const tokens: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await dispatchOne(shard, `t${i}`, 'wa', T0, { leaseMs: KNOBS.leaseMs });
      expect(r.status).toBe('ok');
      tokens.push(r.token);
    }
    const spec = await shard.speculate(
      KNOBS,
      tokens.map((seenToken, i) => ({ taskId: `t${i}`, seenToken, workerId: 'wb' })),
      T0 + 1,
    );
    expect(spec.map((s) => s.status)).toEqual(['ok', 'ok', 'ok']);
    for (let i = 3; i < 6; i++) {
      const r = await dispatchOne(shard, `t${i}`, 'wa', T0 + 1_000, { leaseMs: KNOBS.leaseMs });
      expect(r.status).toBe('ok');
    }
  });
  afterAll(async () => {
    await h?.stop();
    await redis?.stop();
  });

  it('names `limit` tasks when speculated ones hold two leases each', async () => {
    // Nine copies for six tasks; the first four members name only three tasks.
    expect(await redis.client().zcard(shard.k.leases())).toBe(9);
    for (const limit of [1, 2, 3, 4, 5, 6]) {
      const { ids, truncated } = await h.service.queries.leasedTaskIds(limit);
      expect(ids, `limit ${limit}`).toEqual(['t0', 't1', 't2', 't3', 't4', 't5'].slice(0, limit));
      expect(truncated).toBe(false);
    }
    // Past the end: every leased task once.
    expect((await h.service.queries.leasedTaskIds(50)).ids).toHaveLength(6);
  });

  it('stops at its bound and says so', async () => {
    // Four members is all it may read: three tasks (t0 twice), and `truncated`.
    expect(await h.service.queries.leasedTaskIds(4, 4)).toEqual({
      ids: ['t0', 't1', 't2'],
      truncated: true,
    });
  });
});
