// How claims are judged (experiments/derived.ts): against the best known value, not a coarse
// grid the tuners beat; entries identical on every seed are tied, not "holds"; no-worse and
// better claims on workload seeds by a paired 95% interval against an explicit margin, shown in
// the text; tuner comparisons by an unpaired rank test (seed i of one tuner has nothing to do
// with seed i of another on a fixed objective); claims asking for more evaluations than the
// runs had, or for held-out scores not recorded, are not judged. Plus the statistics behind.
import { describe, expect, it } from 'vitest';
import { addOracleGaps, compare } from '../experiments/derived.ts';
import { summarise, type EntryResult } from '../experiments/results.ts';
import { entry } from './helpers/experiment-entries.ts';
import { tQuantile } from '../envs/core/student-t.ts';
import { mannWhitney, meanInterval } from '../experiments/stats.ts';

const test = (values: number[]) => ({ test: summarise([1, 2, 3], values) });

/** A tuning study: a coarse grid at 100, BO reaching 96 and 99 (after 2 evaluations: 120, 104). */
function tuning(): EntryResult[] {
  const entries = [
    entry('grid-optimum', 'oracle', [100, 100, 100], test([90, 90, 90])),
    entry('defaults', 'baseline', [150, 150, 150], test([140, 140, 140])),
    entry('bo', 'learner', [96, 99, 98], {
      trajectories: [
        [130, 120, 96],
        [110, 104, 99],
        [140, 125, 98],
      ],
      ...test([88, 89, 91]),
    }),
    entry('random', 'learner', [105, 103, 104], {
      trajectories: [
        [125, 118, 105],
        [140, 104, 103],
        [150, 120, 104],
      ],
      ...test([95, 94, 96]),
    }),
  ];
  addOracleGaps(entries, 'min', 'grid-optimum');
  return entries;
}

const TUNER = { seeds: 'tuner', budget: 3, oracle: 'grid-optimum' } as const;

describe('claims against the best known value', () => {
  it('measures "within" against the best value any entry reached, and flags a beaten oracle', () => {
    const [c] = compare(
      tuning(),
      'min',
      [{ type: 'within', entry: 'bo', reference: 'best-known', tolerance: 0.02 }],
      TUNER,
    );
    // The best known is BO's own 96, not the grid's 100 (which BO beats on every seed).
    expect(c!.reference_value).toBe(96);
    expect(c!.oracle_beaten).toBe(true);
    expect(c!.mean_gap).toBeCloseTo((293 / 3 - 96) / 96, 12);
    expect(c!.mean_gap).toBeGreaterThanOrEqual(0);
    // A mean gap of 1.7% is within 2%, but seeds 2 and 3 (99, 98) are 3.1% and 2.1% off: the
    // 95% interval of the per-seed gaps (-2.2% to +5.7%) straddles 2%. Before, the mean alone
    // decided it: holds.
    expect(c!).toMatchObject({ verdict: 'inconclusive', holds: false, seeds_within: 1 });
    expect(c!.ci_low as number).toBeLessThan(0.02);
    expect(c!.ci_high as number).toBeGreaterThan(0.02);
    expect(c!.text).toContain('undecided against 2.0%');
    expect(c!.text).toContain('best known 96.00 (bo, seed 1');
    expect(c!.text).toContain('ORACLE BEATEN');
  });

  it('judges held-out claims on the held-out scores of the final configurations', () => {
    const [w, v, early] = compare(
      tuning(),
      'min',
      [
        { type: 'within', entry: 'bo', reference: 'best-known', tolerance: 0.05, on: 'held-out' },
        { type: 'versus', a: 'bo', b: 'random', on: 'held-out' },
        {
          type: 'within',
          entry: 'bo',
          reference: 'best-known',
          tolerance: 0.05,
          on: 'held-out',
          evaluations: 2,
        },
      ],
      TUNER,
    );
    expect(w!.reference_value).toBe(88);
    expect(w!.mean_value).toBe(89.33333333333333);
    expect(w!.text).toContain('held-out');
    expect(v!.a_mean).toBe(89.33333333333333);
    expect(v!.b_mean).toBe(95);
    // Only final configurations are re-scored on held-out workloads.
    expect(early!.verdict).toBe('not judged');
  });
});

