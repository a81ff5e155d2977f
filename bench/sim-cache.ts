// Replay throughput of every cache policy on the cloudphysics trace, in requests per second.
// Loading is excluded; each policy replays the whole trace from an empty cache until at least
// MIN_MS have passed (and at least MIN_REPLAYS times), after one untimed warm-up replay so the
// JIT has compiled the hot path. The rate is the mean over all timed replays (requests
// replayed / total time), not a best or median run.
import { resolve } from 'node:path';
import { SIM_POLICIES, simulateCache } from '../envs/cache/index.ts';
import { loadCacheCsv } from '../envs/loaders/cache-csv.ts';

const ROOT = resolve(import.meta.dirname, '..');
const TRACE = resolve(ROOT, '../shared/traces/cache/cloudphysics.csv');
const MIN_MS = 1000;
const MIN_REPLAYS = 3;
/** Bound on replays per policy, whatever the clock says. */
const MAX_REPLAYS = 10_000;

export interface CacheBenchOptions {
  /** Cache size in objects; default 10% of the trace's distinct keys (libCacheSim's 0.1). */
  sizeObjects?: number;
  minMs?: number;
}

export async function benchCacheSim(opts: CacheBenchOptions = {}): Promise<Record<string, number>> {
  const trace = loadCacheCsv(TRACE, { keyColumn: 'lbn' });
  const size = opts.sizeObjects ?? Math.floor(trace.keyCount * 0.1);
  const minMs = opts.minMs ?? MIN_MS;
  const out: Record<string, number> = {
    trace_requests: trace.keys.length,
    cache_size_objects: size,
  };
  for (const policy of SIM_POLICIES) {
    simulateCache(trace, policy, size);
    let replays = 0;
    const t0 = performance.now();
    let elapsedMs = 0;
    while ((elapsedMs < minMs || replays < MIN_REPLAYS) && replays < MAX_REPLAYS) {
      simulateCache(trace, policy, size);
      replays++;
      elapsedMs = performance.now() - t0;
    }
    out[`${policy}_requests_per_s`] = Math.round(
      (replays * trace.keys.length) / (elapsedMs / 1000),
    );
    process.stderr.write(
      `sim-cache: ${policy} ${out[`${policy}_requests_per_s`]} requests/s, mean of ${replays} replays\n`,
    );
  }
  return out;
}
