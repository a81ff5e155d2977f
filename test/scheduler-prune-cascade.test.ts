// Retention and a failure's cascade still queued for the reaper: the dead index holds the
// upstream_failed tasks the failing step marked, whose own children the reaper walks next.
// Pruning one of them (by count) removed its children set, and its children stayed pending for
// ever. The dead index is not pruned while a cascade is queued; once it has run, it is.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../controlplane/knobs/clock.ts';
import { startTestRedis, type TestRedis } from './helpers/redis.ts';
import {
  claim,
  heartbeatWorker,
  startScheduler,
  type SchedulerHarness,
} from './helpers/scheduler-harness.ts';

const T0 = 1_700_000_000_000;
const SETTLE = { durationsKept: 101, usageBucketMs: 1_000, usageTtlMs: 600_000, jobTtlMs: 600_000 };

describe('prune while a cascade is queued', () => {
  let redis: TestRedis;
  let h: SchedulerHarness;
  beforeAll(async () => {
    redis = await startTestRedis('single');
    h = await startScheduler(redis, { service: { background: false, clock: new ManualClock(T0) } });
  });
  afterAll(async () => {
    await h?.stop();
    await redis?.stop();
  });

  it('a grandchild of a dead root is marked upstream_failed even when retention ran first', async () => {
    const shard = h.service.shard;
    await heartbeatWorker(shard, 'w', T0);
    const children = Array.from({ length: 1200 }, (_, i) => ({
      id: `c${String(i).padStart(4, '0')}`,
      type: 'job',
      parents: ['root'],
    }));
    await h.service.client.submitMany([
      { id: 'root', type: 'job' },
      ...children,
      { id: 'grand', type: 'job', parents: ['c0000'] },
    ]);
    const token = await claim(shard, 'root', 'w', T0 + 10, 60_000);
    const [r] = await shard.settle(
      [{ taskId: 'root', token, outcome: 'final', detail: 'broke' }],
      SETTLE,
      T0 + 20,
    );
    expect(r?.status).toBe('dead');
    // The failing step marked the root's 1,200 children (past its 1,000 bound): their own
    // children are left to the reaper's cascade list.
    expect(await shard.redis.hget(shard.k.task('c0000'), 'state')).toBe('upstream_failed');
    expect(await shard.redis.hget(shard.k.task('grand'), 'state')).toBe('pending');
    // Retention by count (keep 1,000 of the dead index) runs before the next reap pass.
    const p = await shard.prune(
      { doneBefore: 0, doneMax: 1_000_000, deadBefore: 0, deadMax: 1_000, budget: 5_000 },
      T0 + 30,
    );
    expect(p.dead).toBe(0); // a cascade is queued: the dead index waits
    for (let i = 0; i < 5; i++)
      await shard.reap({ max: 500, jobTtlMs: 600_000, retryLimit: 3, backoffMs: 10 }, T0 + 40 + i);
    expect(await shard.redis.llen(shard.k.children('*'))).toBe(0);
    // The grandchild can never run: its parent died upstream (it stayed pending for ever).
    expect(await shard.redis.hget(shard.k.task('grand'), 'state')).toBe('upstream_failed');
    // The cascade done, retention keeps the dead index to its bound.
    const after = await shard.prune(
      { doneBefore: 0, doneMax: 1_000_000, deadBefore: 0, deadMax: 1_000, budget: 5_000 },
      T0 + 50,
    );
    expect(after.dead).toBe(202); // root, 1,200 children and the grandchild, less 1,000
    expect(await shard.redis.zcard(shard.k.dead())).toBe(1_000);
  });
});
