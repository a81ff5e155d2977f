// A telemetry flush is an XADD with an automatic id: when a dropped connection loses its
// reply, ioredis resends it and the interval is in the stream twice. Each flush carries its
// name (`fs`), and readers count the first entry of a name only (every count and rate of the
// interval was counted twice).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Telemetry } from '../controlplane/telemetry/metrics.ts';
import { telemetryEntries, telemetrySeries } from '../controlplane/telemetry/read.ts';
import { throughDropper } from './helpers/reply-dropper.ts';
import { startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';

describe('a telemetry flush resent after a lost reply', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis('single');
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('counts its interval once', async () => {
    const { proxy, client, close } = await throughDropper(redis);
    try {
      const keys = uniqueKeys();
      const t = new Telemetry({ redis: client, keys, service: 'svc', instance: 'a' });
      const base = Date.now();
      await t.flush(base);
      t.inc('req', 5);
      proxy.armed = true;
      await t.flush(base + 1_000).catch(() => undefined);
      expect(proxy.dropped).toBe(1);
      const direct = redis.client();
      // The stream holds the interval twice...
      expect(await direct.xlen(keys.telemetry('svc'))).toBe(3);
      // ...and every reader counts it once.
      const entries = await telemetryEntries(direct, keys, 'svc', 0, Date.now() + 60_000);
      expect(entries.reduce((s, e) => s + Number(e.fields['req'] ?? 0), 0)).toBe(5);
      const pts = await telemetrySeries(direct, keys, 'svc', 'req', {
        fromMs: 0,
        toMs: Date.now() + 60_000,
        stepMs: 3_600_000,
      });
      expect(pts.reduce((s, p) => s + p.value * p.n, 0)).toBe(5);
    } finally {
      await close();
    }
  });
});
