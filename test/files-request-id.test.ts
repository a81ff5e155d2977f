// File creates, renames, mkdirs, unlinks and rmdirs are once-only per request id, on one node
// and on a 3-node cluster: the script sent again after a lost reply (as ioredis resends it)
// answers the first success instead of "exists" or "not found", and an id reused for another
// request is refused and changes nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileInputError, ROOT, type FileService } from '../controlplane/files/index.ts';
import type { RedisClient } from '../controlplane/redis/connect.ts';
import { filesFixture, type FilesFixture } from './helpers/files-env.ts';
import { startTestRedis, type Backend, type TestRedis } from './helpers/redis.ts';

type Send = (...args: unknown[]) => Promise<unknown>;

/**
 * Arms a client so that its next script call (EVALSHA, or the EVAL a NOSCRIPT falls back to)
 * is sent twice and answers the second reply: what ioredis does when the first reply is lost
 * (autoResendUnfulfilledCommands on one node, a cluster's retry after a failover).
 */
function resending(client: RedisClient): () => void {
  let armed = false;
  const c = client as unknown as Record<'evalsha' | 'eval', Send>;
  for (const m of ['evalsha', 'eval'] as const) {
    const send = c[m].bind(client) as Send;
    c[m] = async (...args) => {
      if (!armed) return send(...args);
      await send(...args); // a NOSCRIPT throws here, and the EVAL after it is resent instead
      armed = false;
      return send(...args);
    };
  }
  return () => {
    armed = true;
  };
}