describe('verdicts', () => {
  it('reports entries identical on every seed as tied, never as holds', () => {
    const entries = [
      entry('srpt', 'baseline', [74.6, 107.8, 75.2, 85.2, 73]),
      entry('fifo', 'baseline', [125, 266, 121.6, 170.8, 119.5]),
      entry('learned', 'learner', [74.6, 107.8, 75.2, 85.2, 73]),
    ];
    const [noWorse, better] = compare(entries, 'min', [
      { type: 'beats-best-of', entry: 'learned', others: ['fifo', 'srpt'], by: 0, margin: 0.01 },
      { type: 'improves-on', entry: 'learned', reference: 'srpt', by: 0 },
    ]);
    for (const c of [noWorse!, better!]) {
      expect(c.verdict).toBe('tied');
      expect(c.holds).toBe(false);
      expect(c.text).toContain('identical on every seed');
    }
  });

  it('judges no-worse claims on workload seeds by a paired 95% interval and a margin', () => {
    // A 0.05 mean difference on 50 workloads that differ by ±10 from one another.
    const base = Array.from({ length: 50 }, (_, i) => 150 + ((i * 37) % 21) - 10);
    // Noise of mean 0 (in pairs of +x and -x), up to ±14.
    const noise = Array.from(
      { length: 50 },
      (_, i) => (i % 2 === 0 ? 2 : -2) * (1 + ((i >> 1) % 7)),
    );
    const learned = base.map((v, i) => v + noise[i]! - 0.05);
    const entries = [entry('warm', 'baseline', base), entry('learned', 'learner', learned)];
    const [c] = compare(entries, 'min', [
      { type: 'beats-best-of', entry: 'learned', others: ['warm'], by: 0, margin: 0.01 },
    ]);
    expect(c!.pairing).toBe('paired');
    // Better on average, but the interval reaches below -1%: no verdict either way.
    expect(c!.improvement).toBeGreaterThan(0);
    expect(c!.ci_low).toBeLessThan(-0.01);
    expect(c!.ci_high).toBeGreaterThan(0);
    expect(c!.verdict).toBe('inconclusive');
    expect(c!.holds).toBe(false);
    expect(c!.text).toMatch(
      /paired 95% CI of the improvement -\d+\.\d+% to \+\d+\.\d+% \(n = 50\)/,
    );
    expect(c!.text).toContain('margin 1.0%');

    // The same spread around a clear 20% gain holds; around a 20% loss it fails.
    const gain = base.map((v, i) => v * 0.8 + noise[i]!);
    const loss = base.map((v, i) => v * 1.2 + noise[i]!);
    const more = [...entries, entry('gain', 'learner', gain), entry('loss', 'learner', loss)];
    const [g, l, g25] = compare(more, 'min', [
      { type: 'beats-best-of', entry: 'gain', others: ['warm'], by: 0, margin: 0.01 },
      { type: 'beats-best-of', entry: 'loss', others: ['warm'], by: 0, margin: 0.01 },
      { type: 'improves-on', entry: 'gain', reference: 'warm', by: 0.25 },
    ]);
    expect(g!.verdict).toBe('holds');
    expect(l!.verdict).toBe('fails');
    // 20% better is not 25% better: the whole interval is below the target.
    expect(g25!.verdict).toBe('fails');
  });

  it('compares tuners unpaired: seed i of one tuner is not seed i of another', () => {
    // Every seed of a is 0.1 below the same seed of b: "5 wins of 5" when paired by seed, yet
    // the two sets of runs overlap almost entirely.
    const a = entry('bo', 'learner', [1, 2, 3, 4, 5]);
    const b = entry('random', 'learner', [1.1, 2.1, 3.1, 4.1, 5.1]);
    const spec = [{ type: 'versus', a: 'bo', b: 'random' }] as const;
    const [unpaired] = compare([a, b], 'min', spec, { seeds: 'tuner' });
    expect(unpaired!).toMatchObject({ pairing: 'unpaired', verdict: 'inconclusive' });
    expect(unpaired!.p_value).toBeGreaterThan(0.5);
    expect(unpaired!.text).toContain('Mann-Whitney');
    expect(unpaired!.text).toContain('one fixed objective');
    // Where seeds are workloads both ran on, the same numbers are a consistent 0.1 gain.
    const [paired] = compare([a, b], 'min', spec, { seeds: 'workload' });
    expect(paired!).toMatchObject({ pairing: 'paired', verdict: 'holds' });
    // Separated runs: the exact test's smallest p for 5 against 5, 2/252.
    const c = entry('cem', 'learner', [10, 11, 12, 13, 14]);
    const [sep] = compare([a, c], 'min', [{ type: 'versus', a: 'bo', b: 'cem' }], {
      seeds: 'tuner',
    });
    expect(sep!.verdict).toBe('holds');
    expect(sep!.p_value).toBeCloseTo(2 / 252, 12);
  });

  it('does not judge a claim at more evaluations than the runs had', () => {
    const asked = [
      { type: 'within', entry: 'bo', reference: 'best-known', tolerance: 0.05, evaluations: 30 },
      { type: 'versus', a: 'bo', b: 'random', evaluations: 30 },
    ] as const;
    for (const c of compare(tuning(), 'min', asked, TUNER)) {
      expect(c.verdict).toBe('not judged');
      expect(c.holds).toBe(false);
      expect(c.text).toContain('not judged (runs have 3 evaluations, fewer than the 30 asked)');
    }
    // A run that stopped early on its own (a grid out of points) keeps its last best value.
    const [grid] = compare(
      tuning(),
      'min',
      [{ type: 'within', entry: 'bo', reference: 'best-known', tolerance: 0.05, evaluations: 3 }],
      { ...TUNER, budget: 3 },
    );
    expect(grid!.verdict).not.toBe('not judged');
    expect(grid!.mean_value).toBeCloseTo(293 / 3, 12);
  });

  it('decides "within" on the interval of the per-seed gaps', () => {
    const at = (values: number[]) =>
      compare(
        [entry('ref', 'baseline', [100, 100, 100, 100, 100]), entry('bo', 'learner', values)],
        'min',
        [{ type: 'within', entry: 'bo', reference: 'ref', tolerance: 0.05 }],
        { seeds: 'workload' },
      )[0]!;
    expect(at([101, 100.5, 101.5, 100, 101]).verdict).toBe('holds');
    expect(at([112, 113, 111, 114, 112]).verdict).toBe('fails');
    // Exactly at the tolerance on every seed: within (float noise put it just past).
    expect(at([105, 105, 105, 105, 105]).verdict).toBe('holds');
    // Per-seed gaps 3.5% to 11.4% (bo's 30-evaluation gaps on the scheduler study): the mean
    // 6.3% is past 5%, but the interval (1.3% to 11.3%) is not: before, "fails".
    expect(at([103.5, 102.9, 109.9, 103.8, 111.4]).verdict).toBe('inconclusive');
  });
});

