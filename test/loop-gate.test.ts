import { describe, expect, it } from 'vitest';
import { judge, runGate, type Pair } from '../controlplane/loop/gate.ts';
import { ci95, t975 } from '../controlplane/loop/stats.ts';
import { createRng } from '../envs/core/index.ts';

const opts = { direction: 'min' as const, minEffect: 0.01, minSamples: 4, maxSamples: 16 };
const pairs = (xs: [number, number][]): Pair[] =>
  xs.map(([incumbent, candidate], i) => ({ incumbent, candidate, seed: i, slice: 0 }));

describe('statistics', () => {
  it('computes a t interval by hand', () => {
    // xs = 1,2,3,4: mean 2.5, s = 1.2910, t(3) = 3.182, half = 3.182 * 1.2910 / 2 = 2.054
    const [lo, hi] = ci95([1, 2, 3, 4]);
    expect(lo).toBeCloseTo(2.5 - 2.054, 3);
    expect(hi).toBeCloseTo(2.5 + 2.054, 3);
    expect(t975(1)).toBe(12.706);
    expect(t975(1000)).toBe(1.96);
  });
});

describe('the simulation gate', () => {
  it('waits for enough samples', () => {
    expect(judge(pairs([[1, 0.5]]), opts).outcome).toBe('inconclusive');
  });

  it('passes a clear improvement', () => {
    const r = judge(
      pairs([
        [1, 0.8],
        [1, 0.82],
        [1.1, 0.9],
        [0.9, 0.72],
      ]),
      opts,
    );
    expect(r.outcome).toBe('successful');
    expect(r.improvement).toBeGreaterThan(0.15);
    expect(r.reasons[0]).toMatch(/above 1.00%/);
  });

  it('fails a clear regression', () => {
    const r = judge(
      pairs([
        [1, 1.2],
        [1, 1.19],
        [1.1, 1.3],
        [0.9, 1.1],
      ]),
      opts,
    );
    expect(r.outcome).toBe('failed');
    expect(r.reasons[0]).toMatch(/^regression/);
  });

  it('fails a gain too small to be worth a change', () => {
    const r = judge(
      pairs([
        [1, 0.999],
        [1, 0.998],
        [1, 0.9995],
        [1, 0.9985],
      ]),
      opts,
    );
    expect(r.outcome).toBe('failed');
    expect(r.reasons[0]).toMatch(/gain too small/);
  });

  it('stays inconclusive when noise hides the sign', () => {
    const r = judge(
      pairs([
        [1, 0.7],
        [1, 1.3],
        [1, 0.8],
        [1, 1.25],
      ]),
      opts,
    );
    expect(r.outcome).toBe('inconclusive');
  });

  it('adds paired samples until it can decide, and stops there', async () => {
    const rng = createRng(5);
    let calls = 0;
    // Candidate truly 5% better, with 3% noise shared by the pair (same seed, same slice).
    const evaluate = async (c: 'inc' | 'cand', seed: number, slice: number) => {
      calls++;
      const noise = createRng(seed * 31 + slice).normal(0, 0.03) + rng.normal(0, 0.002);
      return (c === 'cand' ? 0.95 : 1) * (1 + noise);
    };
    const r = await runGate(evaluate, 'inc', 'cand', { ...opts, slices: 3, seed: 1 });
    expect(r.outcome).toBe('successful');
    expect(r.samples).toBeGreaterThanOrEqual(4);
    expect(calls).toBe(2 * r.samples);
  });
});
