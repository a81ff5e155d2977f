// /api/services/scheduler/usage counts the buckets a window touches against its bound of
// 10,000: a window of exactly 10,000 buckets' length not starting on a bucket edge touches
// 10,001, and the query read only the first 10,000, dropping the bucket holding toMs (an
// answer short by it, with 200). Such a window is refused now.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { wallClock } from './helpers/api-server.ts';
import { startRegistryApi, type RegistryApi } from './helpers/registry-fixtures.ts';
import { eventually, startTestRedis, type TestRedis } from './helpers/redis.ts';
import { startScheduler, type SchedulerHarness } from './helpers/scheduler-harness.ts';

const BUCKET = 10_000; // the API's default usageBucketMs (the worker runtime's)

describe('usage over a window of exactly 10,000 buckets', () => {
  let redis: TestRedis;
  let h: SchedulerHarness;
  let api: RegistryApi;
  beforeAll(async () => {
    redis = await startTestRedis('single');
    h = await startScheduler(redis);
    api = await startRegistryApi(redis, { knobs: h.table, clock: wallClock() });
  });
  afterAll(async () => {
    await api?.close();
    await h?.stop();
    await redis?.stop();
  });

  it('refuses a window touching more buckets than the bound', async () => {
    await h.worker({
      concurrency: 1,
      handlers: { work: async () => new Promise((r) => setTimeout(() => r('ok'), 30)) },
    });
    await h.service.client.submit({ id: 'u1', type: 'work', tenant: 'acme' });
    await eventually(async () => (await h.service.client.get('u1'))?.state === 'done', 'done');
    const row = await h.service.client.get('u1');
    const finished = row!.finished_at as number;
    const bucket = finished - (finished % BUCKET);
    const acme = api.bearer(await api.token('viewer', 'acme'));

    // The default window (last hour) sees it.
    const plain = (
      await api.app.inject({
        url: `/api/services/scheduler/usage?toMs=${bucket + 1}`,
        headers: acme,
      })
    ).json();
    expect(plain.tenants.map((t: { tenant: string }) => t.tenant)).toEqual(['acme']);

    const toMs = bucket + 1;
    // One bucket narrower: 10,000 buckets touched, acme's is counted.
    const narrower = (
      await api.app.inject({
        url: `/api/services/scheduler/usage?fromMs=${toMs - 9_999 * BUCKET}&toMs=${toMs}`,
        headers: acme,
      })
    ).json();
    expect(narrower.tenants.map((t: { tenant: string }) => t.tenant)).toEqual(['acme']);
    // toMs inside that bucket, the window 10,000 buckets wide (the documented maximum).
    const fromMs = toMs - 10_000 * BUCKET;
    const res = await api.app.inject({
      url: `/api/services/scheduler/usage?fromMs=${fromMs}&toMs=${toMs}`,
      headers: acme,
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({ field: 'query.fromMs', rule: 'max_window' });
  });
});
