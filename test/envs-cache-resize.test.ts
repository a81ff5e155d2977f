// Byte mode, a key requested at another size: a new version of the object, so the replay and
// Belady drop its copy and count a miss, admitting it at the new size (as the file service's
// cache drops a chunk whose version changed). The key stayed accounted at its first size: a
// 100-byte cache held 1,090 bytes and served 1,000-byte hits.
import { describe, expect, it } from 'vitest';
import { SIM_POLICIES, simulateCache } from '../envs/cache/index.ts';
import { cacheTraceFromKeys } from '../envs/loaders/cache-trace.ts';
import { createCachePolicy } from '../policies/cache/index.ts';

describe('byte mode: a resident key requested at another size', () => {
  it('misses and is admitted at its new size, under every policy and the oracle', () => {
    // 1,000 bytes (S3-FIFO's small queue: 100). a:10 miss; a:2000 another version, larger
    // than the cache: miss, not admitted; a:2000 miss. Then c:40 miss; c:60 another version:
    // miss, admitted at 60; c:60 hit.
    const trace = cacheTraceFromKeys(['a', 'a', 'a', 'c', 'c', 'c'], [10, 2000, 2000, 40, 60, 60]);
    for (const policy of SIM_POLICIES) {
      const r = simulateCache(trace, policy, 1000, { unit: 'bytes' });
      expect({ policy, hits: r.hits, bytesHit: r.bytes_hit }).toEqual({
        policy,
        hits: 1,
        bytesHit: 60,
      });
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
