// ARC's REPLACE demotes from T1 when |T1| > p (or |T1| == p on a B2 hit). The tie tolerance
// for p's rounding is under half a unit: at first 1e-9 x capacity, in byte mode at 2 GB it
// was 2 bytes, so |T1| = 1 byte > p = 0 counted as a tie and a miss demoted from T2.
import { describe, expect, it } from 'vitest';
import { ArcCache } from '../policies/cache/index.ts';

function run(capacity: number): { a: boolean; b: boolean } {
  const half = capacity / 2;
  const arc = new ArcCache<string>(capacity, { unit: 'bytes' });
  arc.access('a', 1); // T1: 1 byte
  arc.access('b', half); // T1
  arc.access('b', half); // T2
  expect(arc.target).toBe(0);
  // A full miss: T1 (1 byte) > p (0), so the paper demotes 'a' from T1, and 'b' stays.
  arc.access('c', half);
  return { a: arc.has('a'), b: arc.has('b') };
}

describe('ARC byte-mode tie tolerance', () => {
  it('demotes from T1 when |T1| > p, whatever the capacity (2 MB)', () => {
    expect(run(2e6)).toEqual({ a: false, b: true });
  });
  it('demotes from T1 when |T1| > p, whatever the capacity (2 GB)', () => {
    expect(run(2e9)).toEqual({ a: false, b: true });
  });
});
