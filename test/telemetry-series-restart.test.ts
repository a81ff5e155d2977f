// A rate's step in a downsampled series adds each instance's rate over its entries' intervals,
// weighed by the part of the step it ran: an instance present for part of the step (started,
// stopped, or restarted under a new id) adds its share, not its rate as if it ran the whole
// step (review: a steady 10/s read 20/s in the step where its instance restarted). Instances
// running side by side add up, also when they flush out of phase (their intervals' union,
// longer than the step, read 20/s as 11/s). A steady rate stays that rate in a step holding
// an entry that covers two seconds (a skipped flush: it read 20/s) and in steps that are no
// multiple of the flush interval (10, 12, 10, 12 at 2,500 ms).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Telemetry } from '../controlplane/telemetry/metrics.ts';
import { telemetrySeries } from '../controlplane/telemetry/read.ts';
import { startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';

describe('downsampled rates', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis('single');
  });
  afterAll(async () => {
    await redis?.stop();
  });

  const T0 = 1_000_000;
  /** Entries of 10 ops over 1 s each, [instance, at (ms)], as a series of `stepMs` steps. */
  async function seriesAt(entries: [instance: string, at: number][], stepMs: number) {
    const keys = uniqueKeys();
    const r = redis.client();
    // Stream ids must grow: the entries go in time order.
    const ordered = [...entries].sort((x, y) => x[1] - y[1]);
    for (const [i, [instance, at]] of ordered.entries())
      await r.xadd(
        keys.telemetry('svc'),
        `${at}-${i}`,
        'instance',
        instance,
        'at',
        at,
        'interval_s',
        1,
        'ops',
        10,
        'ops_per_s',
        10,
      );
    return telemetrySeries(r, keys, 'svc', 'ops_per_s', { fromMs: T0, toMs: T0 + 9_999, stepMs });
  }
  /** Entries at the end of whole seconds, in one 10 s step. */
  const series = (entries: [instance: string, second: number][]) =>
    seriesAt(
      entries.map(([inst, s]) => [inst, T0 + s * 1_000 - 1]),
      10_000,
    );
  const seconds = (from: number, to: number) =>
    Array.from({ length: to - from + 1 }, (_, i) => from + i);

  it('a steady 10/s stays 10/s in the step where its instance restarted', async () => {
    const pts = await series([
      ...seconds(1, 5).map((s) => ['host-100', s] as [string, number]),
      ...seconds(6, 10).map((s) => ['host-200', s] as [string, number]),
    ]);
    expect(pts).toHaveLength(1);
    expect(pts[0]?.value).toBeCloseTo(10);
  });

  it('two instances flushing out of phase add up, in steps as long as their interval', async () => {
    // 10/s each, flushing every second: a at .100, b at .900 (each on its own timer).
    const entries: [string, number][] = [];
    for (let s = 0; s < 10; s++)
      entries.push(['a', T0 + s * 1000 + 100], ['b', T0 + s * 1000 + 900]);
    const pts = await seriesAt(entries, 1_000);
    expect(pts).toHaveLength(10);
    for (const p of pts) expect(p.value, `step ${p.at}`).toBeCloseTo(20);
  });

  it('a steady 10/s reads 10/s in steps holding two entries, then three (2,500 ms)', async () => {
    const pts = await seriesAt(
      seconds(1, 10).map((s) => ['a', T0 + s * 1000 - 1] as [string, number]),
      2_500,
    );
    // Each entry's events over the intervals of the step's entries read 10, 12, 10, 12.
    expect(pts.map((p) => Number(p.value.toFixed(6)))).toEqual([10, 10, 10, 10]);
  });

  it('a steady 10/s reads 10/s in the step of an entry covering two seconds (a skipped flush)', async () => {
    const keys = uniqueKeys();
    const r = redis.client();
    const tel = new Telemetry({ redis: r, keys, service: 'svc', instance: 'a' });
    const t = Math.ceil(Date.now() / 1000) * 1000 + 1000;
    await tel.flush(t); // the first interval starts at t
    tel.inc('ops', 10);
    await tel.flush(t + 1000);
    tel.inc('ops', 20); // the flush at t + 2000 was skipped: this entry covers 2 s
    expect((await tel.flush(t + 3000))['ops_per_s']).toBe(10);
    tel.inc('ops', 10);
    await tel.flush(t + 4000);
    const pts = await telemetrySeries(r, keys, 'svc', 'ops_per_s', {
      fromMs: t + 1,
      toMs: t + 4000,
      stepMs: 1000,
    });
    expect(pts.map((p) => p.at - t)).toEqual([1000, 3000, 4000]);
    // The skipped flush's step read 20/s (its 20 events over the step, not the 2 s they took).
    expect(pts.map((p) => Number(p.value.toFixed(6)))).toEqual([10, 10, 10]);
  });

  it('two instances flushing at different intervals (1 s and 2 s) add up in every step', async () => {
    // Only the instance whose entry ended in a step was counted: 10, 20, 10, 20 for 20/s.
    const keys = uniqueKeys();
    const r = redis.client();
    const add = (inst: string, at: number, intervalS: number) =>
      r.xadd(
        keys.telemetry('svc'),
        `${at}-${inst === 'a' ? 0 : 1}`,
        'instance',
        inst,
        'at',
        at,
        'interval_s',
        intervalS,
        'ops_per_s',
        10,
      );
    for (let i = 1; i <= 20; i++) {
      await add('a', T0 + i * 1000 + 500, 1);
      if (i % 2 === 0) await add('b', T0 + i * 1000 + 500, 2);
    }
    const pts = await telemetrySeries(r, keys, 'svc', 'ops_per_s', {
      fromMs: T0 + 4000,
      toMs: T0 + 18_000,
      stepMs: 1000,
    });
    expect(pts.length).toBeGreaterThan(10);
    for (const p of pts) expect(p.value, `step ${p.at}`).toBeCloseTo(20);
  });

  it('two instances side by side add up', async () => {
    const pts = await series([
      ...seconds(1, 10).map((s) => ['a', s] as [string, number]),
      ...seconds(1, 10).map((s) => ['b', s] as [string, number]),
    ]);
    expect(pts[0]?.value).toBeCloseTo(20);
  });
});
