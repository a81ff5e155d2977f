import { describe, expect, it } from 'vitest';
import { CACHE_POLICIES } from '../knobs/index.ts';
import {
  ArcCache,
  CACHE_POLICY_NAMES,
  CachePolicyError,
  createCachePolicy,
  createVictimPolicy,
  LfuCache,
  S3FifoCache,
  VICTIM_POLICY_NAMES,
  type CachePolicy,
} from '../policies/cache/index.ts';

/** Replays keys through a policy; returns the 1-based positions of the hits. */
function hitsAt<K>(cache: CachePolicy<K>, keys: readonly K[], sizes?: readonly number[]): number[] {
  const out: number[] = [];
  keys.forEach((k, i) => {
    if (cache.access(k, sizes?.[i])) out.push(i + 1);
  });
  return out;
}

/** A seeded skewed workload over n keys (a cheap Zipf-like draw). */
function skewedKeys(n: number, count: number, seed: number): number[] {
  let s = seed >>> 0;
  const next = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
  return Array.from({ length: count }, () => Math.floor(n * next() ** 3));
}

const TINY = ['a', 'b', 'c', 'a', 'd', 'b', 'a', 'e', 'a', 'b'];

describe('cache policy names', () => {
  it('equal the knob catalog list (policies/ may not import knobs/, so the list is kept twice)', () => {
    expect([...CACHE_POLICY_NAMES]).toEqual([...CACHE_POLICIES]);
  });

  it('build every policy by name and reject unknown names naming the field', () => {
    for (const name of CACHE_POLICY_NAMES) expect(createCachePolicy(name, 3).name).toBe(name);
    expect(() => createCachePolicy('mru', 3)).toThrow(CachePolicyError);
    try {
      createCachePolicy('mru', 3);
    } catch (err) {
      expect((err as CachePolicyError).field).toBe('policy');
    }
    expect(() => createCachePolicy('lru', -1)).toThrow(/capacity/);
    expect(() => createCachePolicy('lru', 2.5)).toThrow(/capacity/);
  });
});

describe('hand-computed hits on a tiny trace (capacity 3)', () => {
  // a b c a d b a e a b
  it('LRU: hits at requests 4, 7, 9, 10', () => {
    expect(hitsAt(createCachePolicy('lru', 3), TINY)).toEqual([4, 7, 9, 10]);
  });

  it('FIFO: hits at requests 4, 6, 9 (a hit does not save a from eviction at 5)', () => {
    expect(hitsAt(createCachePolicy('fifo', 3), TINY)).toEqual([4, 6, 9]);
  });

  it('LFU: among equal counts the oldest entrant goes (b, not c, is evicted for d)', () => {
    const lfu = new LfuCache<string>(3);
    expect(hitsAt(lfu, TINY.slice(0, 5))).toEqual([4]);
    expect(lfu.has('b')).toBe(false);
    expect(lfu.has('c')).toBe(true);
    expect(lfu.frequency('a')).toBe(2);
    expect(hitsAt(createCachePolicy('lfu', 3), TINY)).toEqual([4, 7, 9, 10]);
  });

  it('SIEVE: the hand clears a and evicts b, then resumes where it stopped', () => {
    const sieve = createCachePolicy<string>('sieve', 3);
    expect(hitsAt(sieve, TINY.slice(0, 5))).toEqual([4]);
    expect(['a', 'b', 'c', 'd'].map((k) => sieve.has(k))).toEqual([true, false, true, true]);
    expect(hitsAt(createCachePolicy('sieve', 3), TINY)).toEqual([4, 7, 9, 10]);
  });
});

describe('ARC', () => {
  it('keeps a twice-used key through a scan that flushes LRU', () => {
    const scan = Array.from({ length: 20 }, (_, i) => `s${i}`);
    const trace = ['x', 'x', ...scan, 'x'];
    expect(hitsAt(new ArcCache<string>(4), trace)).toEqual([2, 23]);
    expect(hitsAt(createCachePolicy('lru', 4), trace)).toEqual([2]);
  });

  it('a ghost hit in B1 raises the target size of T1 and readmits the key into T2', () => {
    const arc = new ArcCache<string>(2);
    hitsAt(arc, ['a', 'a', 'b', 'c']); // a in T2; c's miss demotes b from T1 to the ghost B1
    expect(arc.has('b')).toBe(false);
    expect(arc.target).toBe(0);
    expect(arc.access('b')).toBe(false);
    expect(arc.target).toBe(1);
    // T1 = {c} is not above the target any more, so T2's LRU end (a) made room.
    expect([arc.has('a'), arc.has('b'), arc.has('c')]).toEqual([false, true, true]);
    expect(arc.access('b')).toBe(true);
  });
});

