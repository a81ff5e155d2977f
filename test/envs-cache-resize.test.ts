// Byte mode, a resident key requested at another size: a hit, as libCacheSim counts it, with
// the entry now that size (re-admitted, evicting as it must); the oracle likewise. The key
// stayed accounted at its first size: a 100-byte cache held 1,090 bytes.
import { describe, expect, it } from 'vitest';
import { replayTrace, SIM_POLICIES, simulateCache } from '../envs/cache/index.ts';
import { cacheTraceFromKeys } from '../envs/loaders/cache-trace.ts';
import { createCachePolicy } from '../policies/cache/index.ts';

describe('byte mode: a resident key requested at another size', () => {
  it('is a hit and takes its new size, under every policy and the oracle', () => {
    // 1,000 bytes (S3-FIFO's small queue: 100). a:10 miss; a:2000 a hit, now larger than the
    // cache: dropped; a:2000 miss. c:40 miss; c:60 a hit, re-admitted at 60; c:60 hit.
    const trace = cacheTraceFromKeys(['a', 'a', 'a', 'c', 'c', 'c'], [10, 2000, 2000, 40, 60, 60]);
    for (const policy of SIM_POLICIES) {
      const r = simulateCache(trace, policy, 1000, { unit: 'bytes' });
      expect({ policy, hits: r.hits, bytesHit: r.bytes_hit }).toEqual({
        policy,
        hits: 3,
        bytesHit: 2120,
      });
    }
  });

  it('never holds more than its capacity', () => {
    // a admitted at 10, then requested at 95 next to b (90): both cannot stay in 100 bytes.
    const trace = cacheTraceFromKeys(['a', 'b', 'a', 'b'], [10, 90, 95, 90]);
    for (const name of ['lru', 'fifo', 'lfu', 'sieve', 'arc', 's3fifo'] as const) {
      const policy = createCachePolicy<number>(name, 100, { unit: 'bytes', denseKeys: true });
      replayTrace(trace, policy);
      expect({ name, over: policy.used > 100 }).toEqual({ name, over: false });
      expect(policy.has(0) && policy.has(1)).toBe(false);
    }
  });

  it('a policy reports what a resident entry counts, and nothing for a ghost or an absent key', () => {
    const arc = createCachePolicy<string>('arc', 100, { unit: 'bytes' });
    arc.access('a', 30);
    expect(arc.residentSize('a')).toBe(30);
    expect(arc.residentSize('b')).toBeUndefined();
    for (const k of ['b', 'c', 'd']) arc.access(k, 40); // a is demoted to a ghost
    expect(arc.has('a')).toBe(false);
    expect(arc.residentSize('a')).toBeUndefined();
  });
});