describe.each<Backend>(['single', 'cluster'])('once-only file writes on %s redis', (backend) => {
  let redis: TestRedis;
  let fx: FilesFixture;
  let fs: FileService;
  let resendNext: () => void;
  beforeAll(async () => {
    redis = await startTestRedis(backend);
    fx = await filesFixture(redis);
    const client = redis.client();
    resendNext = resending(client);
    fs = await fx.instance({ redis: client });
  });
  afterAll(async () => {
    await fx?.close();
    await redis?.stop();
  });

  /** What a create or rename under `dir` changes: the volume, the indexes, the entries. */
  async function state(dir: string) {
    const c = redis.client();
    const k = fs.fileKeys;
    const st = await fs.stat(ROOT, dir);
    return {
      volume: await c.hgetall(k.volumeRow()),
      paths: await c.zrange(k.pathIndex(), 0, -1),
      sizes: await c.zrange(k.sizeIndex(), 0, -1, 'WITHSCORES'),
      dir: st,
      entries: await fs.list(ROOT, dir),
      mtimes: await c.zrange(k.dirMtime(st.ino), 0, -1, 'WITHSCORES'),
    };
  }

  it('answers the first create when its script is sent again after a lost reply', async () => {
    await fs.mkdir(ROOT, '/c1');
    resendNext();
    const made = await fs.create(ROOT, '/c1/f');
    expect(made.ino).toBeGreaterThan(0);
    expect((await fs.stat(ROOT, '/c1/f')).ino).toBe(made.ino);
    // One inode was taken, not two.
    expect(Number(await redis.client().hget(fs.fileKeys.volumeRow(), 'next_ino'))).toBe(made.ino);
  });

  it('answers the first rename of a file and of a directory when sent again', async () => {
    await fs.mkdir(ROOT, '/r1/d/sub', { parents: true });
    await fs.create(ROOT, '/r1/f');
    await fs.create(ROOT, '/r1/d/sub/g');
    resendNext();
    expect(await fs.rename(ROOT, '/r1/f', '/r1/f2')).toEqual({ moved: 1 });
    resendNext();
    expect(await fs.rename(ROOT, '/r1/d', '/r1/e')).toEqual({ moved: 3 });
    expect((await fs.list(ROOT, '/r1')).map((e) => e.name)).toEqual(['e', 'f2']);
    expect((await fs.findAllFiles(ROOT, { under: '/r1' })).map((f) => f.path).sort()).toEqual([
      '/r1/e/sub/g',
      '/r1/f2',
    ]);
  });

  it('answers the first mkdir, unlink and rmdir when sent again after a lost reply', async () => {
    resendNext();
    const made = await fs.mkdir(ROOT, '/m1');
    expect(made.created).toBe(1);
    resendNext();
    expect(await fs.mkdir(ROOT, '/m1/a/b', { parents: true })).toMatchObject({ created: 2 });
    await fs.create(ROOT, '/m1/f');
    resendNext();
    await fs.unlink(ROOT, '/m1/f');
    resendNext();
    await fs.rmdir(ROOT, '/m1/a/b');
    // Before, each resend failed: exists, not found, not found.
    expect((await fs.list(ROOT, '/m1')).map((e) => e.name)).toEqual(['a']);
    expect(await fs.list(ROOT, '/m1/a')).toEqual([]);
    expect((await fs.findAllFiles(ROOT, { under: '/m1' })).length).toBe(0);
  });

  it("answers a caller's mkdir, unlink and rmdir retries with their own ids", async () => {
    await fs.mkdir(ROOT, '/m2/d', { parents: true, requestId: 'job-8:mkdir' });
    await fs.create(ROOT, '/m2/f');
    await fs.unlink(ROOT, '/m2/f', { requestId: 'job-8:unlink' });
    await fs.rmdir(ROOT, '/m2/d', { requestId: 'job-8:rmdir' });
    const before = await state('/m2');
    expect(
      await fs.mkdir(ROOT, '/m2/d', { parents: true, requestId: 'job-8:mkdir' }),
    ).toMatchObject({ created: 2 });
    await fs.unlink(ROOT, '/m2/f', { requestId: 'job-8:unlink' });
    await fs.rmdir(ROOT, '/m2/d', { requestId: 'job-8:rmdir' });
    // The retries changed nothing (the directory stays removed, not made again).
    expect(await state('/m2')).toEqual(before);
    const err = await fs
      .rmdir(ROOT, '/m2/x', { requestId: 'job-8:unlink' })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ field: 'requestId', rule: 'same_request' });
  });

  it("answers a caller's retry with its own id, even after the entry moved on", async () => {
    await fs.mkdir(ROOT, '/c2');
    const made = await fs.create(ROOT, '/c2/f', { requestId: 'job-7:create' });
    expect(await fs.rename(ROOT, '/c2/f', '/c2/g', { requestId: 'job-7:rename' })).toEqual({
      moved: 1,
    });
    const before = await state('/c2');
    expect(await fs.create(ROOT, '/c2/f', { requestId: 'job-7:create' })).toEqual(made);
    expect(await fs.rename(ROOT, '/c2/f', '/c2/g', { requestId: 'job-7:rename' })).toEqual({
      moved: 1,
    });
    expect(await state('/c2')).toEqual(before);
  });

  it('refuses an id reused for another request, naming the field and rule, changing nothing', async () => {
    await fs.mkdir(ROOT, '/c3');
    await fs.create(ROOT, '/c3/f', { requestId: 'req-1' });
    await fs.create(ROOT, '/c3/x');
    const before = await state('/c3');
    const refusals = [
      fs.create(ROOT, '/c3/other', { requestId: 'req-1' }),
      fs.create(ROOT, '/c3/f2', { mode: 0o600, requestId: 'req-1' }),
      fs.create(ROOT, '/c3/f', { mode: 0o600, requestId: 'req-1' }),
      fs.rename(ROOT, '/c3/x', '/c3/y', { requestId: 'req-1' }),
      fs.create({ uid: 1000, gids: [1000] }, '/c3/f', { requestId: 'req-1' }),
    ];
    for (const r of refusals) {
      const err = await r.catch((e: unknown) => e);
      expect(err).toBeInstanceOf(FileInputError);
      expect(err).toMatchObject({ status: 400, field: 'requestId', rule: 'same_request' });
      expect((err as Error).message).toMatch(/requestId was used for another request/);
    }
    expect(await state('/c3')).toEqual(before);
    await expect(fs.create(ROOT, '/c3/z', { requestId: 'has space' })).rejects.toMatchObject({
      field: 'requestId',
      rule: 'format',
    });
    expect(await state('/c3')).toEqual(before);
  });
});
