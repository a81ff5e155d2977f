// A rate's step in a downsampled series is the events of its entries over the time they cover
// together: an instance present for part of the step (started, stopped, or restarted under a
// new id) adds its events, not its rate as if it ran the whole step (review: a steady 10/s
// read 20/s in the step where its instance restarted). Instances running side by side add up,
// also when they flush out of phase (their intervals' union, longer than the step, read 20/s as
// 11/s: the covered time counts at most the step).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

  it('two instances side by side add up', async () => {
    const pts = await series([
      ...seconds(1, 10).map((s) => ['a', s] as [string, number]),
      ...seconds(1, 10).map((s) => ['b', s] as [string, number]),
    ]);
    expect(pts[0]?.value).toBeCloseTo(20);
  });
});
