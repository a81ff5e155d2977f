// Review fixes in the live workload drivers and the npm start stacks: maxOps 0 means no
// operations (it was dropped as falsy and the driver ran unbounded); a wait longer than a
// timer holds (~24.8 days) is waited, not fired after 1 ms; the messaging driver paces on the
// monotonic clock (a wall-clock step back stalled it for as long); the messaging stack closes
// its knob client even when its workload's stop fails.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { KnobClient } from '../controlplane/knobs/client.ts';
import { KnobTable } from '../controlplane/knobs/table.ts';
import { createLogger } from '../controlplane/log.ts';
import { startMessagingStack } from '../controlplane/run/messaging-stack.ts';
import { MessagingWorkload } from '../controlplane/workload/messaging.ts';
import { Paced } from '../controlplane/workload/paced.ts';
import { SchedulerWorkload } from '../controlplane/workload/scheduler.ts';
import { messagingFixture } from './helpers/messaging-fixture.ts';
import { eventually, startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';

const log = createLogger('workload-review-fixes');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the paced drivers', () => {
  it('submit nothing with maxOps 0', async () => {
    let submitted = 0;
    const w = SchedulerWorkload.start({
      submitter: {
        submit: async () => {
          submitted++;
          return { id: 'x', created: true } as never;
        },
      },
      ratePerS: 1000,
      seed: 1,
      medianMs: 1,
      sigma: 0,
      estimateSigma: 0,
      tenants: 2,
      maxOps: 0,
    });
    await sleep(150);
    await w.stop();
    expect({ started: w.stats.started, submitted }).toEqual({ started: 0, submitted: 0 });
  });

  it('wait for an operation due beyond what one timer holds', async () => {
    let started = 0;
    // A mean gap of 1e11 ms (~3 years): the first operation is due far beyond 2^31 - 1 ms.
    const p = new Paced({ ratePerS: 1e-8, concurrency: 1, seed: 1 }, async () => {
      started++;
    });
    await sleep(200);
    await p.stop();
    expect(started).toBe(0);
  });
});

describe('the messaging driver and stack', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis('single');
  });
  afterAll(async () => {
    vi.restoreAllMocks();
    await redis?.stop();
  });

  it('keeps publishing at its rate when the wall clock steps back', async () => {
    const f = await messagingFixture(redis, {});
    await f.topics.ensure('wall', { partitions: 1 });
    const w = await MessagingWorkload.start({
      redis: f.redis,
      keys: f.mkeys,
      knobs: f.knobs,
      topics: f.topics,
      topic: 'wall',
      source: {
        kind: 'generated',
        config: {
          durationMs: 5_000,
          arrivals: { kind: 'poisson', ratePerS: 200 },
          tokensPerMessage: 4,
        },
      },
      loop: true,
      seed: 3,
      log,
    });
    try {
      await eventually(() => w.stats.published >= 20, 'publishing');
      const realNow = Date.now.bind(Date);
      const back = vi.spyOn(Date, 'now').mockImplementation(() => realNow() - 60_000);
      await sleep(300); // the driver's current wait ends
      const publish = vi.spyOn(w.producer, 'publish');
      await sleep(1_000); // ~200 due at 200/s
      const during = publish.mock.calls.length;
      publish.mockRestore();
      back.mockRestore();
      expect(during).toBeGreaterThan(100);
    } finally {
      await w.stop();
      await f.close();
    }
  });

  it('closes its knob client even when the workload stop fails', async () => {
    const knobs = new KnobTable(redis.client(), { keys: uniqueKeys() });
    await knobs.seed();
    const stack = await startMessagingStack(knobs, log, { seed: 1, ratePerS: 100 });
    await eventually(() => stack.workload.stats.published >= 5, 'some published');
    const realStop = stack.workload.stop.bind(stack.workload);
    const failing = vi.spyOn(stack.workload, 'stop').mockImplementation(async () => {
      await realStop();
      throw new Error('consumer stop failed');
    });
    const close = vi.spyOn(KnobClient.prototype, 'close');
    await expect(stack.stop()).rejects.toThrow('consumer stop failed');
    expect(close).toHaveBeenCalledTimes(1);
    failing.mockRestore();
    close.mockRestore();
  });
});
