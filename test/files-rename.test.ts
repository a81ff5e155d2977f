// rename is one atomic step: readers never see a replaced target missing or half-written,
// racing renames of one source have exactly one winner, a moved directory takes its indexes
// and sizes along, and every refused rename changes nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DirectoryNotEmptyError,
  FileInputError,
  FileLimitError,
  FileNotFoundError,
  IsADirectoryError,
  NotADirectoryError,
  ROOT,
  type FileService,
} from '../controlplane/files/index.ts';
import { filesFixture, type FilesFixture } from './helpers/files-env.ts';
import { expectIndexesMatchScan, scanVolume } from './helpers/files-scan.ts';
import { startTestRedis, type Backend, type TestRedis } from './helpers/redis.ts';

const CONTENT_BYTES = 10_000; // three 4 KiB chunks

/** Version i of the target: every byte says i, so a mix of two versions is visible. */
const version = (i: number) => Buffer.alloc(CONTENT_BYTES, i % 256);

describe.each<Backend>(['single', 'cluster'])('rename on %s redis', (backend) => {
  let redis: TestRedis;
  let fx: FilesFixture;
  let fs: FileService;
  let reader: FileService;
  beforeAll(async () => {
    redis = await startTestRedis(backend);
    fx = await filesFixture(redis);
    await fx.setKnob('files.chunk_bytes', 16_384);
    await fx.setKnob('files.chunk_bytes', 4096);
    fs = await fx.instance();
    reader = await fx.instance(); // another instance, with its own read cache
  });
  afterAll(async () => {
    await fx?.close();
    await redis?.stop();
  });

  it('replaces a target so that concurrent readers always see one whole version', async () => {
    await fs.mkdir(ROOT, '/r');
    await fs.create(ROOT, '/r/t');
    await fs.write(ROOT, '/r/t', 0, version(0));
    const ROUNDS = 40;
    let done = false;
    const seen = new Set<number>();
    const readers = Array.from({ length: 4 }, async () => {
      let reads = 0;
      while (!done && reads < 5_000) {
        const got = await reader.read(ROOT, '/r/t'); // throws if ever missing
        expect(got.length).toBe(CONTENT_BYTES);
        const v = got[0] as number;
        expect(got.equals(Buffer.alloc(CONTENT_BYTES, v)), `a mix at read ${reads}`).toBe(true);
        seen.add(v);
        reads++;
      }
      return reads;
    });
    for (let i = 1; i <= ROUNDS; i++) {
      await fs.create(ROOT, `/r/tmp${i}`);
      await fs.write(ROOT, `/r/tmp${i}`, 0, version(i));
      await fs.rename(ROOT, `/r/tmp${i}`, '/r/t');
    }
    done = true;
    const reads = await Promise.all(readers);
    expect(reads.reduce((a, b) => a + b, 0)).toBeGreaterThan(ROUNDS);
    expect(seen.size).toBeGreaterThan(1);
    expect((await reader.read(ROOT, '/r/t')).equals(version(ROUNDS))).toBe(true);
    expect((await fs.list(ROOT, '/r')).map((e) => e.name)).toEqual(['t']);
    await expectIndexesMatchScan(fs, redis.client());
  });

  it('lets exactly one of racing renames of one source win', async () => {
    await fs.mkdir(ROOT, '/race/to', { parents: true });
    await fs.create(ROOT, '/race/src');
    await fs.write(ROOT, '/race/src', 0, 'payload');
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) =>
        (i % 2 ? fs : reader).rename(ROOT, '/race/src', `/race/to/n${i}`),
      ),
    );
    const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
    expect(won).toHaveLength(1);
    for (const r of results) {
      if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(FileNotFoundError);
    }
    expect((await fs.list(ROOT, '/race/to')).map((e) => e.name)).toEqual([`n${won[0]}`]);
    expect((await fs.read(ROOT, `/race/to/n${won[0]}`)).toString()).toBe('payload');
    await expectIndexesMatchScan(fs, redis.client());
  });

  it('moves a directory with its subtree, sizes and index entries', async () => {
    await fs.mkdir(ROOT, '/a/b/c', { parents: true });
    await fs.mkdir(ROOT, '/x/y', { parents: true });
    for (const [p, n] of [
      ['/a/b/f1', 100],
      ['/a/b/c/f2', 2000],
      ['/a/keep', 7],
    ] as const) {
      await fs.create(ROOT, p);
      await fs.write(ROOT, p, 0, Buffer.alloc(n, 1));
    }
    expect((await fs.stat(ROOT, '/a')).subtreeBytes).toBe(2107);
    const before = (await fs.stat(ROOT, '/')).subtreeBytes;
    expect(await fs.rename(ROOT, '/a/b', '/x/y/b2')).toEqual({ moved: 4 });
    expect((await fs.stat(ROOT, '/a')).subtreeBytes).toBe(7);
    expect((await fs.stat(ROOT, '/x')).subtreeBytes).toBe(2100);
    expect((await fs.stat(ROOT, '/')).subtreeBytes).toBe(before);
    expect((await fs.findAllFiles(ROOT, { under: '/x' })).map((f) => f.path).sort()).toEqual([
      '/x/y/b2/c/f2',
      '/x/y/b2/f1',
    ]);
    expect((await fs.findAllFiles(ROOT, { under: '/a' })).map((f) => f.path)).toEqual(['/a/keep']);
    expect((await fs.read(ROOT, '/x/y/b2/c/f2')).length).toBe(2000);
    // An empty directory can be replaced by a directory.
    await fs.mkdir(ROOT, '/x/empty');
    await fs.rename(ROOT, '/x/y/b2/c', '/x/empty');
    expect((await fs.stat(ROOT, '/x/empty')).entries).toBe(1);
    await expectIndexesMatchScan(fs, redis.client());
  });

  it('refuses bad renames and changes nothing', async () => {
    await fs.mkdir(ROOT, '/bad/d1/inner', { parents: true });
    await fs.mkdir(ROOT, '/bad/full/x/y', { parents: true }); // 2 entries below /bad/full
    await fs.create(ROOT, '/bad/file');
    const small = await fx.instance({ limits: { renameSubtreeMax: 1 } });
    const before = await scanVolume(fs);
    const fail = (p: Promise<unknown>) =>
      p.then(
        () => new Error('was allowed'),
        (e: unknown) => e,
      );
    const intoSelf = await fail(fs.rename(ROOT, '/bad/d1', '/bad/d1/inner/d1'));
    expect(intoSelf).toBeInstanceOf(FileInputError);
    expect(intoSelf).toMatchObject({ rule: 'subtree', path: '/bad/d1/inner/d1' });
    expect(await fail(fs.rename(ROOT, '/bad/d1', '/bad/full'))).toBeInstanceOf(
      DirectoryNotEmptyError,
    );
    expect(await fail(fs.rename(ROOT, '/bad/file', '/bad/d1'))).toBeInstanceOf(IsADirectoryError);
    expect(await fail(fs.rename(ROOT, '/bad/d1', '/bad/file'))).toBeInstanceOf(NotADirectoryError);
    expect(await fail(fs.rename(ROOT, '/bad/nope', '/bad/n2'))).toBeInstanceOf(FileNotFoundError);
    expect(await fail(fs.rename(ROOT, '/', '/r2'))).toBeInstanceOf(FileInputError);
    const big = await fail(small.rename(ROOT, '/bad/full', '/bad/f2'));
    expect(big).toBeInstanceOf(FileLimitError);
    expect(big).toMatchObject({ limit: 'subtree_entries', max: 1 });
    expect(await fs.rename(ROOT, '/bad/file', '/bad/file')).toEqual({ moved: 0 });
    expect(await scanVolume(fs)).toEqual(before);
  });

  it('refuses a rename that would put entries past the path limits, and changes nothing', async () => {
    // A tree moved under a deep directory would put files past 64 levels, where no call can
    // name them (only find listed them).
    const deep = (top: string) =>
      `/deep/${top}/` + Array.from({ length: 40 }, (_, i) => `d${i}`).join('/');
    await fs.mkdir(ROOT, deep('a'), { parents: true });
    await fs.mkdir(ROOT, deep('b'), { parents: true });
    await fs.create(ROOT, `${deep('b')}/f`);
    const before = await scanVolume(fs);
    const err = await fs.rename(ROOT, '/deep/b', `${deep('a')}/x`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FileLimitError);
    expect(err).toMatchObject({ limit: 'max_depth', max: 64 });
    expect(await scanVolume(fs)).toEqual(before);
    // Within the limits it moves.
    expect((await fs.rename(ROOT, '/deep/b', '/deep/a/x')).moved).toBe(42);
  });
});
