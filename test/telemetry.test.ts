import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Telemetry } from '../controlplane/telemetry/metrics.ts';
import { telemetrySeries, traceRecords } from '../controlplane/telemetry/read.ts';
import { TraceWriter } from '../controlplane/telemetry/traces.ts';
import { startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';

describe('telemetry and traces', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis('single');
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('writes counters, rates, gauges, summaries and ratios per interval', async () => {
    const keys = uniqueKeys();
    const t = new Telemetry({ redis: redis.client(), keys, service: 'svc', instance: 'a' });
    t.ratio('hit_ratio', 'hits', ['misses']);
    t.inc('hits', 3);
    t.inc('misses');
    t.gauge('queue', 7);
    for (const v of [1, 2, 3, 4, 100]) t.observe('lat_ms', v);
    const now = Date.now();
    await t.flush(now);
    const fields = await t.flush(now + 1000); // an empty interval: no ratio, no summary
    expect(fields['hit_ratio']).toBeUndefined();
    expect(fields['lat_ms_count']).toBeUndefined();
    const series = await telemetrySeries(redis.client(), keys, 'svc', 'hit_ratio', {
      fromMs: now - 5000,
      toMs: now + 5000,
      stepMs: 60_000,
    });
    expect(series.map((p) => p.value)).toEqual([0.75]);
    const p99 = await telemetrySeries(redis.client(), keys, 'svc', 'lat_ms_p99', {
      fromMs: now - 5000,
      toMs: now + 5000,
      stepMs: 60_000,
    });
    expect(p99[0]?.value).toBe(100);
    const mean = await telemetrySeries(redis.client(), keys, 'svc', 'lat_ms_mean', {
      fromMs: now - 5000,
      toMs: now + 5000,
      stepMs: 60_000,
    });
    expect(mean[0]?.value).toBe(22);
  });

  it('writes a counter as 0 in intervals where nothing was counted, so rates average right', async () => {
    const keys = uniqueKeys();
    const t = new Telemetry({ redis: redis.client(), keys, service: 'svc', instance: 'a' });
    const now = Date.now();
    // Entries stamped within one step (the stream ids, which the read's window selects, are
    // the real time of the writes).
    const step = 120_000;
    const base = Math.floor(now / step) * step;
    await t.flush(base);
    t.inc('ops', 5);
    // One busy second among ten: 0.5 ops/s over the ten.
    for (let i = 1; i <= 10; i++) await t.flush(base + i * 1000);
    const rate = await telemetrySeries(redis.client(), keys, 'svc', 'ops_per_s', {
      fromMs: now - 60_000,
      toMs: now + 60_000,
      stepMs: step,
    });
    expect(rate.map((p) => p.value)).toEqual([0.5]);
  });

  it('adds rates of several instances and averages their other metrics', async () => {
    const keys = uniqueKeys();
    const a = new Telemetry({ redis: redis.client(), keys, service: 'svc', instance: 'a' });
    const b = new Telemetry({ redis: redis.client(), keys, service: 'svc', instance: 'b' });
    const now = Date.now();
    for (const [t, n, lat, hits] of [
      [a, 10, 2, 8],
      [b, 30, 4, 6],
    ] as const) {
      t.ratio('hit_ratio', 'hits', ['misses']);
      t.inc('ops', n);
      t.observe('lat_ms', lat);
      t.inc('hits', hits);
      t.inc('misses', 10 - hits);
      await t.flush(now);
    }
    const q = { fromMs: now - 5000, toMs: now + 5000, stepMs: 60_000 };
    expect((await telemetrySeries(redis.client(), keys, 'svc', 'ops', q))[0]?.value).toBe(40);
    expect((await telemetrySeries(redis.client(), keys, 'svc', 'lat_ms_mean', q))[0]?.value).toBe(
      3,
    );
    // Ratios average too (0.8 and 0.6 are 0.7, not 1.4: the SLO guard compares them).
    const ratio = await telemetrySeries(redis.client(), keys, 'svc', 'hit_ratio', q);
    expect(ratio[0]?.value).toBeCloseTo(0.7, 12);
    // A percentile read across instances: their mean by default, or the worst one (the SLO
    // guard's choice for percentiles), largest or smallest.
    const p99 = async (across?: 'max' | 'min') =>
      (
        await telemetrySeries(redis.client(), keys, 'svc', 'lat_ms_p99', {
          ...q,
          ...(across ? { across } : {}),
        })
      )[0]?.value;
    expect([await p99(), await p99('max'), await p99('min')]).toEqual([3, 4, 2]);
    // Rates and counts still add up.
    expect(
      (await telemetrySeries(redis.client(), keys, 'svc', 'ops', { ...q, across: 'max' }))[0]
        ?.value,
    ).toBe(40);
  });

  it('samples traces at the stated rate and writes them in one pipeline', async () => {
    const keys = uniqueKeys();
    let i = 0;
    const rand = () => (i++ % 4) / 4; // 0, .25, .5, .75: half fall under 0.5
    const w = new TraceWriter({
      redis: redis.client(),
      keys,
      service: 'svc',
      kind: 'access',
      sampleRate: 0.5,
      rand,
    });
    for (let k = 0; k < 100; k++) w.record({ key: `k${k}`, size: 10 });
    expect(await w.flush()).toBe(50);
    const got = await traceRecords(redis.client(), keys, 'svc', 'access');
    expect(got).toHaveLength(50);
    expect(got[0]?.fields).toEqual({ key: 'k0', size: '10' });
  });
});
