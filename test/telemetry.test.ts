import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Telemetry } from '../controlplane/telemetry/metrics.ts';
import { telemetryEntries, telemetrySeries, traceRecords } from '../controlplane/telemetry/read.ts';
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
    // The window of that step (entries are stepped and kept by their stamp, `at`).
    const rate = await telemetrySeries(redis.client(), keys, 'svc', 'ops_per_s', {
      fromMs: base,
      toMs: base + step - 1,
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
      t.gauge('lag_ms', lat * 100);
      t.inc('hits', hits);
      t.inc('misses', 10 - hits);
      await t.flush(now);
    }
    const q = { fromMs: now - 5000, toMs: now + 5000, stepMs: 60_000 };
    expect((await telemetrySeries(redis.client(), keys, 'svc', 'ops', q))[0]?.value).toBe(40);
    expect((await telemetrySeries(redis.client(), keys, 'svc', 'lat_ms_mean', q))[0]?.value).toBe(
      3,
    );
    // A time gauge is no count: 200 and 400 ms of lag are 300 on average, not 600.
    expect((await telemetrySeries(redis.client(), keys, 'svc', 'lag_ms', q))[0]?.value).toBe(300);
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
    // A sampled record says so: a reader must not take the sample for the whole trace.
    expect(got[0]?.fields).toEqual({ key: 'k0', size: '10', sr: '0.5' });
  });
  it('reads a whole range in pages, and keeps its newest entries when the cap cuts it', async () => {
    const keys = uniqueKeys();
    const c = redis.client();
    // 12 instances reporting each second for 15 minutes (the API's default range): 10,800
    // entries in one stream, more than one XRANGE page of 10,000.
    const step = 3_000;
    const t0 = Math.floor(1_700_000_000_000 / step) * step;
    const pipe = c.pipeline();
    for (let s = 0; s < 900; s++)
      for (let i = 0; i < 12; i++) {
        const at = String(t0 + s * 1000);
        pipe.xadd(
          keys.telemetry('svc'),
          `${at}-${i}`,
          'instance',
          `i${i}`,
          'at',
          at,
          'req_per_s',
          '1',
        );
      }
    await pipe.exec();
    const q = { fromMs: t0, toMs: t0 + 900_000, stepMs: step };
    const all = await telemetrySeries(c, keys, 'svc', 'req_per_s', q);
    expect(all).toHaveLength(300);
    expect(all.at(-1)).toEqual({ at: t0 + 897_000, value: 12, n: 36 });
    expect(all.truncated).toBe(false);
    expect(all.every((p) => p.value === 12)).toBe(true);
    const entries = await telemetryEntries(c, keys, 'svc', t0, t0 + 900_000);
    expect(entries).toHaveLength(10_800);
    expect(entries.truncated).toBe(false);
    expect(entries[0]?.id).toBe(`${t0}-0`);
    expect(entries.at(-1)?.id).toBe(`${t0 + 899_000}-11`);
    // Over the cap: the newest entries are kept and the result says it was cut.
    const cut = await telemetryEntries(c, keys, 'svc', t0, t0 + 900_000, 1_000);
    expect(cut).toHaveLength(1_000);
    expect(cut.truncated).toBe(true);
    expect(cut.at(-1)?.id).toBe(`${t0 + 899_000}-11`);
    expect(cut[0]?.id).toBe(`${t0 + 816_000}-8`); // 1,000 = 83 x 12 + 4
    // Exactly at the cap is not cut.
    expect((await telemetryEntries(c, keys, 'svc', t0, t0 + 9_999, 120)).truncated).toBe(false);
    // A cut series leaves out the step the cut falls in (some of its entries were not read).
    const newest = await telemetrySeries(c, keys, 'svc', 'req_per_s', { ...q, maxEntries: 1_000 });
    expect(newest.truncated).toBe(true);
    expect(newest[0]?.at).toBe(t0 + 819_000);
    expect(newest.at(-1)?.at).toBe(t0 + 897_000);
    expect(newest.every((p) => p.value === 12 && p.n === 36)).toBe(true);
  });

  it('keeps the counts and the interval of a flush whose write failed', async () => {
    const keys = uniqueKeys();
    const c = redis.client();
    const t = new Telemetry({ redis: c, keys, service: 'svc', instance: 'a' });
    const base = Date.now();
    await t.flush(base);
    t.inc('req', 5);
    t.observe('lat_ms', 10);
    // The write fails: the key holds another type.
    await c.set(keys.telemetry('svc'), 'not a stream');
    await expect(t.flush(base + 1_000)).rejects.toThrow(/WRONGTYPE/);
    await c.del(keys.telemetry('svc'));
    t.inc('req', 2);
    t.observe('lat_ms', 30);
    const fields = await t.flush(base + 2_000);
    expect(fields).toMatchObject({
      interval_s: 2,
      req: 7,
      req_per_s: 3.5,
      lat_ms_count: 2,
      lat_ms_mean: 20,
      lat_ms_max: 30,
    });
    // Through a client that is not connected, too.
    const live = redis.client();
    const dead = redis.client();
    dead.disconnect();
    let via = live;
    const switched = new Proxy(live, {
      get: (_t, p) => {
        const v: unknown = Reflect.get(via, p);
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(via) : v;
      },
    });
    const d = new Telemetry({ redis: switched, keys, service: 'svc', instance: 'b' });
    await d.flush(base);
    via = dead;
    d.inc('req', 5);
    await expect(d.flush(base + 1_000)).rejects.toThrow(/closed/i);
    via = live;
    expect(await d.flush(base + 3_000)).toMatchObject({ interval_s: 3, req: 5 });
  });

  it('bounds what a trace writer holds while Redis lags: one flush in flight, the rest dropped', async () => {
    const keys = uniqueKeys();
    const c = redis.client();
    const admin = redis.client();
    const w = new TraceWriter({
      redis: c,
      keys,
      service: 'svc',
      kind: 'k',
      bufferMax: 100,
      flushMs: 5,
    });
    await admin.call('CLIENT', 'PAUSE', '1000', 'WRITE');
    try {
      for (let round = 0; round < 5; round++) {
        for (let i = 0; i < 100; i++) w.record({ round, i });
        await new Promise((r) => setTimeout(r, 30));
      }
      // The first 100 are being written; everything after them is over the bound.
      expect(w.dropped).toBe(400);
      expect((c as Redis).commandQueue.length).toBeLessThanOrEqual(100);
    } finally {
      await admin.call('CLIENT', 'UNPAUSE');
    }
    await w.flush();
    expect(await c.xlen(keys.trace('svc', 'k'))).toBe(100);
  });

  it('counts trace records Redis refused as dropped', async () => {
    const keys = uniqueKeys();
    const c = redis.client();
    const w = new TraceWriter({ redis: c, keys, service: 'svc', kind: 'k' });
    await c.set(keys.trace('svc', 'k'), 'not a stream');
    for (let i = 0; i < 10; i++) w.record({ i });
    expect(await w.flush()).toBe(0);
    expect(w.dropped).toBe(10);
  });
});