describe('statistics', () => {
  it("gives Student's t quantiles", () => {
    expect(tQuantile(0.975, 4)).toBeCloseTo(2.776445, 5);
    expect(tQuantile(0.975, 49)).toBeCloseTo(2.009575, 5);
    expect(tQuantile(0.975, 1)).toBeCloseTo(12.7062, 3);
    // Infinity answered ~0 (the beta argument is NaN there): refused, naming the rule.
    expect(() => tQuantile(0.975, Infinity)).toThrow(/df must be a finite number > 0/);
  });

  it('gives the 95% interval of a mean', () => {
    const ci = meanInterval([1, 2, 3, 4, 5]);
    expect(ci.lo).toBeCloseTo(3 - (2.776445 * Math.sqrt(2.5)) / Math.sqrt(5), 5);
    expect(meanInterval([7])).toMatchObject({ lo: -Infinity, hi: Infinity });
    expect(meanInterval([2, 2, 2])).toMatchObject({ lo: 2, hi: 2 });
  });

  it('gives exact Mann-Whitney p-values, ties included', () => {
    expect(mannWhitney([6, 7, 8, 9, 10], [1, 2, 3, 4, 5])).toMatchObject({ u: 25, exact: true });
    expect(mannWhitney([1, 3, 5, 7, 9], [2, 4, 6, 8, 10]).p).toBeCloseTo(0.6905, 4);
    expect(mannWhitney([1, 1, 1], [1, 1, 1]).p).toBe(1);
    // Large samples: the normal approximation.
    const big = mannWhitney(
      Array.from({ length: 30 }, (_, i) => i + 10),
      Array.from({ length: 30 }, (_, i) => i),
    );
    expect(big.exact).toBe(false);
    expect(big.p).toBeLessThan(0.001);
  });
});
