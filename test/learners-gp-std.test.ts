// standardise keeps the old formulas for outputs that do not overflow, bit for bit, including
// its threshold on the variance (at the double just above 1e-24, sqrt rounds to exactly
// 1e-12: a threshold on the std set it to 1).
import { describe, expect, it } from 'vitest';
import { standardise } from '../learners/gp/gp.ts';

function oldStandardise(y: readonly number[]): { z: number[]; mean: number; std: number } {
  const mean = y.reduce((s, v) => s + v, 0) / y.length;
  const variance = y.reduce((s, v) => s + (v - mean) ** 2, 0) / y.length;
  const std = variance > 1e-24 ? Math.sqrt(variance) : 1;
  return { z: y.map((v) => (v - mean) / std), mean, std };
}

describe('standardise is bit-identical to the old formulas', () => {
  it('on random ordinary data', () => {
    let s = 12345;
    const rnd = (): number => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let k = 0; k < 2000; k++) {
      const n = 1 + Math.floor(rnd() * 30);
      const scale = 10 ** (Math.floor(rnd() * 40) - 20);
      const y = Array.from({ length: n }, () => (rnd() - 0.3) * scale);
      expect(standardise(y)).toEqual(oldStandardise(y));
    }
  });
  it('on outputs whose variance is the double just above 1e-24', () => {
    const y = [2.1213203435596427e-12, 0, 0];
    const old = oldStandardise(y);
    expect(old.std).toBe(1e-12); // old: variance 1.0000000000000001e-24 > 1e-24, std kept
    expect(standardise(y)).toEqual(old); // new: std 1e-12 is not > 1e-12, std set to 1
  });
});