describe('S3-FIFO', () => {
  it('sends a key evicted from the small queue to main when it returns (ghost hit)', () => {
    const keys = (from: number, to: number): string[] =>
      Array.from({ length: to - from }, (_, i) => `k${from + i}`);
    const s3 = new S3FifoCache<string>(10); // small queue 1, main 9, ghost 9
    hitsAt(s3, keys(0, 11)); // the 11th key evicts k0 from the small queue into the ghost
    expect(s3.has('k0')).toBe(false);
    expect(s3.access('k0')).toBe(false);
    // k0 is in main now: a run of new keys churns through the small queue and spares it,
    // where a FIFO of the same size forgets it.
    hitsAt(s3, keys(11, 40));
    expect(s3.has('k0')).toBe(true);
    const fifo = createCachePolicy<string>('fifo', 10);
    hitsAt(fifo, [...keys(0, 11), 'k0', ...keys(11, 40)]);
    expect(fifo.has('k0')).toBe(false);
  });

  it('validates its ratios', () => {
    expect(() => new S3FifoCache(10, { smallRatio: 1.5 })).toThrow(/smallRatio/);
    expect(() => new S3FifoCache(10, { moveToMainThreshold: 0 })).toThrow(/moveToMainThreshold/);
  });
});

describe('every policy', () => {
  const keys = skewedKeys(300, 5000, 11);

  it.each(CACHE_POLICY_NAMES)('%s: dense integer keys and Map keys give the same hits', (name) => {
    const dense = createCachePolicy<number>(name, 40, { denseKeys: true });
    const mapped = createCachePolicy<string>(name, 40);
    const a = hitsAt(dense, keys);
    const b = hitsAt(
      mapped,
      keys.map((k) => `key-${k}`),
    );
    expect(a).toEqual(b);
    expect(a.length).toBeGreaterThan(0);
  });

  it.each(CACHE_POLICY_NAMES)(
    '%s: a dense key that is negative or fractional is a miss and refused, never a hit',
    (name) => {
      const dense = createCachePolicy<number>(name, 4, { denseKeys: true });
      dense.access(0);
      for (const bad of [-1, 1.5]) {
        expect(dense.has(bad), `has(${bad})`).toBe(false);
        expect(() => dense.access(bad), `access(${bad})`).toThrow(RangeError);
      }
      expect(dense.count).toBe(1);
    },
  );

  it.each(CACHE_POLICY_NAMES)(
    '%s: stays within capacity; count, has, delete, clear agree',
    (name) => {
      const cache = createCachePolicy<number>(name, 25);
      let maxUsed = 0;
      for (const k of keys.slice(0, 2000)) {
        cache.access(k);
        maxUsed = Math.max(maxUsed, cache.used);
      }
      expect(maxUsed).toBe(25);
      const resident = Array.from({ length: 300 }, (_, k) => k).filter((k) => cache.has(k));
      expect(resident.length).toBe(cache.count);
      expect(cache.used).toBe(cache.count);
      const victim = resident[0]!;
      expect(cache.delete(victim)).toBe(true);
      expect(cache.has(victim)).toBe(false);
      expect(cache.count).toBe(resident.length - 1);
      expect(cache.access(victim)).toBe(false);
      cache.clear();
      expect([cache.count, cache.used]).toEqual([0, 0]);
      expect(hitsAt(cache, keys)).toEqual(hitsAt(createCachePolicy<number>(name, 25), keys));
    },
  );

  it.each(CACHE_POLICY_NAMES)('%s: byte mode counts sizes and refuses oversize objects', (name) => {
    const cache = createCachePolicy<number>(name, 10_000, { unit: 'bytes' });
    let maxUsed = 0;
    for (const k of keys.slice(0, 2000)) {
      cache.access(k, 100 + (k % 7) * 300);
      maxUsed = Math.max(maxUsed, cache.used);
    }
    expect(maxUsed).toBeLessThanOrEqual(10_000);
    expect(maxUsed).toBeGreaterThan(9_000);
    expect(cache.access(-1, 10_001)).toBe(false);
    expect(cache.has(-1)).toBe(false);
    expect(() => cache.access(-2, Number.NaN)).toThrow(CachePolicyError);
  });

  it('object mode ignores sizes', () => {
    const cache = createCachePolicy<string>('lru', 2);
    cache.access('a', 1e9);
    cache.access('b', 1e9);
    expect([cache.has('a'), cache.has('b'), cache.used]).toEqual([true, true, 2]);
  });
});

describe('victim()', () => {
  it.each(VICTIM_POLICY_NAMES)('%s: names exactly the key the next eviction removes', (name) => {
    const cache = createVictimPolicy<number>(name, 20);
    let checked = 0;
    for (const k of skewedKeys(100, 3000, 5)) {
      const full = cache.count === 20;
      const victim = cache.victim();
      const hit = cache.access(k);
      if (full && !hit) {
        expect(cache.has(victim!)).toBe(false);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(100);
    expect(createVictimPolicy(name, 3).victim()).toBeUndefined();
  });
});
