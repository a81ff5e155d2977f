// Metadata queries from the indexes equal a brute-force scan of the tree, after a seeded
// random history of creates, writes, truncates, renames, unlinks, chowns and a bulk import;
// the planner scans the most selective index; cursors page through without loss.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRng } from '../envs/core/rng.ts';
import { ROOT, type Caller, type FileService } from '../controlplane/files/index.ts';
import { KnobosError } from '../controlplane/store/errors.ts';
import { filesFixture, type FilesFixture } from './helpers/files-env.ts';
import {
  bruteFind,
  bruteLargestDirs,
  expectIndexesMatchScan,
  sortFound,
  type Scan,
} from './helpers/files-scan.ts';
import { startTestRedis, type Backend, type TestRedis } from './helpers/redis.ts';

const SEED = 20_240_601;
const OPS = 300;
const HOUR_MS = 3_600_000;
const users: Caller[] = [
  { uid: 1000, gids: [1000] },
  { uid: 1001, gids: [1001] },
];

describe.each<Backend>(['single', 'cluster'])('metadata queries on %s redis', (backend) => {
  let redis: TestRedis;
  let fx: FilesFixture;
  let fs: FileService;
  let scan: Scan;
  let history: Record<string, number> = {};

  beforeAll(async () => {
    redis = await startTestRedis(backend);
    fx = await filesFixture(redis);
    fs = await fx.instance();
    const rng = createRng(SEED);
    const dirs: string[] = [];
    const files: string[] = [];
    const home = (u: Caller) => `/home/u${u.uid}`;
    for (const u of users) {
      await fs.mkdir(ROOT, home(u), { parents: true });
      await fs.chown(ROOT, home(u), { uid: u.uid, gid: u.gids[0] as number });
      dirs.push(home(u));
    }
    const owner = (p: string) => users.find((u) => p.startsWith(home(u))) as Caller;
    const name = () => rng.pick(['a', 'b', 'c', 'd', 'e']) + rng.int(4);
    const done: Record<string, number> = {};
    const ok = (kind: string, then?: () => unknown) => () => {
      done[kind] = (done[kind] ?? 0) + 1;
      then?.();
    };
    const tolerate = (e: unknown) => {
      if (!(e instanceof KnobosError)) throw e; // typed refusals (stale paths) are expected
    };
    for (let i = 0; i < OPS; i++) {
      fx.clock.advance(rng.int(2 * HOUR_MS));
      const roll = rng.next();
      const dir = rng.pick(dirs);
      const u = owner(dir);
      if (roll < 0.12) {
        const p = `${dir}/${name()}/${name()}`;
        await fs.mkdir(u, p, { parents: true }).then(
          ok('mkdir', () => dirs.push(p, p.slice(0, p.lastIndexOf('/')))),
          tolerate,
        );
      } else if (roll < 0.35 || files.length === 0) {
        const p = `${dir}/f${name()}`;
        await fs.create(u, p).then(
          ok('create', () => files.push(p)),
          tolerate,
        );
      } else if (roll < 0.65) {
        const p = rng.pick(files);
        await fs
          .write(owner(p), p, rng.int(200_000), Buffer.alloc(1 + rng.int(5_000), 1))
          .then(ok('write'), tolerate);
      } else if (roll < 0.72) {
        const p = rng.pick(files);
        await fs.truncate(owner(p), p, rng.int(100_000)).then(ok('truncate'), tolerate);
      } else if (roll < 0.82) {
        const p = rng.pick(rng.next() < 0.7 ? files : dirs);
        const to = `${rng.pick(dirs.filter((d) => owner(d) === owner(p)))}/m${name()}`;
        await fs.rename(owner(p), p, to).then(
          ok('rename', () => (files.includes(p) ? files : dirs).push(to)),
          tolerate,
        );
      } else if (roll < 0.9) {
        await fs.unlink(u, rng.pick(files)).then(ok('unlink'), tolerate);
      } else if (roll < 0.95) {
        const p = rng.pick(dirs);
        await fs.chown(ROOT, p, { uid: rng.pick(users).uid }).then(ok('chown'), tolerate);
      } else {
        await fs.rmdir(u, rng.pick(dirs)).then(ok('rmdir'), tolerate);
      }
    }
    history = done;
    // A bulk import on top: sparse files with sizes and mtimes of their own.
    const now = fx.clock.now();
    await fs.importFiles(
      ROOT,
      Array.from({ length: 250 }, (_, i) => ({
        path: `/bulk/g${i % 7}/h${i % 3}/file${i}`,
        sizeBytes: rng.int(300_000),
        mtimeMs: now - rng.int(72 * HOUR_MS),
      })),
    );
    scan = await expectIndexesMatchScan(fs, redis.client());
  });
  afterAll(async () => {
    await fx?.close();
    await redis?.stop();
  });

  it('built a history worth querying', () => {
    for (const kind of ['mkdir', 'create', 'write', 'truncate', 'rename', 'unlink', 'chown']) {
      expect(history[kind] ?? 0, `${kind} successes (seed ${SEED})`).toBeGreaterThanOrEqual(3);
    }
    expect(scan.files.filter((f) => !f.path.startsWith('/bulk/')).length).toBeGreaterThan(25);
    expect(scan.files.filter((f) => f.path.startsWith('/bulk/')).length).toBe(250);
    expect(scan.dirs.length).toBeGreaterThan(20);
  });

  it('answers every query exactly as the brute-force scan does', async () => {
    const now = fx.clock.now();
    const unders = [
      '/',
      '/home',
      '/home/u1000',
      '/bulk/g3',
      ...scan.dirs.slice(0, 5).map((d) => d.path),
    ];
    const windows = [
      {},
      { modifiedFromMs: now - 24 * HOUR_MS },
      { modifiedFromMs: now - 100 * HOUR_MS, modifiedToMs: now - 20 * HOUR_MS },
    ];
    let checked = 0;
    for (const under of unders) {
      for (const minSizeBytes of [undefined, 0, 1_000, 150_000]) {
        for (const w of windows) {
          const q = { under, ...(minSizeBytes === undefined ? {} : { minSizeBytes }), ...w };
          const got = await fs.findAllFiles(ROOT, q);
          expect(sortFound(got), `seed ${SEED} query ${JSON.stringify(q)}`).toEqual(
            bruteFind(scan, q),
          );
          checked++;
        }
      }
    }
    expect(checked).toBe(unders.length * 12);
  });

  it('lists the largest directories of each user as the scan does', async () => {
    for (const u of [0, ...users.map((x) => x.uid)]) {
      const got = await fs.largestDirs(ROOT, u, 10);
      const want = bruteLargestDirs(scan, u, 10);
      expect(got.map((d) => d.subtreeBytes)).toEqual(want.map((d) => d.subtreeBytes));
      const byPath = new Map(scan.dirs.map((d) => [d.path, d]));
      for (const d of got) {
        expect(byPath.get(d.path)).toMatchObject({ uid: u, subtreeBytes: d.subtreeBytes });
      }
    }
  });

  it('scans the most selective index', async () => {
    const sizes = scan.files.map((f) => f.sizeBytes).sort((a, b) => b - a);
    const bigOnly = await fs.findFiles(ROOT, {
      under: '/',
      minSizeBytes: sizes[3] as number,
      modifiedFromMs: 0,
    });
    expect(bigOnly.plan).toBe('size');
    expect(bigOnly.candidates).toBe(
      scan.files.filter((f) => f.sizeBytes > (sizes[3] as number)).length,
    );
    const latest = Math.max(...scan.files.map((f) => f.mtimeMs));
    const recent = await fs.findFiles(ROOT, {
      under: '/',
      minSizeBytes: 0,
      modifiedFromMs: latest,
    });
    expect(recent.plan).toBe('mtime');
    const deep = await fs.findFiles(ROOT, {
      under: '/bulk/g3/h1',
      minSizeBytes: 0,
      modifiedFromMs: 0,
    });
    expect(deep.plan).toBe('path');
    expect(deep.candidates).toBe(bruteFind(scan, { under: '/bulk/g3/h1' }).length);
  });

  it('pages with cursors under a result limit and under a scan budget', async () => {
    const q = { under: '/', minSizeBytes: 1_000 };
    const want = bruteFind(scan, q);
    const pages: string[] = [];
    let cursor;
    let calls = 0;
    do {
      const r = await fs.findFiles(ROOT, { ...q, limit: 7, ...(cursor ? { cursor } : {}) });
      expect(r.files.length).toBeLessThanOrEqual(7);
      pages.push(...r.files.map((f) => f.path));
      cursor = r.cursor;
      calls++;
    } while (cursor && calls < 1_000);
    expect(pages.sort()).toEqual(want.map((f) => f.path));
    expect(calls).toBeGreaterThanOrEqual(Math.ceil(want.length / 7));
    const tight = await fx.instance({ limits: { queryScanMax: 11 } });
    expect(sortFound(await tight.findAllFiles(ROOT, q))).toEqual(want);
  });

  it('pages by position: a file written or removed between pages makes none skipped', async () => {
    await fs.mkdir(ROOT, '/paging');
    for (let i = 0; i < 6; i++) await fs.create(ROOT, `/paging/old${i}`);
    fx.clock.advance(1_000);
    const t0 = fx.clock.now();
    for (const n of ['f1', 'f2', 'f3', 'f4']) {
      fx.clock.advance(1_000);
      await fs.create(ROOT, `/paging/${n}`);
    }
    const rest = async (q: Parameters<FileService['findFiles']>[1]) => {
      const out: string[] = [];
      for (let c = q.cursor; c;) {
        const page = await fs.findFiles(ROOT, { ...q, cursor: c });
        out.push(...page.files.map((f) => f.path));
        c = page.cursor;
      }
      return out;
    };
    // The mtime plan (4 files in the window against 10 under the directory).
    const q = { under: '/paging', modifiedFromMs: t0, limit: 2 };
    const first = await fs.findFiles(ROOT, q);
    expect(first.plan).toBe('mtime');
    expect(first.files.map((f) => f.path)).toEqual(['/paging/f1', '/paging/f2']);
    fx.clock.advance(1_000);
    await fs.write(ROOT, '/paging/f1', 0, Buffer.from('y')); // now the window's newest
    // f3 and f4 still come; f1 again, as it changed (a rank cursor skipped f3).
    expect(await rest({ ...q, cursor: first.cursor })).toEqual([
      '/paging/f3',
      '/paging/f4',
      '/paging/f1',
    ]);
    // The path plan: a file removed before the position shifts nothing after it.
    const byPath = { under: '/paging', limit: 2 };
    const a = await fs.findFiles(ROOT, byPath);
    expect(a.plan).toBe('path');
    expect(a.files.map((f) => f.path)).toEqual(['/paging/f1', '/paging/f2']);
    await fs.unlink(ROOT, '/paging/f1');
    const b = await fs.findFiles(ROOT, { ...byPath, ...(a.cursor ? { cursor: a.cursor } : {}) });
    expect(b.files.map((f) => f.path)).toEqual(['/paging/f3', '/paging/f4']);
    // The size plan, files of one size (ordered by path): the page's last file shrinks out of
    // the range, and the next page starts after where it was.
    const big = 20_000_001; // sparse: one byte at the end
    for (const n of ['s1', 's2', 's3', 's4']) {
      await fs.create(ROOT, `/paging/${n}`);
      await fs.write(ROOT, `/paging/${n}`, big - 1, Buffer.from('z'));
    }
    const bySize = { under: '/paging', minSizeBytes: big - 1, limit: 2 };
    const c = await fs.findFiles(ROOT, bySize);
    expect(c.plan).toBe('size');
    expect(c.files.map((f) => f.path)).toEqual(['/paging/s1', '/paging/s2']);
    await fs.truncate(ROOT, '/paging/s2', 0);
    expect(await rest({ ...bySize, ...(c.cursor ? { cursor: c.cursor } : {}) })).toEqual([
      '/paging/s3',
      '/paging/s4',
    ]);
  });

  it('imports nothing when any entry is malformed, even past the first batch', async () => {
    const files = Array.from({ length: 1_500 }, (_, i) => ({
      path: `/bad/f${i}`,
      sizeBytes: i === 1_400 ? -1 : 1,
      mtimeMs: 1,
    }));
    await expect(fs.importFiles(ROOT, files)).rejects.toThrow(/sizeBytes/);
    await expect(fs.stat(ROOT, '/bad')).rejects.toThrow(/no such file or directory/);
  });

  it('refuses a cursor it did not hand out, naming it', async () => {
    const bad = { field: 'cursor', rule: 'format' };
    await expect(fs.readdir(ROOT, '/bulk', { cursor: 'abc' })).rejects.toMatchObject(bad);
    for (const cursor of [
      { plan: 'path' as const, after: { score: Number.NaN, path: '/x' } },
      { plan: 'nope' as never, after: { score: 1, path: '/x' } },
    ]) {
      await expect(fs.findFiles(ROOT, { under: '/', cursor })).rejects.toMatchObject(bad);
    }
  });

  it('bounds a window exactly at mtimes past 14 digits', async () => {
    // 1e15 + i: text of 14 significant digits would round the bound down to 1e15.
    const far = 1e15;
    await fs.importFiles(ROOT, [
      ...Array.from({ length: 5 }, (_, i) => ({
        path: `/far/f${i}`,
        sizeBytes: 1,
        mtimeMs: far + i,
      })),
      ...Array.from({ length: 20 }, (_, i) => ({
        path: `/far/e${i}`,
        sizeBytes: 1,
        mtimeMs: far - 100 + i,
      })),
    ]);
    const r = await fs.findFiles(ROOT, {
      under: '/far',
      modifiedFromMs: far + 1,
      modifiedToMs: far + 4,
    });
    expect(r.plan).toBe('mtime');
    expect(r.files.map((f) => f.path).sort()).toEqual(['/far/f1', '/far/f2', '/far/f3', '/far/f4']);
  });
});
