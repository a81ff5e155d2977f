import { describe, expect, it } from 'vitest';
import { judge, runGate, type Pair } from '../controlplane/loop/gate.ts';
import { ci95, t975 } from '../controlplane/loop/stats.ts';
import { createRng } from '../envs/core/index.ts';

const opts = { direction: 'min' as const, minEffect: 0.01, minSamples: 4, maxSamples: 16 };
/** One run per slice: each pair its own unit. */
const pairs = (xs: [number, number][]): Pair[] =>
  xs.map(([incumbent, candidate], i) => ({ incumbent, candidate, seed: 1, slice: i }));

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
    const r = await runGate(evaluate, 'inc', 'cand', { ...opts, slices: 6, seed: 1 });
    expect(r.outcome).toBe('successful');
    expect(r.samples).toBeGreaterThanOrEqual(4);
    expect(calls).toBe(2 * r.pairs.length);
  });

  it('judges slices, not runs: more seeds of the same slices add no samples', () => {
    // Three slices, each run on five seeds with the very same numbers (a deterministic
    // simulator): three samples, whose spread leaves the interval wide.
    const runs: Pair[] = [];
    const bySlice: [number, number][] = [
      [1, 0.9],
      [1, 0.98],
      [1, 0.94],
    ];
    for (let seed = 1; seed <= 5; seed++)
      bySlice.forEach(([incumbent, candidate], slice) =>
        runs.push({ incumbent, candidate, seed, slice }),
      );
    const r = judge(runs, { ...opts, minSamples: 3 });
    expect(r.samples).toBe(3);
    expect(r.outcome).toBe('inconclusive');
    // Counted as 15 independent samples, the same numbers would have passed.
    const asRuns = judge(
      runs.map((p, i) => ({ ...p, slice: i })),
      { ...opts, minSamples: 3 },
    );
    expect(asRuns.outcome).toBe('successful');
  });

  it('stops once a round of seeds repeats the last, and refuses settings that cannot decide', async () => {
    let calls = 0;
    const evaluate = async (c: 'inc' | 'cand', _seed: number, slice: number) => {
      calls++;
      return c === 'cand' ? [0.9, 1.04, 0.95, 0.97][slice]! : 1;
    };
    const r = await runGate(evaluate, 'inc', 'cand', { ...opts, slices: 4, seed: 1 });
    expect(r.outcome).toBe('inconclusive');
    expect(r.samples).toBe(4);
    expect(r.pairs).toHaveLength(8); // two rounds: the second repeated the first
    expect(calls).toBe(16);
    expect(r.reasons.at(-1)).toMatch(/same result on a new seed/);
    await expect(
      runGate(evaluate, 'inc', 'cand', { ...opts, minSamples: 1, slices: 4, seed: 1 }),
    ).rejects.toThrow(/minSamples must be an integer >= 3/);
    await expect(runGate(evaluate, 'inc', 'cand', { ...opts, slices: 3, seed: 1 })).rejects.toThrow(
      /slices \(3\) must be an integer >= minSamples \(4\)/,
    );
  });
});
