// Trace replay: feed every request of a trace to a cache policy and count hits, in requests
// and in bytes; an invalidation (a write) drops the key's cached copy and is not a request.
// The policy objects are the ones the live file service runs (policies/cache); Belady's
// oracle, which needs the future, lives in belady.ts.
import { createCachePolicy, entryUnits, type CachePolicy } from '../../policies/cache/index.ts';
import type { CacheTrace } from '../loaders/cache-trace.ts';
import { simulateBelady } from './belady.ts';
import { makeResult, segmentOf, type ReplayOptions, type ReplayResult } from './result.ts';

/** The policy names the simulator accepts: every online policy plus the oracle. */
export const SIM_POLICIES = ['lru', 'fifo', 'lfu', 'arc', 'sieve', 's3fifo', 'belady'] as const;

/** Replays the trace through a policy that takes the trace's dense integer key ids. */
export function replayTrace(
  trace: CacheTrace,
  policy: CachePolicy<number>,
  opts: ReplayOptions = {},
): ReplayResult {
  const [start, end] = segmentOf(trace, opts);
  // A trace with writes takes its own loop, so one without keeps this branch-free one.
  if (trace.invalidations) return replayWithInvalidations(trace, policy, start, end);
  const keys = trace.keys;
  const sizes = trace.sizes;
  let hits = 0;
  let bytesRequested = 0;
  let bytesHit = 0;
  if (sizes) {
    const resize = policy.unit === 'bytes';
    for (let i = start; i < end; i++) {
      const size = sizes[i]!;
      bytesRequested += size;
      if ((resize && resizedHit(policy, keys[i]!, size)) || policy.access(keys[i]!, size)) {
        hits++;
        bytesHit += size;
      }
    }
  } else {
    for (let i = start; i < end; i++) if (policy.access(keys[i]!, 1)) hits++;
    bytesRequested = end - start;
    bytesHit = hits;
  }
  const counts = { requests: end - start, hits, bytesRequested, bytesHit };
  return makeResult(policy.name, policy.capacity, policy.unit, counts);
}

/**
 * A hit on a resident key requested at another size, as libCacheSim counts it: a hit, the
 * entry now the new size. The policy keeps an entry's admitted size, so the entry is admitted
 * again at the new size, evicting as it must (its recency and frequency start over: libCacheSim
 * keeps them). Before, it stayed accounted at its first size: a 100-byte cache held 1,090
 * bytes. Returns whether the request was such a hit (false: an ordinary access follows).
 */
function resizedHit(policy: CachePolicy<number>, k: number, size: number): boolean {
  const held = policy.residentSize(k);
  if (held === undefined || held === entryUnits('bytes', size)) return false;
  policy.delete(k);
  policy.access(k, size);
  return true;
}

function replayWithInvalidations(
  trace: CacheTrace,
  policy: CachePolicy<number>,
  start: number,
  end: number,
): ReplayResult {
  const keys = trace.keys;
  const sizes = trace.sizes;
  const inv = trace.invalidations!;
  let requests = 0;
  let hits = 0;
  let bytesRequested = 0;
  let bytesHit = 0;
  for (let i = start; i < end; i++) {
    const k = keys[i]!;
    if (inv[i] === 1) {
      // As the live cache drops a chunk it wrote: only a resident entry goes; a ghost entry
      // (ARC's B1/B2, S3-FIFO's ghost queue) is history the policy learns from, and stays.
      if (policy.has(k)) policy.delete(k);
      continue;
    }
    const size = sizes ? sizes[i]! : 1;
    requests++;
    bytesRequested += size;
    if (
      (sizes && policy.unit === 'bytes' && resizedHit(policy, k, size)) ||
      policy.access(k, size)
    ) {
      hits++;
      bytesHit += size;
    }
  }
  const counts = { requests, hits, bytesRequested, bytesHit };
  return makeResult(policy.name, policy.capacity, policy.unit, counts);
}

/**
 * Replays the trace under a policy by name ('belady' included), starting from an empty
 * cache. In byte mode the trace must carry sizes.
 */
export function simulateCache(
  trace: CacheTrace,
  policy: string,
  capacity: number,
  opts: ReplayOptions = {},
): ReplayResult {
  const unit = opts.unit ?? 'objects';
  if (unit === 'bytes' && !trace.sizes) {
    throw new RangeError(`byte mode needs request sizes, and ${trace.source} has none`);
  }
  if (policy === 'belady') return simulateBelady(trace, capacity, opts);
  const cache = createCachePolicy<number>(policy, capacity, { unit, denseKeys: true });
  return replayTrace(trace, cache, opts);
}
