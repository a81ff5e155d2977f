// The small-file op mix of bench:files, run the same way against the file service and against
// Node's fs on a local directory: for each file, create it, write 1 KiB at offset 0, read it
// back whole; `concurrency` files in flight at once. Times each kind of op separately too.
import { open, readFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT, type FileService } from '../controlplane/files/index.ts';

export interface MixResult {
  ops: number;
  seconds: number;
  ops_per_s: number;
  /** Mean latency per op kind, ms. */
  create_ms: number;
  write_ms: number;
  read_ms: number;
}

/** How one backend does the three ops. */
export interface MixTarget {
  setup(dirs: number): Promise<void>;
  create(path: string): Promise<void>;
  write(path: string, data: Buffer): Promise<void>;
  read(path: string): Promise<Buffer>;
}

export function knobosTarget(fs: FileService, root: string): MixTarget {
  return {
    async setup(dirs) {
      for (let d = 0; d < dirs; d++) await fs.mkdir(ROOT, `${root}/d${d}`, { parents: true });
    },
    async create(p) {
      await fs.create(ROOT, `${root}${p}`);
    },
    async write(p, data) {
      await fs.write(ROOT, `${root}${p}`, 0, data);
    },
    read: (p) => fs.read(ROOT, `${root}${p}`),
  };
}

export function nodeFsTarget(dir: string): MixTarget {
  return {
    async setup(dirs) {
      for (let d = 0; d < dirs; d++) await mkdir(join(dir, `d${d}`), { recursive: true });
    },
    async create(p) {
      await (await open(join(dir, p), 'wx')).close(); // O_CREAT | O_EXCL, as the service's create
    },
    async write(p, data) {
      const h = await open(join(dir, p), 'r+'); // a write at an offset into an existing file
      try {
        await h.write(data, 0, data.length, 0);
      } finally {
        await h.close();
      }
    },
    read: (p) => readFile(join(dir, p)),
  };
}

const DIRS = 20;

/** Runs `files` files through create, write, read with `concurrency` workers. */
export async function runMix(
  target: MixTarget,
  opts: { files: number; concurrency: number; bytes: number; prefix: string },
): Promise<MixResult> {
  await target.setup(DIRS);
  const data = Buffer.alloc(opts.bytes, 0x61);
  const spent = { create: 0, write: 0, read: 0 };
  let next = 0;
  const worker = async () => {
    while (next < opts.files) {
      const i = next++;
      const p = `/d${i % DIRS}/${opts.prefix}${i}`;
      let t = performance.now();
      await target.create(p);
      spent.create += performance.now() - t;
      t = performance.now();
      await target.write(p, data);
      spent.write += performance.now() - t;
      t = performance.now();
      const got = await target.read(p);
      spent.read += performance.now() - t;
      if (got.length !== opts.bytes) throw new Error(`read ${p}: ${got.length} bytes`);
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  const seconds = (performance.now() - t0) / 1000;
  const ops = opts.files * 3;
  return {
    ops,
    seconds,
    ops_per_s: ops / seconds,
    create_ms: spent.create / opts.files,
    write_ms: spent.write / opts.files,
    read_ms: spent.read / opts.files,
  };
}

/** Rounds summed: total ops over total time, latencies weighted by files. */
export function totalMix(rounds: readonly MixResult[]): MixResult {
  const ops = rounds.reduce((a, r) => a + r.ops, 0);
  const seconds = rounds.reduce((a, r) => a + r.seconds, 0);
  const mean = (f: (r: MixResult) => number) =>
    rounds.reduce((a, r) => a + f(r) * r.ops, 0) / Math.max(1, ops);
  return {
    ops,
    seconds,
    ops_per_s: ops / seconds,
    create_ms: mean((r) => r.create_ms),
    write_ms: mean((r) => r.write_ms),
    read_ms: mean((r) => r.read_ms),
  };
}
