// Review fixes in the live workload drivers and the npm start stacks: maxOps 0 means no
// operations (it was dropped as falsy and the driver ran unbounded); a wait longer than a
// timer holds (~24.8 days) is waited, not fired after 1 ms; the messaging driver paces on the
// monotonic clock (a wall-clock step back stalled it for as long); the messaging stack closes
// its knob client even when its workload's stop fails; a cache trace's invalidations replay as
// writes of their block (they were read like requests); a scheduler workload's options are
// checked (no tenants made a tenant 'tenant--1').
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { KnobClient } from '../controlplane/knobs/client.ts';
import { KnobTable } from '../controlplane/knobs/table.ts';
import { createLogger } from '../controlplane/log.ts';
import { startMessagingStack } from '../controlplane/run/messaging-stack.ts';
import { MessagingWorkload } from '../controlplane/workload/messaging.ts';
import { Paced } from '../controlplane/workload/paced.ts';
import type { FileService } from '../controlplane/files/service.ts';
import { FilesWorkload } from '../controlplane/workload/files.ts';
import { SchedulerWorkload } from '../controlplane/workload/scheduler.ts';
import { CacheTraceBuilder } from '../envs/loaders/cache-trace.ts';
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

  it('refuse a scheduler workload with no tenants or a run time that is no number', () => {
    const o = {
      submitter: { submit: async () => ({ id: 'x', created: true }) as never },
      ratePerS: 10,
      seed: 1,
      medianMs: 5,
      sigma: 0.5,
      estimateSigma: 0,
      tenants: 2,
    };
    expect(() => SchedulerWorkload.start({ ...o, tenants: 0 })).toThrow(
      'tenants must be an integer >= 1, got 0',
    );
    expect(() => SchedulerWorkload.start({ ...o, medianMs: Number.NaN })).toThrow(
      'medianMs must be >= 0, got NaN',
    );
    expect(() => SchedulerWorkload.start({ ...o, sigma: -1 })).toThrow(
      'sigma must be >= 0, got -1',
    );
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

describe('the files workload on a cache trace', () => {
  it('writes the block of an invalidation and reads the block of a request', async () => {
    const b = new CacheTraceBuilder('inline', false);
    b.push('a');
    b.invalidate('b');
    b.push('b');
    b.push('c');
    const trace = b.build(4);
    const calls: string[] = [];
    const files = {
      mkdir: async () => ({}),
      stat: async () => ({ sizeBytes: 2 * 8 }),
      create: async () => ({}),
      read: async (_c: unknown, p: string, r: { offset: number }) => {
        calls.push(`read ${p}@${r.offset}`);
        return Buffer.alloc(0);
      },
      write: async (_c: unknown, p: string, offset: number, data: Buffer) => {
        calls.push(`write ${p}@${offset}+${data.length}`);
      },
    } as unknown as FileService;
    const w = await FilesWorkload.start({
      files,
      source: { kind: 'trace', trace, files: 2, blockBytes: 8, maxKeys: 4 },
      ratePerS: 1000,
      concurrency: 1,
      seed: 1,
      maxOps: 4,
    });
    await eventually(() => w.stats.done === 4, 'four operations');
    await w.stop();
    // Keys a, b, c are 0, 1, 2: key k is file k % 2 at block floor(k / 2).
    expect(calls).toEqual([
      'read /workload/f0@0',
      'write /workload/f1@0+8',
      'read /workload/f1@0',
      'read /workload/f0@8',
    ]);
  });
});

describe('the files workload options', () => {
  // Every call the workload makes to the file service is recorded: a refused start makes none.
  const recording = (calls: string[]) =>
    new Proxy({} as FileService, {
      get: (_t, name) => async () => {
        calls.push(String(name));
        return { sizeBytes: 0 };
      },
    });
  const trace = () => {
    const b = new CacheTraceBuilder('inline', false);
    b.push('a');
    b.push('b');
    return b.build(2);
  };
  const base = { ratePerS: 1000, seed: 1, maxOps: 4 };
  const cases: [string, Omit<Parameters<typeof FilesWorkload.start>[0], 'files'>, RegExp][] = [
    [
      'a Zipf source with no files',
      { ...base, source: { kind: 'zipf', files: 0, alpha: 0.8, fileBytes: 16 } },
      /files must be an integer >= 1, got 0/,
    ],
    [
      'a trace source with no files',
      { ...base, source: { kind: 'trace', trace: trace(), files: 0, blockBytes: 8, maxKeys: 2 } },
      /files must be an integer >= 1, got 0/,
    ],
    [
      'an alpha that is no number',
      { ...base, source: { kind: 'zipf', files: 2, alpha: NaN, fileBytes: 16 } },
      /alpha must be >= 0, got NaN/,
    ],
    [
      'a write fraction above 1',
      { ...base, source: { kind: 'zipf', files: 2, alpha: 1, fileBytes: 16, writeFraction: 1.5 } },
      /writeFraction must be in \[0, 1\], got 1.5/,
    ],
    [
      'a negative block size',
      { ...base, source: { kind: 'trace', trace: trace(), files: 1, blockBytes: -8, maxKeys: 2 } },
      /blockBytes must be an integer >= 1, got -8/,
    ],
    [
      'a fractional key bound',
      { ...base, source: { kind: 'trace', trace: trace(), files: 1, blockBytes: 8, maxKeys: 1.5 } },
      /maxKeys must be an integer >= 1, got 1.5/,
    ],
    [
      'no concurrency',
      { ...base, concurrency: 0, source: { kind: 'zipf', files: 2, alpha: 1, fileBytes: 16 } },
      /concurrency must be an integer >= 1, got 0/,
    ],
  ];
  it.each(cases)(
    'refuses %s, naming the field and the rule, before touching a file',
    async (_n, o, why) => {
      const calls: string[] = [];
      await expect(FilesWorkload.start({ ...o, files: recording(calls) })).rejects.toThrow(why);
      expect(calls).toEqual([]);
    },
  );
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
