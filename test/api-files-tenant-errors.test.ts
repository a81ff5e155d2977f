// In a tenant's view the files routes take and give paths relative to <tenantRoot>/<tenant>,
// so nothing outside it can be named or seen; errors too (they passed the file service's
// message and `path` through: the volume path, showing the tenants' root).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileService, FILE_KNOBS } from '../controlplane/files/service.ts';
import { ROOT } from '../controlplane/files/types.ts';
import { KnobClient } from '../controlplane/knobs/client.ts';
import { wallClock } from './helpers/api-server.ts';
import { startRegistryApi, type RegistryApi } from './helpers/registry-fixtures.ts';
import { startTestRedis, type TestRedis } from './helpers/redis.ts';
import { startScheduler, type SchedulerHarness } from './helpers/scheduler-harness.ts';

describe("a tenant's file errors", () => {
  let redis: TestRedis;
  let h: SchedulerHarness;
  let api: RegistryApi;
  let fs: FileService;
  let knobs: KnobClient;
  beforeAll(async () => {
    redis = await startTestRedis('single');
    h = await startScheduler(redis, { service: { background: false } });
    api = await startRegistryApi(redis, { knobs: h.table, clock: wallClock() });
    knobs = await KnobClient.start({ table: h.table, names: FILE_KNOBS });
    fs = await FileService.start({ redis: api.redis, keys: h.keys, knobs });
    await fs.mkdir(ROOT, '/tenants/acme/docs', { parents: true });
    await fs.create(ROOT, '/tenants/acme/f');
  });
  afterAll(async () => {
    await fs?.close();
    await knobs?.close();
    await api?.close();
    await h?.stop();
    await redis?.stop();
  });

  it('name only paths of the tenant view', async () => {
    const acme = api.bearer(await api.token('viewer', 'acme'));
    const urls = [
      '/api/services/files/stat?path=/nope',
      '/api/services/files/readdir?path=/f',
      '/api/services/files/find?under=/nope',
      '/api/services/files/stat?path=/f/',
    ];
    const got: { status: number; path: unknown; message: string }[] = [];
    for (const url of urls) {
      const res = await api.app.inject({ url, headers: acme });
      expect(res.body).not.toContain('/tenants');
      const e = res.json().error as { path: unknown; message: string };
      got.push({ status: res.statusCode, path: e.path, message: e.message });
    }
    expect(got.map((g) => [g.status, g.path])).toEqual([
      [404, '/nope'],
      [409, '/f'],
      [404, '/nope'],
      [409, '/f'],
    ]);
    expect(got[0]?.message).toBe('stat /nope: no such file or directory');
  });
});
