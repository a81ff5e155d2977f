// Brute force over a volume through the service's plain operations (list and stat, as root):
// the ground truth that the indexes and the incremental directory sizes are checked against.
import { expect } from 'vitest';
import { ROOT, type FileService, type FoundFile } from '../../controlplane/files/index.ts';
import type { RedisClient } from '../../controlplane/redis/connect.ts';

export interface ScannedDir {
  path: string;
  uid: number;
  /** Recomputed from the files below it, not read from the directory's own counter. */
  subtreeBytes: number;
  /** The directory's own counter, as stat reports it. */
  statBytes: number;
}

export interface Scan {
  files: FoundFile[];
  dirs: ScannedDir[];
}

const join = (dir: string, name: string) => (dir === '/' ? `/${name}` : `${dir}/${name}`);

/** Walks the whole tree from '/'; bounded by maxEntries. */
export async function scanVolume(fs: FileService, maxEntries = 50_000): Promise<Scan> {
  const files: FoundFile[] = [];
  const dirs: ScannedDir[] = [];
  let seen = 0;
  const walk = async (path: string): Promise<number> => {
    const st = await fs.stat(ROOT, path);
    let bytes = 0;
    for (const e of await fs.list(ROOT, path)) {
      if (++seen > maxEntries) throw new Error(`scan: more than ${maxEntries} entries`);
      const child = join(path, e.name);
      if (e.type === 'dir') bytes += await walk(child);
      else {
        const f = await fs.stat(ROOT, child);
        files.push({ path: child, sizeBytes: f.sizeBytes, mtimeMs: f.mtimeMs });
        bytes += f.sizeBytes;
      }
    }
    dirs.push({ path, uid: st.uid, subtreeBytes: bytes, statBytes: st.subtreeBytes });
    return bytes;
  };
  await walk('/');
  return { files, dirs };
}

const byPath = (a: { path: string }, b: { path: string }) =>
  a.path < b.path ? -1 : a.path > b.path ? 1 : 0;

/** The query, answered by filtering a scan. */
export function bruteFind(
  scan: Scan,
  q: { under: string; minSizeBytes?: number; modifiedFromMs?: number; modifiedToMs?: number },
): FoundFile[] {
  const prefix = q.under === '/' ? '/' : `${q.under}/`;
  return scan.files
    .filter(
      (f) =>
        f.path.startsWith(prefix) &&
        (q.minSizeBytes === undefined || f.sizeBytes > q.minSizeBytes) &&
        (q.modifiedFromMs === undefined || f.mtimeMs >= q.modifiedFromMs) &&
        (q.modifiedToMs === undefined || f.mtimeMs <= q.modifiedToMs),
    )
    .sort(byPath);
}

/** A user's n largest directories, from a scan; ties by path so the order is total. */
export function bruteLargestDirs(scan: Scan, uid: number, n: number) {
  return scan.dirs
    .filter((d) => d.uid === uid)
    .map((d) => ({ path: d.path, subtreeBytes: d.subtreeBytes }))
    .sort((a, b) => b.subtreeBytes - a.subtreeBytes || byPath(a, b))
    .slice(0, n);
}

export function sortFound(files: readonly FoundFile[]): FoundFile[] {
  return [...files].sort(byPath);
}

/**
 * Everything the incremental bookkeeping keeps must equal what a brute-force scan finds: each
 * directory's subtree bytes, the file indexes (the whole-volume query), and every owner's
 * largest directories. Returns the scan for further checks.
 */
export async function expectIndexesMatchScan(fs: FileService, raw?: RedisClient): Promise<Scan> {
  const scan = await scanVolume(fs);
  // Each directory's own subtree mtime index, read raw: exactly the files below it.
  for (const d of raw ? scan.dirs : []) {
    const { ino } = await fs.stat(ROOT, d.path);
    const flat = await (raw as RedisClient).zrange(fs.fileKeys.dirMtime(ino), 0, -1, 'WITHSCORES');
    const got: FoundFile[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const path = flat[i] as string;
      got.push({ path, sizeBytes: 0, mtimeMs: Number(flat[i + 1]) });
    }
    const want = bruteFind(scan, { under: d.path }).map((f) => ({ ...f, sizeBytes: 0 }));
    expect(sortFound(got), `mtime index of ${d.path}`).toEqual(want);
  }
  for (const d of scan.dirs) expect(d.statBytes, `bytes of ${d.path}`).toBe(d.subtreeBytes);
  const indexed = await fs.findAllFiles(ROOT, { under: '/' });
  expect(sortFound(indexed)).toEqual(sortFound(scan.files));
  for (const uid of new Set(scan.dirs.map((d) => d.uid))) {
    const n = scan.dirs.filter((d) => d.uid === uid).length;
    const got = await fs.largestDirs(ROOT, uid, n + 5);
    expect(sortFound(got.map((d) => ({ ...d, sizeBytes: 0, mtimeMs: 0 })))).toEqual(
      sortFound(bruteLargestDirs(scan, uid, n).map((d) => ({ ...d, sizeBytes: 0, mtimeMs: 0 }))),
    );
  }
  return scan;
}
