// A tenant's find answer does not depend on other tenants' files: the planner's choice (the
// size index when fewer files of the whole volume are that large than the tenant has under its
// path) was in the answer, so a tenant could count other tenants' large files by bisecting.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileService, FILE_KNOBS } from '../controlplane/files/service.ts';
import { ROOT } from '../controlplane/files/types.ts';
import { KnobClient } from '../controlplane/knobs/client.ts';
import { KnobTable } from '../controlplane/knobs/table.ts';
import { TestClock } from './helpers/api-server.ts';
import { startRegistryApi, type RegistryApi } from './helpers/registry-fixtures.ts';
import { startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';

describe("a tenant's find answer and other tenants' files", () => {
  let redis: TestRedis;
  let api: RegistryApi;
  let fileKnobs: KnobClient;
  let fs: FileService;

  beforeAll(async () => {
    redis = await startTestRedis('single');
    const admin = redis.client();
    const keys = uniqueKeys();
    const table = new KnobTable(admin, { keys, clock: new TestClock(Date.now()) });
    await table.seed();
    api = await startRegistryApi(redis, { knobs: table });
    fileKnobs = await KnobClient.start({ table, names: FILE_KNOBS });
    fs = await FileService.start({ redis: admin, keys, knobs: fileKnobs });
    await fs.mkdir(ROOT, '/tenants/acme', { parents: true });
    await fs.mkdir(ROOT, '/tenants/globex', { parents: true });
    for (const n of ['a', 'b', 'c']) {
      await fs.create(ROOT, `/tenants/acme/${n}`);
      await fs.write(ROOT, `/tenants/acme/${n}`, 0, Buffer.alloc(10, 1));
    }
  });
  afterAll(async () => {
    await fs?.close();
    await fileKnobs?.close();
    await api?.close();
    await redis?.stop();
  });

  it('is the same whether globex has one large file or five', async () => {
    const acme = api.bearer(await api.token('viewer', 'acme'));
    const ask = async () => {
      const res = await api.app.inject({
        url: '/api/services/files/find?under=/&minSizeBytes=500',
        headers: acme,
      });
      expect(res.statusCode, res.body).toBe(200);
      return res.json() as Record<string, unknown>;
    };
    await fs.create(ROOT, '/tenants/globex/big0');
    await fs.write(ROOT, '/tenants/globex/big0', 0, Buffer.alloc(1000, 1));
    const withOne = await ask();
    for (let i = 1; i < 5; i++) {
      await fs.create(ROOT, `/tenants/globex/big${i}`);
      await fs.write(ROOT, `/tenants/globex/big${i}`, 0, Buffer.alloc(1000, 1));
    }
    const withFive = await ask();
    expect(withOne).toEqual(withFive);
    expect(withOne).toEqual({ files: [], cursor: null });
  });
});
