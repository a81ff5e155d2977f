// Review fixes in telemetry: a cap on a page boundary still says `truncated` (and the series
// leaves out the step the cut falls in), a flush queued behind a slow one measures its interval
// to when it runs, and trace reads say when they were cut at `count`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RedisClient } from '../controlplane/redis/connect.ts';
import { Telemetry } from '../controlplane/telemetry/metrics.ts';
import {
  MAX_TELEMETRY_ENTRIES,
  telemetryEntries,
  telemetrySeries,
  traceRecords,
} from '../controlplane/telemetry/read.ts';
import type { Keys } from '../controlplane/store/keys.ts';
import { startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('telemetry review fixes', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis('single');
  });
  afterAll(async () => {
    await redis?.stop();
  });

  /** n entries of one instance, one per ms from t0, ids t0+i-0. */
  async function fill(keys: Keys, t0: number, n: number): Promise<void> {
    const c = redis.client();
    for (let from = 0; from < n; from += 10_000) {
      const pipe = c.pipeline();
      for (let i = from; i < Math.min(n, from + 10_000); i++) {
        const at = String(t0 + i);
        pipe.xadd(keys.telemetry('svc'), `${at}-0`, 'instance', 'a', 'at', at, 'req', '1');
      }
      await pipe.exec();
    }
  }

  it('says truncated when the cap is a multiple of the page and the range goes on', async () => {
    const keys = uniqueKeys();
    const c = redis.client();
    const t0 = 1_700_000_000_000;
    await fill(keys, t0, 5_001);
    const cut = await telemetryEntries(c, keys, 'svc', t0, t0 + 10_000, 5_000);
    expect(cut).toHaveLength(5_000);
    expect(cut.truncated).toBe(true);
    expect(cut[0]?.id).toBe(`${t0 + 1}-0`);
    // Exactly at the cap (on a page boundary) is not cut.
    const whole = await telemetryEntries(c, keys, 'svc', t0 + 1, t0 + 10_000, 5_000);
    expect(whole).toHaveLength(5_000);
    expect(whole.truncated).toBe(false);
    const two = await telemetryEntries(c, keys, 'svc', t0, t0 + 10_000, 10_000);
    expect([two.length, two.truncated]).toEqual([5_001, false]);
    // The series leaves out the step the cut falls in: [t0, t0 + 1000) lost its first entry.
    const series = await telemetrySeries(c, keys, 'svc', 'req', {
      fromMs: t0,
      toMs: t0 + 10_000,
      stepMs: 1_000,
      maxEntries: 5_000,
    });
    expect(series.truncated).toBe(true);
    expect(series.map((p) => p.at)).toEqual([1, 2, 3, 4, 5].map((s) => t0 + s * 1_000));
    expect(series.at(-1)).toEqual({ at: t0 + 5_000, value: 1, n: 1 });
  });

  it('says truncated at the default cap of 50,000', async () => {
    const keys = uniqueKeys();
    const c = redis.client();
    const t0 = 1_700_000_000_000;
    await fill(keys, t0, MAX_TELEMETRY_ENTRIES + 1);
    const cut = await telemetryEntries(c, keys, 'svc', t0, t0 + 100_000);
    expect(cut).toHaveLength(MAX_TELEMETRY_ENTRIES);
    expect(cut.truncated).toBe(true);
    const whole = await telemetryEntries(c, keys, 'svc', t0 + 1, t0 + 100_000);
    expect([whole.length, whole.truncated]).toEqual([MAX_TELEMETRY_ENTRIES, false]);
  });

  it('measures a flush queued behind a slow one to when it runs, not when it was called', async () => {
    const keys = uniqueKeys();
    const c = redis.client();
    let delayMs = 0;
    // A client whose XADD takes delayMs (Redis lagging).
    const slow = new Proxy(c, {
      get: (target, p) => {
        if (p === 'xadd')
          return async (...args: unknown[]) => {
            await sleep(delayMs);
            return (target.xadd as (...a: unknown[]) => Promise<unknown>)(...args);
          };
        const v: unknown = Reflect.get(target, p);
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    }) as RedisClient;
    const t = new Telemetry({ redis: slow, keys, service: 'svc', instance: 'a' });
    await t.flush();
    delayMs = 600;
    const first = t.flush(); // takes the interval's counts now, writes for 600 ms
    await sleep(100);
    const second = t.flush(); // called 100 ms in; runs when the first is written
    t.inc('ops', 60); // counted in the second flush's interval, ~600 ms long
    await first;
    delayMs = 0;
    const fields = await second;
    expect(fields['ops']).toBe(60);
    // The old flush divided by the 100 ms between the two calls: 600/s.
    expect(fields['interval_s']).toBeGreaterThanOrEqual(0.5);
    expect(fields['ops_per_s']).toBeLessThanOrEqual(120);
    expect(fields['ops_per_s']).toBeGreaterThanOrEqual(60);
    // And the next interval starts when the second flush ran.
    await sleep(200);
    t.inc('ops', 20);
    const next = await t.flush();
    expect(next['interval_s']).toBeLessThan(0.5);
  });

  it('says when trace records were cut at count', async () => {
    const keys = uniqueKeys();
    const c = redis.client();
    for (let i = 0; i < 5; i++)
      await c.xadd(keys.trace('svc', 'k'), `${1_000 + i}-0`, 'i', String(i));
    const cut = await traceRecords(c, keys, 'svc', 'k', { count: 3 });
    expect(cut.map((e) => e.fields['i'])).toEqual(['0', '1', '2']);
    expect(cut.truncated).toBe(true);
    const whole = await traceRecords(c, keys, 'svc', 'k', { count: 5 });
    expect([whole.length, whole.truncated]).toEqual([5, false]);
    const range = await traceRecords(c, keys, 'svc', 'k', { fromMs: 1_002, count: 3 });
    expect([range.length, range.truncated]).toEqual([3, false]);
  });
});
