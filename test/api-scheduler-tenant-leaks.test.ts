// What a tenant's token must not learn of another tenant through the scheduler routes (review):
// a job id naming another job's task set ('<job>#tasks') gave a 500 where an unknown job gives
// 404 (it told any token that job existed), and the backlog by type reported `scanned`, the
// runnable tasks of every tenant.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { wallClock } from './helpers/api-server.ts';
import { startRegistryApi, type RegistryApi } from './helpers/registry-fixtures.ts';
import { startTestRedis, type TestRedis } from './helpers/redis.ts';
import { startScheduler, type SchedulerHarness } from './helpers/scheduler-harness.ts';

describe("the scheduler routes under another tenant's token", () => {
  let redis: TestRedis;
  let h: SchedulerHarness;
  let api: RegistryApi;
  beforeAll(async () => {
    redis = await startTestRedis('single');
    h = await startScheduler(redis, { service: { background: false } });
    api = await startRegistryApi(redis, { knobs: h.table, clock: wallClock() });
  });
  afterAll(async () => {
    await api?.close();
    await h?.stop();
    await redis?.stop();
  });

  it('answers a job id ending in #tasks the same whether that job exists or not', async () => {
    await h.service.client.submitMany([
      { id: 'g1', type: 'x', tenant: 'globex', jobId: 'jg' },
      { id: 'g2', type: 'x', tenant: 'globex', jobId: 'jg' },
    ]);
    const acme = api.bearer(await api.token('operator', 'acme'));
    const probe = (job: string) =>
      api.app.inject({
        method: 'POST',
        url: `/api/services/scheduler/jobs/${encodeURIComponent(job)}/cancel`,
        headers: acme,
        payload: { reason: 'probe' },
      });
    const [unknown, existing] = [await probe('nope#tasks'), await probe('jg#tasks')];
    expect(existing.statusCode, existing.body).toBe(unknown.statusCode);
    expect(existing.statusCode).toBe(400);
    expect(existing.json().error).toMatchObject({ field: 'job', rule: 'name' });
  });

  it('does not tell a tenant how many runnable tasks the others have', async () => {
    const acme = api.bearer(await api.token('viewer', 'acme'));
    const view = async () =>
      (await api.app.inject({ url: '/api/services/scheduler/types', headers: acme })).json();
    const before = await view();
    await h.service.client.submitMany(
      [0, 1, 2, 3, 4, 5, 6].map((i) => ({ id: `s${i}`, type: 'secret', tenant: 'globex' })),
    );
    const after = await view();
    expect(after.types).toEqual([]);
    expect(after).toEqual(before);
    expect(after).not.toHaveProperty('scanned');
  });
});
