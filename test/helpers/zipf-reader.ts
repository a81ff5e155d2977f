// A seeded Zipf-skewed reader over a set of files, for tests that need a live access stream.
import type { FileService } from '../../controlplane/files/service.ts';
import { ROOT } from '../../controlplane/files/types.ts';
import { createRng } from '../../envs/core/index.ts';

export function zipfSampler(n: number, alpha: number, seed: number): () => number {
  const w = Array.from({ length: n }, (_, i) => 1 / Math.pow(i + 1, alpha));
  const total = w.reduce((a, b) => a + b, 0);
  let acc = 0;
  const cdf = w.map((x) => (acc += x / total));
  const rng = createRng(seed);
  return () => {
    const u = rng.next();
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((cdf[mid] as number) < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

/** Reads `paths` in a Zipf order until stop() (or maxReads); returns the number of reads. */
export function startZipfReader(
  files: FileService,
  paths: readonly string[],
  opts: { alpha: number; seed: number; maxReads: number },
) {
  const next = zipfSampler(paths.length, opts.alpha, opts.seed);
  let stopped = false;
  let reads = 0;
  const done = (async () => {
    while (!stopped && reads < opts.maxReads) {
      await files.read(ROOT, paths[next()] as string);
      reads++;
    }
    return reads;
  })();
  return {
    stop: async () => {
      stopped = true;
      return done;
    },
    get reads() {
      return reads;
    },
  };
}
