// The 100,000-file tree of bench:files and the two ways to ask it "files under D larger than
// X modified within a window": the file service's indexed query, and a walk of the same tree
// on disk with readdir + stat (synchronous and asynchronous; the faster one is the peer).
import {
  closeSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  statSync,
  futimesSync,
} from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Rng } from '../envs/core/rng.ts';
import type { ImportFile } from '../controlplane/files/index.ts';

export interface TreeShape {
  top: number;
  mid: number;
  leaf: number;
}

const DAY_MS = 86_400_000;

/**
 * Files /data/pNN/qNN/fNNN with log-normal sizes (median ~3 KB, a long tail to 4 MiB) and
 * mtimes spread over 30 days, in whole seconds so disk and service hold the same values.
 */
export function makeTree(rng: Rng, shape: TreeShape, nowMs: number): ImportFile[] {
  const out: ImportFile[] = [];
  const pad = (n: number, w: number) => String(n).padStart(w, '0');
  for (let p = 0; p < shape.top; p++) {
    for (let q = 0; q < shape.mid; q++) {
      for (let f = 0; f < shape.leaf; f++) {
        const size = Math.min(4 * 2 ** 20, Math.floor(Math.exp(rng.normal(8, 2))));
        const mtime = Math.floor((nowMs - rng.uniform(0, 30 * DAY_MS)) / 1000) * 1000;
        out.push({
          path: `/data/p${pad(p, 2)}/q${pad(q, 2)}/f${pad(f, 3)}`,
          sizeBytes: size,
          mtimeMs: mtime,
        });
      }
    }
  }
  return out;
}

/** The same tree on disk: sparse files of the right size, with the right mtimes. */
export function writeTree(root: string, files: readonly ImportFile[]): void {
  const made = new Set<string>();
  for (const f of files) {
    const path = join(root, f.path);
    const dir = path.slice(0, path.lastIndexOf('/'));
    if (!made.has(dir)) {
      mkdirSync(dir, { recursive: true });
      made.add(dir);
    }
    const fd = openSync(path, 'w');
    try {
      ftruncateSync(fd, f.sizeBytes);
      futimesSync(fd, f.mtimeMs / 1000, f.mtimeMs / 1000);
    } finally {
      closeSync(fd);
    }
  }
}

export interface Query {
  under: string;
  minSizeBytes: number;
  modifiedFromMs: number;
}

const matches = (q: Query, size: number, mtimeMs: number) =>
  size > q.minSizeBytes && mtimeMs >= q.modifiedFromMs;

/** find(1) in Node, synchronously: readdir with types, stat every file. Returns paths. */
export function walkSync(root: string, q: Query): string[] {
  const out: string[] = [];
  const visit = (rel: string) => {
    for (const e of readdirSync(join(root, rel), { withFileTypes: true })) {
      const child = `${rel}/${e.name}`;
      if (e.isDirectory()) visit(child);
      else {
        const st = statSync(join(root, child));
        if (matches(q, st.size, st.mtimeMs)) out.push(child);
      }
    }
  };
  visit(q.under);
  return out;
}

/** The same walk with the promise API, `concurrency` stats in flight per directory. */
export async function walkAsync(root: string, q: Query, concurrency = 64): Promise<string[]> {
  const out: string[] = [];
  const visit = async (rel: string): Promise<void> => {
    const entries = await readdir(join(root, rel), { withFileTypes: true });
    for (let i = 0; i < entries.length; i += concurrency) {
      await Promise.all(
        entries.slice(i, i + concurrency).map(async (e) => {
          const child = `${rel}/${e.name}`;
          if (e.isDirectory()) return visit(child);
          const st = await stat(join(root, child));
          if (matches(q, st.size, st.mtimeMs)) out.push(child);
        }),
      );
    }
  };
  await visit(q.under);
  return out;
}
