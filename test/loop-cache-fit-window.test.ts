// The files-cache target's calibration compares the replay's hit ratio with the live one over
// the span the replayed records cover (review: over the whole window, so a window cut to its
// newest records, or a cache run with another configuration earlier, was compared with a
// period never replayed).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KnobTable } from '../controlplane/knobs/table.ts';
import type { Calibration } from '../controlplane/loop/target.ts';
import { FilesCacheTarget } from '../controlplane/loop/targets/files-cache.ts';
import { startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';

describe('files cache calibration fit', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis('single');
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('observes the live hit ratio over the span the replayed trace covers', async () => {
    const keys = uniqueKeys();
    const knobs = new KnobTable(redis.client(), { keys });
    await knobs.seed();
    const r = redis.client();
    const now = Date.now();
    const access = keys.trace('files', 'access');
    const put = (ms: number, seq: number, key: string) =>
      r.xadd(access, `${ms}-${seq}`, 'time', ms, 'key', key, 'size', 100, 'op', 'read');
    for (let s = 0; s < 10; s++) await put(now - 50_000, s, `old${s}`); // cut by maxRecords 4
    for (let s = 0; s < 4; s++) await put(now - 10_000, s, 'hot'); // 1 miss, 3 hits
    const tel = keys.telemetry('files');
    const at = (ms: number, hits: number, misses: number) =>
      r.xadd(tel, `${ms}-0`, 'instance', 'a', 'at', ms, 'cache_hits', hits, 'cache_misses', misses);
    await at(now - 49_000, 0, 1000); // before the replayed span
    await at(now - 9_000, 3, 1);
    const target = new FilesCacheTarget({
      knobs,
      memoryPricePerGiB: 0,
      windowMs: 60_000,
      minRecords: 1,
      maxRecords: 4,
      budget: 2,
      shadowMs: 1_000,
      shadowMinRequests: 1,
    });
    const cal = (await target.calibrate()) as Calibration;
    expect(cal.records).toBe(4);
    expect(cal.fit.predicted).toBeCloseTo(0.75);
    expect(cal.fit.observed).toBeCloseTo(0.75);
  });
});
