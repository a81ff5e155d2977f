// A tenant's paged file search stores its cursor token where the API's Redis ACL user may
// write (the knobs family): under the ACL users `npm start` applies, the cursor lived in an
// {api} family no user was granted, and a tenant's second page was a 500 (NOPERM).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileService, FILE_KNOBS } from '../controlplane/files/service.ts';
import { ROOT } from '../controlplane/files/types.ts';
import { KnobClient } from '../controlplane/knobs/client.ts';
import { KnobTable } from '../controlplane/knobs/table.ts';
import { aclLogin, aclPasswords, applyAcl } from '../controlplane/redis/acl.ts';
import { connect, type RedisClient } from '../controlplane/redis/connect.ts';
import { TestClock } from './helpers/api-server.ts';
import { startRegistryApi, type RegistryApi } from './helpers/registry-fixtures.ts';
import { startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';

describe("a tenant's file search under the API's ACL user", () => {
  let redis: TestRedis;
  let apiUser: RedisClient;
  let api: RegistryApi;
  let fileKnobs: KnobClient;
  let fs: FileService;

  beforeAll(async () => {
    redis = await startTestRedis('single');
    const admin = redis.client();
    const keys = uniqueKeys();
    const adminTable = new KnobTable(admin, { keys, clock: new TestClock(Date.now()) });
    await adminTable.seed();
    const passwords = aclPasswords({}, { generate: true });
    await applyAcl(admin, keys, passwords);
    apiUser = connect(redis.target, aclLogin(keys, passwords, 'api'));
    apiUser.on('error', () => {});
    api = await startRegistryApi(
      { ...redis, client: () => apiUser },
      { knobs: new KnobTable(apiUser, { keys }) },
    );
    fileKnobs = await KnobClient.start({ table: adminTable, names: FILE_KNOBS });
    fs = await FileService.start({ redis: admin, keys, knobs: fileKnobs });
    await fs.mkdir(ROOT, '/tenants/acme', { parents: true });
    for (const n of ['a', 'b', 'c']) {
      await fs.create(ROOT, `/tenants/acme/${n}`);
      await fs.write(ROOT, `/tenants/acme/${n}`, 0, Buffer.alloc(10, 1));
    }
    await fs.flush();
  });
  afterAll(async () => {
    await fs?.close();
    await fileKnobs?.close();
    await api?.close();
    apiUser?.disconnect();
    await redis?.stop();
  });

  it('pages with a stored cursor token, every page', async () => {
    const acme = api.bearer(await api.token('viewer', 'acme'));
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const q: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
      const res = await api.app.inject({
        url: `/api/services/files/find?under=/&limit=1${q}`,
        headers: acme,
      });
      expect(res.statusCode, res.body).toBe(200);
      const body = res.json() as { files: { path: string }[]; cursor: string | null };
      seen.push(...body.files.map((f) => f.path));
      cursor = body.cursor;
      if (cursor) expect(cursor).toMatch(/^t:/);
    } while (cursor);
    // A tenant sees its files from its own root.
    expect(seen.sort()).toEqual(['/a', '/b', '/c']);
  });
});
