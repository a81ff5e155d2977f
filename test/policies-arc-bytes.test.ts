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
