// A telemetry flush is an XADD with an automatic id: when a dropped connection loses its
// reply, ioredis resends it and the interval is in the stream twice. Each flush carries its
// name (`fs`), and readers count the first entry of a name only (every count and rate of the
// interval was counted twice). And a series keeps the entries whose `at` (the instance's
// clock, which steps them) is in its window, whatever Redis's clock in their ids says.
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

  it('steps an instance whose clock runs 20 s ahead by its own clock, inside the window', async () => {
    const keys = uniqueKeys();
    const r = redis.client();
    const t = new Telemetry({ redis: r, keys, service: 'svc', instance: 'ahead' });
    const skew = 20_000;
    const now = Date.now();
    await t.flush(now + skew);
    t.inc('req', 7);
    await t.flush(now + skew + 1_000);
    // A window on the instance's clock, where its entries are (Redis stamped them 20 s before).
    const inside = await telemetrySeries(r, keys, 'svc', 'req', {
      fromMs: now + skew - 500,
      toMs: now + skew + 5_000,
      stepMs: 1_000,
    });
    expect(inside.reduce((s, p) => s + p.value * p.n, 0)).toBe(7);
    // A window on Redis's clock around the writes: no step outside it.
    const fromMs = now - 1_000;
    const toMs = now + 2_000;
    const around = await telemetrySeries(r, keys, 'svc', 'req', { fromMs, toMs, stepMs: 1_000 });
    for (const p of around) {
      expect(p.at).toBeLessThanOrEqual(toMs);
      expect(p.at + 1_000).toBeGreaterThan(fromMs);
    }
  });
});
