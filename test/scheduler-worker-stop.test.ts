// A worker that stops, against a real redis-server: the copies it was running when stopped
// without draining (or left when a drain timed out) whose handlers end on the abort are settled
// at once as failed attempts (retried with backoff, not after lease_ms), those whose handlers
// run on keep their leases, and copies still queued in its inbox (never started) go back to the queue with no
// attempt counted when it deregisters; a speculative copy in it is dropped, and a primary whose
// speculative copy runs elsewhere leaves that one as the task's only copy.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SchedulerClient } from '../controlplane/scheduler/client.ts';
import { SchedShard } from '../controlplane/scheduler/shard.ts';
import { eventually, startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';
import {
  claim,
  heartbeatWorker,
  startScheduler,
  type SchedulerHarness,
} from './helpers/scheduler-harness.ts';

const KNOBS = { leaseMs: 600_000, retryLimit: 3, backoffMs: 10 };

describe('worker stop', () => {
  let redis: TestRedis;
  let h: SchedulerHarness;
  beforeAll(async () => {
    redis = await startTestRedis('single');
    // Leases far longer than the test: only the stop itself can give the copies back.
    h = await startScheduler(redis, {
      knobs: { 'scheduler.lease_ms': 600_000, 'scheduler.retry_backoff_ms': 10 },
    });
  });
  afterAll(async () => {
    await h?.stop();
    await redis?.stop();
  });

  /** A handler that ends when its copy is aborted, and one that runs on regardless. */
  const handlers = {
    honours: (ctx: { signal: AbortSignal }) =>
      new Promise((_, reject) =>
        ctx.signal.addEventListener('abort', () => reject(new Error('aborted'))),
      ),
    ignores: () => new Promise(() => {}),
  };
  const running = (shard: SchedShard) => shard.redis.hgetall(shard.k.tenantRunning());

  it('settles copies whose handlers end on the abort as failed attempts, leaves the others their leases', async () => {
    const first = await h.worker({ concurrency: 2, handlers });
    const c = h.service.client;
    await c.submitMany([
      { id: 'h1', type: 'honours' },
      { id: 'i1', type: 'ignores' },
    ]);
    for (const id of ['h1', 'i1'])
      await eventually(async () => (await c.get(id))?.state === 'leased', `${id} leased`);
    await first.stop({ drain: false });
    const h1 = await c.mustGet('h1');
    expect(['delayed', 'runnable']).toContain(h1.state);
    expect(h1.attempts).toBe(1);
    expect(h1.error).toMatch(/stopped before the copy ended/);
    // Still running, so not retried beside itself: its lease (600 s) decides.
    expect((await c.mustGet('i1')).state).toBe('leased');
    const shard = h.service.shard;
    expect(await running(shard)).toEqual({ default: '1' });
    expect(await shard.redis.exists(shard.k.worker(first.id))).toBe(0);

    const second = await h.worker({ concurrency: 1, handlers: { honours: () => 'done' } });
    await eventually(async () => (await c.get('h1'))?.state === 'done', 'h1 done by another');
    expect((await c.mustGet('h1')).attempts).toBe(2);
    await second.stop();
  });

  it('settles a copy left running when a drain times out the same way', async () => {
    const w = await h.worker({ concurrency: 1, handlers });
    const c = h.service.client;
    await c.submit({ id: 'h2', type: 'honours' });
    await eventually(async () => (await c.get('h2'))?.state === 'leased', 'h2 leased');
    await w.stop({ drain: true, timeoutMs: 300 });
    const h2 = await c.mustGet('h2');
    expect(['delayed', 'runnable']).toContain(h2.state);
    expect(h2.attempts).toBe(1);
  });

  it('gives back copies still queued in its inbox when it deregisters', async () => {
    const shard = new SchedShard(redis.client(), uniqueKeys(), '0');
    const client = new SchedulerClient({ shard });
    await client.submitMany(['q1', 'q2', 'q3'].map((id) => ({ id, type: 'x' })));
    const now = Date.now();
    await heartbeatWorker(shard, 'gone', now);
    await heartbeatWorker(shard, 'stays', now);
    // q1 queued on 'gone'; q2 runs on 'stays' with a speculative copy queued on 'gone'; q3
    // queued on 'gone' with its speculative copy on 'stays'.
    await claim(shard, 'q1', 'gone', now, KNOBS.leaseMs);
    const t2 = await claim(shard, 'q2', 'stays', now, KNOBS.leaseMs);
    const t3 = await claim(shard, 'q3', 'gone', now, KNOBS.leaseMs);
    const spec = await shard.speculate(
      KNOBS,
      [
        { taskId: 'q2', seenToken: t2, workerId: 'gone' },
        { taskId: 'q3', seenToken: t3, workerId: 'stays' },
      ],
      now + 1,
    );
    expect(spec.map((s) => s.status)).toEqual(['ok', 'ok']);
    const q3spec = spec[1]?.token as string;

    expect(await shard.deregister('gone', now + 2)).toBe(true);
    const q1 = await client.mustGet('q1');
    expect(q1.state).toBe('runnable');
    expect(q1.attempts).toBe(0);
    expect(q1.lease).toBeUndefined();
    expect(await shard.redis.zscore(shard.k.runnable(), 'q1')).not.toBeNull();
    const q2 = await client.mustGet('q2');
    expect([q2.state, q2.lease, q2.spec_lease]).toEqual(['leased', t2, undefined]);
    const q3 = await client.mustGet('q3');
    expect([q3.state, q3.lease, q3.worker, q3.spec_lease]).toEqual([
      'leased',
      q3spec,
      'stays',
      undefined,
    ]);
    expect((await shard.redis.zrange(shard.k.leases(), 0, -1)).sort()).toEqual(
      [`q2|${t2}`, `q3|${q3spec}`].sort(),
    );
    // 'stays' holds q2's and q3's copies, nothing of 'gone' is left.
    expect(await shard.redis.hget(shard.k.worker('stays'), 'used_slots')).toBe('2');
    expect(await running(shard)).toEqual({ default: '2' });
    expect(
      await shard.redis.exists(
        shard.k.worker('gone'),
        shard.k.inbox('gone'),
        shard.k.stops('gone'),
      ),
    ).toBe(0);
  });
});
