// Trace replay: feed every request of a trace to a cache policy and count hits, in requests
// and in bytes. The policy objects are the ones the live file service runs (policies/cache);
// Belady's oracle, which needs the future, lives in belady.ts.
import { createCachePolicy, type CachePolicy } from '../../policies/cache/index.ts';
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
  const keys = trace.keys;
  const sizes = trace.sizes;
  let hits = 0;
  let bytesRequested = 0;
  let bytesHit = 0;
  if (sizes) {
    for (let i = start; i < end; i++) {
      const size = sizes[i]!;
      bytesRequested += size;
      if (policy.access(keys[i]!, size)) {
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
