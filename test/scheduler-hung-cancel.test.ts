// A cancel frees the copy's slot in Redis at once and rings the dispatcher; when the cancelled
// handler ignores its signal and runs on, the worker beats at once with the slot counted as
// taken, and the beat gives back a claim made on it meanwhile (no attempt counted). Before,
// that claim waited in the inbox behind the hung handler, unrenewed, until its lease ran out
// while the worker beat on: the task lost an attempt (here its only one: dead-lettered).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startTestRedis, type TestRedis } from './helpers/redis.ts';
import { startScheduler, type SchedulerHarness } from './helpers/scheduler-harness.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a claim behind a cancelled copy that ignores its signal', () => {
  let redis: TestRedis;
  let h: SchedulerHarness;
  beforeAll(async () => {
    redis = await startTestRedis('single');
    h = await startScheduler(redis, {
      knobs: { 'scheduler.lease_ms': 1_000, 'scheduler.retry_limit': 0 },
    });
  });
  afterAll(async () => {
    await h?.stop();
    await redis?.stop();
  });

  it('keeps the queued task alive while its worker beats, and runs it once the slot frees', async () => {
    let release: () => void = () => {};
    await h.worker({
      concurrency: 1,
      heartbeatMs: 1_000,
      handlers: {
        hold: () => new Promise((r) => (release = () => r('held'))), // ignores ctx.signal
        work: () => 'ok',
      },
    });
    const c = h.service.client;
    await c.submit({ id: 'A', type: 'hold' });
    await eventually(async () => (await c.get('A'))?.state === 'leased', 'A leased');
    await c.submit({ id: 'B', type: 'work' });
    await sleep(100);
    expect((await c.get('B'))?.state).toBe('runnable'); // the only slot is busy
    await c.cancel('A', { actor: 'op' });
    // A's handler runs on for 2.5 leases after its cancel; the worker beats meanwhile.
    await sleep(2_500);
    expect((await c.get('B'))?.state).not.toBe('dead');
    release();
    await eventually(async () => (await c.get('B'))?.state === 'done', 'B done');
    const b = await c.get('B');
    expect(b?.error ?? null).toBeNull();
    expect(b?.attempts ?? 0).toBeLessThanOrEqual(1);
  }, 20_000);
});
