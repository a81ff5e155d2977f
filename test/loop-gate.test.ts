import { describe, expect, it } from 'vitest';
import { judge, runGate, type Pair } from '../controlplane/loop/gate.ts';
import { ci95, t975 } from '../controlplane/loop/stats.ts';
import type { Calibration } from '../controlplane/loop/target.ts';
import { sliceWindow } from '../controlplane/loop/targets/common.ts';
import { SchedulerPolicyTarget } from '../controlplane/loop/targets/scheduler-policy.ts';
import { syntheticWorkload, uniformWorkers } from '../envs/scheduler/index.ts';
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

describe("the gate's slice windows", () => {
  /** Every item any seed's window of a slice covers, per slice. */
  const covered = (n: number, slices: number) =>
    Array.from({ length: slices }, (_, slice) => {
      const seen = new Set<number>();
      for (let seed = 1; seed < 300; seed++) {
        const w = sliceWindow(n, slices, slice, seed);
        expect(w.start).toBeGreaterThanOrEqual(0);
        expect(w.end).toBeLessThanOrEqual(n);
        expect(w.end).toBeGreaterThan(w.start);
        for (let i = w.start; i < w.end; i++) seen.add(i);
      }
      return [...seen].sort((a, b) => a - b);
    });

  it('cover every item, the newest n mod slices too, each in exactly one slice', () => {
    for (const [n, slices] of [
      [10, 4],
      [7, 3],
      [23, 4],
      [1003, 4],
    ] as const) {
      const per = covered(n, slices);
      expect(per.flat()).toEqual([...Array(n).keys()]);
      // Slices no more than one item apart in length.
      const lens = per.map((s) => s.length);
      expect(Math.max(...lens) - Math.min(...lens)).toBeLessThanOrEqual(1);
    }
  });

  it('with fewer items than slices, give n slices of one item each and wrap onto them', () => {
    for (const [n, slices] of [
      [3, 4],
      [1, 3],
      [5, 8],
    ] as const) {
      const per = covered(n, slices);
      expect(per.slice(0, n)).toEqual([...Array(n).keys()].map((i) => [i]));
      per.slice(n).forEach((s, k) => expect(s).toEqual(per[k % n]));
    }
    expect(sliceWindow(0, 4, 2, 1)).toEqual({ start: 0, end: 0 });
  });
});

describe("the scheduler target's gate evaluations", () => {
  it('sample a slice on each seed: repeated seeds are not the same run', async () => {
    const workers = uniformWorkers(4, { cpu: 4, memMb: 16_384, gpu: 0 });
    const target = new SchedulerPolicyTarget({
      knobs: {} as never, // evaluate reads no knob
      workers,
      windowMs: 60_000,
      minJobs: 1,
      maxRecords: 1_000,
      shadowMs: 5_000,
      shadowMinRounds: 1,
    });
    const cal: Calibration = {
      data: syntheticWorkload({ jobs: 60, workers, seed: 3, load: 0.9 }),
      fit: { metric: 'mean_jct_ms', predicted: 1, observed: 1, relativeError: 0 },
      records: 60,
    };
    const fifo = { 'scheduler.policy': 'fifo' };
    const runs = await Promise.all(
      [1, 2, 3, 4, 5].map((seed) => target.evaluate(cal, fifo, seed, 0)),
    );
    // Before, the simulator without stragglers ignored the seed: five identical numbers.
    expect(new Set(runs).size).toBeGreaterThan(1);
    // The same seed and slice repeat exactly (a paired run compares like with like).
    expect(await target.evaluate(cal, fifo, 2, 0)).toBe(runs[1]);
  });
});
