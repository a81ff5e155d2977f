// The producer samples its arrival records (traceSampleRate, 1% by default) before it makes
// them; each kept record carries the rate as `sr`, so a reader (the simulator's calibration)
// can tell a sample from the whole workload (review: the records carried none, and a 1%
// sample read as all arrivals).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MessagingTelemetry } from '../controlplane/messaging/telemetry.ts';
import { readArrivals } from '../controlplane/messaging/trace.ts';
import { traceRecords } from '../controlplane/telemetry/read.ts';
import { startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';

describe('messaging arrival records', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis('single');
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('carry the rate they were sampled at', async () => {
    const keys = uniqueKeys();
    let i = 0;
    const t = new MessagingTelemetry({
      redis: redis.client(),
      keys,
      instance: 'p1',
      traceSampleRate: 0.5,
      rand: () => (i++ % 2 === 0 ? 0.1 : 0.9),
    });
    for (let n = 0; n < 10; n++)
      if (t.sampleArrival())
        t.arrivals.record({ topic: 'x', partition: 0, t_ms: 1_000 + n, bytes: 10 });
    await t.arrivals.flush();
    const got = await traceRecords(redis.client(), keys, 'messaging', 'arrivals');
    expect(got).toHaveLength(5); // sampled once, by the producer, not again by the writer
    for (const e of got) expect(e.fields['sr']).toBe('0.5');
    expect((await readArrivals(redis.client(), keys)).map((a) => a.sampleRate)).toEqual([
      0.5, 0.5, 0.5, 0.5, 0.5,
    ]);
    await t.stop();
  });
});
