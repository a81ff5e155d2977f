// The live file workload: reads (and some writes) against the file service, either over a
// synthetic set of files with Zipf popularity, or replaying a cache trace's key order
// (libCacheSim-style: each distinct key becomes one chunk of a file, every request one read,
// every invalidation one write of that chunk).
// Either way the operations are paced by the driver (paced.ts): Poisson arrivals at ratePerS,
// not the trace's own timing (a CacheTrace carries no timestamps).
import type { CacheTrace } from '../../envs/loaders/cache-trace.ts';
import { createRng } from '../../envs/core/index.ts';
import {
  WorkloadConfigError,
  requireInteger,
  requireNonNegative,
  requirePositive,
} from '../../envs/workload/index.ts';
import type { FileService } from '../files/service.ts';
import { ROOT } from '../files/types.ts';
import { Paced, type PacedStats } from './paced.ts';

export type FilesSource =
  | { kind: 'zipf'; files: number; alpha: number; fileBytes: number; writeFraction?: number }
  | { kind: 'trace'; trace: CacheTrace; files: number; blockBytes: number; maxKeys: number };

export interface FilesWorkloadOptions {
  files: FileService;
  source: FilesSource;
  ratePerS: number;
  concurrency?: number;
  seed: number;
  maxOps?: number;
  dir?: string;
}

/** Bad options are refused before anything is created, naming the field and the rule. */
function checkOptions(o: FilesWorkloadOptions): void {
  requirePositive('ratePerS', o.ratePerS);
  if (o.concurrency !== undefined) requireInteger('concurrency', o.concurrency, 1);
  if (o.maxOps !== undefined) requireInteger('maxOps', o.maxOps, 0);
  const s = o.source;
  requireInteger('files', s.files, 1);
  if (s.kind === 'zipf') {
    requireNonNegative('alpha', s.alpha);
    requireInteger('fileBytes', s.fileBytes, 0);
    const w = s.writeFraction ?? 0;
    if (!(w >= 0 && w <= 1))
      throw new WorkloadConfigError('writeFraction', `must be in [0, 1], got ${w}`);
  } else {
    requireInteger('blockBytes', s.blockBytes, 1);
    requireInteger('maxKeys', s.maxKeys, 1);
  }
}

function zipfCdf(n: number, alpha: number): Float64Array {
  const cdf = new Float64Array(n);
  let acc = 0;
  for (let i = 0; i < n; i++) acc += 1 / Math.pow(i + 1, alpha);
  let run = 0;
  for (let i = 0; i < n; i++) cdf[i] = run += 1 / Math.pow(i + 1, alpha) / acc;
  return cdf;
}

function pick(cdf: Float64Array, u: number): number {
  let lo = 0;
  let hi = cdf.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((cdf[mid] as number) < u) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class FilesWorkload {
  private constructor(private readonly paced: Paced) {}

  get stats(): PacedStats {
    return this.paced.stats;
  }

  /** Creates the files the workload reads (idempotent), then starts the paced reads. */
  static async start(o: FilesWorkloadOptions): Promise<FilesWorkload> {
    checkOptions(o);
    const dir = o.dir ?? '/workload';
    const svc = o.files;
    await svc.mkdir(ROOT, dir, { parents: true }).catch(() => undefined);
    const path = (i: number) => `${dir}/f${i}`;
    const rng = createRng(o.seed);
    let op: (i: number) => Promise<void>;
    if (o.source.kind === 'zipf') {
      const { files, alpha, fileBytes, writeFraction = 0 } = o.source;
      const body = Buffer.alloc(fileBytes, 0x6b);
      for (let i = 0; i < files; i++) await ensureFile(svc, path(i), body);
      const cdf = zipfCdf(files, alpha);
      op = async () => {
        const f = path(pick(cdf, rng.next()));
        if (rng.next() < writeFraction) await svc.write(ROOT, f, 0, body);
        else await svc.read(ROOT, f);
      };
    } else {
      const { trace, files, blockBytes, maxKeys } = o.source;
      // Only the first maxKeys distinct keys are replayed, so the data set stays bounded.
      // An invalidation (a write in the trace) writes its block, which drops the block's
      // cached copy as the simulator's replay does; every other entry reads it.
      const entries: number[] = [];
      for (let e = 0; e < trace.keys.length; e++)
        if ((trace.keys[e] as number) < maxKeys) entries.push(e);
      if (!entries.some((e) => trace.invalidations?.[e] !== 1))
        throw new Error(`files workload: no request of ${trace.source} has a key below ${maxKeys}`);
      const chunksPerFile = Math.ceil(maxKeys / files);
      const body = Buffer.alloc(chunksPerFile * blockBytes, 0x6b);
      const block = body.subarray(0, blockBytes);
      for (let i = 0; i < files; i++) await ensureFile(svc, path(i), body);
      op = async (i) => {
        const e = entries[i % entries.length] as number;
        const key = trace.keys[e] as number;
        const [f, offset] = [path(key % files), Math.floor(key / files) * blockBytes];
        if (trace.invalidations?.[e] === 1) await svc.write(ROOT, f, offset, block);
        else await svc.read(ROOT, f, { offset, length: blockBytes });
      };
    }
    return new FilesWorkload(
      new Paced(
        {
          ratePerS: o.ratePerS,
          concurrency: o.concurrency ?? 4,
          seed: o.seed + 1,
          ...(o.maxOps !== undefined ? { maxOps: o.maxOps } : {}),
        },
        op,
      ),
    );
  }

  stop(): Promise<PacedStats> {
    return this.paced.stop();
  }
}

async function ensureFile(svc: FileService, p: string, body: Buffer): Promise<void> {
  const exists = await svc.stat(ROOT, p).then(
    (s) => s.sizeBytes === body.length,
    () => false,
  );
  if (exists) return;
  await svc.create(ROOT, p).catch(() => undefined);
  await svc.write(ROOT, p, 0, body);
}
