// `next` is null on the last page (as the schemas say), also when that page is exactly full:
// /api/knobs/:name/history and /api/audit answered a cursor whenever the page was full, so an
// exactly full last page pointed at an empty one. They read one entry more now, as
// /api/registry/audit does.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, startApi, type ApiFixture } from './helpers/api-server.ts';
import { startTestRedis, type TestRedis } from './helpers/redis.ts';

const ADMIN = { authorization: `Bearer ${ADMIN_TOKEN}` };

describe('pagination: next on the last page', () => {
  let redis: TestRedis;
  let api: ApiFixture;
  beforeAll(async () => {
    redis = await startTestRedis('single');
    api = await startApi(redis);
  });
  afterAll(async () => {
    await api?.close();
    await redis?.stop();
  });

  const get = async (url: string) => (await api.app.inject({ url, headers: ADMIN })).json();

  it('knob history: pages of one until the last, whose next is null', async () => {
    const base = '/api/knobs/scheduler.retry_limit/history';
    expect((await get(base)).history).toHaveLength(1); // its seed
    const only = await get(`${base}?limit=1`);
    expect(only.history).toHaveLength(1);
    expect(only.next).toBeNull();
    const res = await api.app.inject({
      method: 'POST',
      url: '/api/knobs/scheduler.retry_limit/promote',
      headers: ADMIN,
      payload: { value: 4, baseVersion: 1, reason: 'pages' },
    });
    expect(res.statusCode).toBe(200);
    const first = await get(`${base}?limit=1`);
    expect(first.history.map((h: { version: number }) => h.version)).toEqual([2]);
    expect(first.next).toEqual(expect.any(String));
    const second = await get(`${base}?limit=1&before=${first.next}`);
    expect(second.history.map((h: { version: number }) => h.version)).toEqual([1]);
    expect(second.next).toBeNull();
  });

  it('audit: an exactly full last page has next null; a fuller trail pages on', async () => {
    const all = await get('/api/audit?source=knobs&limit=500');
    expect(all.next).toBeNull();
    const n = all.audit.length;
    expect(n).toBeGreaterThan(1);
    const whole = await get(`/api/audit?source=knobs&limit=${n}`);
    expect(whole.audit).toHaveLength(n);
    expect(whole.next).toBeNull();
    const head = await get(`/api/audit?source=knobs&limit=${n - 1}`);
    expect(head.audit).toHaveLength(n - 1);
    const rest = await get(`/api/audit?source=knobs&limit=${n - 1}&before=${head.next}`);
    expect(rest.audit).toHaveLength(1);
    expect(rest.next).toBeNull();
  });
});
