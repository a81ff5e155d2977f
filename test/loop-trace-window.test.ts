// The calibration window of the loop's targets holds every stream whole over one span: where a
// stream is cut by its record bound inside a millisecond (a trace writer's batch shares one),
// the span starts at the next millisecond, or another stream would keep records of that ms
// whose partners were cut (review: an arrival kept while its duration was cut replayed with
// its estimate instead of its run time).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { traceWindow } from '../controlplane/loop/targets/common.ts';
import { startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';

describe('traceWindow', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis('single');
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('starts after a millisecond a stream was cut inside', async () => {
    const keys = uniqueKeys();
    const r = redis.client();
    const X = 1_000_000;
    for (let s = 0; s < 3; s++)
      await r.xadd(keys.trace('scheduler', 'durations'), `${X}-${s}`, 'id', `t${s}`);
    await r.xadd(keys.trace('scheduler', 'arrivals'), `${X}-0`, 'id', 't0');
    await r.xadd(keys.trace('scheduler', 'arrivals'), `${X + 5}-0`, 'id', 't9');
    const w = await traceWindow(r, keys, 'scheduler', ['arrivals', 'durations'], {
      fromMs: X - 1_000,
      toMs: X + 1_000,
      maxRecords: 2,
    });
    expect(w.records.durations).toEqual([]);
    expect(w.records.arrivals.map((e) => e.id)).toEqual([`${X + 5}-0`]);
  });

  it('keeps a millisecond whose first record the cut stream kept', async () => {
    const keys = uniqueKeys();
    const r = redis.client();
    const X = 1_000_000;
    await r.xadd(keys.trace('scheduler', 'durations'), `${X - 10}-0`, 'id', 'old');
    for (let s = 0; s < 2; s++)
      await r.xadd(keys.trace('scheduler', 'durations'), `${X}-${s}`, 'id', `t${s}`);
    await r.xadd(keys.trace('scheduler', 'arrivals'), `${X}-0`, 'id', 't0');
    const w = await traceWindow(r, keys, 'scheduler', ['arrivals', 'durations'], {
      fromMs: X - 1_000,
      toMs: X + 1_000,
      maxRecords: 2,
    });
    expect(w.records.durations.map((e) => e.id)).toEqual([`${X}-0`, `${X}-1`]);
    expect(w.records.arrivals.map((e) => e.id)).toEqual([`${X}-0`]);
  });
});
