// A bulk import whose reply a dropped connection lost: ioredis resends the batch's script with
// the same arguments, and its first run had created the files. The batch is once-only (a record
// under a generated id, as create and mkdir are), so the resend answers what the first run made
// instead of failing "already exists" for an import that succeeded (review).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../controlplane/files/index.ts';
import { filesFixture, type FilesFixture } from './helpers/files-env.ts';
import { throughDropper } from './helpers/reply-dropper.ts';
import { startTestRedis, type TestRedis } from './helpers/redis.ts';

describe('a bulk import whose reply was lost', () => {
  let test: TestRedis;
  let fx: FilesFixture;
  beforeAll(async () => {
    test = await startTestRedis('single');
    fx = await filesFixture(test);
  });
  afterAll(async () => {
    await fx?.close();
    await test?.stop();
  });

  it('reports the files and directories its first run created', async () => {
    const { proxy, client: viaProxy, close } = await throughDropper(test);
    try {
      const fs = await fx.instance({ redis: viaProxy });
      await fs.importFiles(ROOT, [{ path: '/warm/x', sizeBytes: 1, mtimeMs: 1 }]);
      proxy.armed = true;
      const got = await fs.importFiles(ROOT, [
        { path: '/bulk/a', sizeBytes: 10, mtimeMs: 1 },
        { path: '/bulk/b', sizeBytes: 20, mtimeMs: 1 },
      ]);
      expect(proxy.dropped).toBe(1);
      expect(got).toEqual({ files: 2, dirs: 1 });
      expect((await fs.stat(ROOT, '/bulk')).type).toBe('dir');
      // An import of the same paths by a new call is still refused: they exist.
      await expect(
        fs.importFiles(ROOT, [{ path: '/bulk/a', sizeBytes: 10, mtimeMs: 1 }]),
      ).rejects.toThrow(/already exists/);
    } finally {
      await close();
    }
  });
});
