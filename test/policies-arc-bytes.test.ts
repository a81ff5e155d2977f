// ARC in byte mode adapts as in count mode: a ghost hit moves p by the paper's step
// (max(|B2|/|B1|, 1) pages, Megiddo & Modha FAST'03 cases II/III) in objects of the ghost's
// size, so with every object of one size S, byte mode at capacity c * S decides exactly as
// count mode at c. (p moved by that step in bytes: it stayed within bytes of 0, ARC unadapted.)
import { describe, expect, it } from 'vitest';
import { createRng } from '../envs/core/index.ts';
import { ArcCache } from '../policies/cache/index.ts';

const S = 4096;

describe('ARC byte mode with uniform sizes', () => {
  it('moves p by one object on a B1 ghost hit, and misses where count mode misses (by hand)', () => {
    // c = 2: a miss, a hit (T2), b miss, c miss (b to B1), b B1 hit (p = 1; a to B2), a B2 hit.
    const trace = ['a', 'a', 'b', 'c', 'b', 'a'];
    const count = new ArcCache<string>(2);
    const bytes = new ArcCache<string>(2 * S, { unit: 'bytes' });
    const hc = trace.slice(0, 5).map((k) => count.access(k));
    const hb = trace.slice(0, 5).map((k) => bytes.access(k, S));
    expect([count.target, bytes.target]).toEqual([1, S]);
    hc.push(count.access('a'));
    hb.push(bytes.access('a', S));
    expect(hc).toEqual([false, true, false, false, false, false]);
    expect(hb).toEqual(hc);
  });

  it('decides as count mode request by request on seeded random traces', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const rng = createRng(seed);
      const c = 2 + Math.floor(rng.next() * 10);
      const count = new ArcCache<number>(c);
      const bytes = new ArcCache<number>(c * S, { unit: 'bytes' });
      for (let i = 0; i < 2_000; i++) {
        // Skewed keys: a hot few and a long tail, so both ghost lists see hits.
        const k = Math.floor(Math.pow(rng.next(), 2) * 4 * c);
        expect(bytes.access(k, S), `seed ${seed} request ${i}`).toBe(count.access(k));
        expect(bytes.target).toBeCloseTo(count.target * S, 6);
      }
    }
  });
});

describe("ARC's tie rule under rounding in p", () => {
  // On this trace the exact p is 1 object at request 30, a B2 ghost hit with |T1| = 1: the
  // paper's REPLACE then demotes from T1. Count mode's p, a sum of fractional steps, held
  // 1.0000000000000007 there, missed the tie, demoted T2's LRU (key 7) and missed the last
  // request; byte mode with size 6 (p exactly 6) hit it.
  const TRACE = [
    0, 5, 0, 3, 5, 3, 11, 15, 13, 4, 1, 10, 13, 7, 1, 8, 6, 4, 0, 2, 7, 18, 3, 7, 11, 0, 6, 9, 1, 2,
    4, 7,
  ];
  it('count mode decides as byte mode with uniform sizes, and hits the last request', () => {
    const S = 6;
    const count = new ArcCache<number>(7);
    const bytes = new ArcCache<number>(7 * S, { unit: 'bytes' });
    const hc = TRACE.map((k) => count.access(k));
    const hb = TRACE.map((k) => bytes.access(k, S));
    expect(hc).toEqual(hb);
    expect(hc.at(-1)).toBe(true);
  });
});
