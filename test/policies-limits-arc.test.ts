// ARC in byte mode keeps its ghost lists within the paper's bounds, in bytes: T1 + B1 <= c and
// B1 + B2 <= c. Before, a step that demoted a large entry dropped one small ghost, and on a
// mixed-size trace the ghosts grew to dozens of times the capacity.
import { describe, expect, it } from 'vitest';
import { ArcCache, createCachePolicy } from '../policies/cache/index.ts';

/** A seeded skewed key stream with mixed sizes: every seventh key is large. */
function mixedTrace(n: number, seed: number): { key: string; size: number }[] {
  let s = seed >>> 0;
  const next = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
  return Array.from({ length: n }, () => {
    const k = Math.floor(next() ** 2 * 5_000);
    return { key: `k${k}`, size: k % 7 === 0 ? 3_000 : 1 + (k % 50) };
  });
}

describe('ARC ghost bounds in byte mode', () => {
  it('keeps the ghosts B1 + B2 within the capacity after every request', () => {
    const capacity = 10_000;
    const arc = new ArcCache<string>(capacity, { unit: 'bytes' });
    let maxGhost = 0;
    for (const { key, size } of mixedTrace(100_000, 7)) {
      arc.access(key, size);
      maxGhost = Math.max(maxGhost, arc.ghostUsed);
      expect(arc.used).toBeLessThanOrEqual(capacity);
    }
    expect(maxGhost).toBeLessThanOrEqual(capacity);
    // The ghosts still do their work: they are not trimmed away.
    expect(maxGhost).toBeGreaterThan(capacity / 2);
  });

  it('changes nothing when every entry has size 1 (byte mode is then count mode)', () => {
    const trace = mixedTrace(20_000, 3);
    const hits = (unit: 'bytes' | 'objects') => {
      const arc = createCachePolicy<string>('arc', 200, { unit });
      return trace.filter(({ key }) => arc.access(key, 1)).length;
    };
    expect(hits('bytes')).toBe(hits('objects'));
    const arc = new ArcCache<string>(200);
    for (const { key } of trace) arc.access(key);
    expect(arc.ghostUsed).toBeLessThanOrEqual(200);
  });
});
