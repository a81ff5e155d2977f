// Derived comparisons on hand-made entries: the gap to the oracle, and each claim type at a
// given number of evaluations, in both directions. The verdict rules themselves (best known
// value, oracle beaten, ties, intervals, rank tests, not judged) are in
// experiments-claims.test.ts.
import { describe, expect, it } from 'vitest';
import { addOracleGaps, compare } from '../experiments/derived.ts';
import { entry } from './helpers/experiment-entries.ts';

describe('derived comparisons', () => {
  const entries = [
    entry('grid-optimum', 'oracle', [100, 100]),
    // BO: 120 and 104 after 2 evaluations, 101 and 99 at the end.
    entry('bo', 'learner', [101, 99], {
      trajectories: [
        [130, 120, 101],
        [110, 104, 99],
      ],
    }),
    entry('random', 'learner', [105, 99], {
      trajectories: [
        [125, 118, 105],
        [140, 104, 99],
      ],
    }),
    entry('fifo', 'baseline', [150, 150]),
    entry('sjf', 'baseline', [125, 135]),
  ];
  addOracleGaps(entries, 'min', 'grid-optimum');

  it('gives every entry its gap to the oracle, relative and absolute', () => {
    const fifo = entries.find((e) => e.name === 'fifo')!;
    expect(fifo.gap_to_oracle).toBeCloseTo(0.5, 12);
    expect(fifo.gap_to_oracle_abs).toBeCloseTo(50, 12);
    expect(entries[0]!.gap_to_oracle).toBeUndefined();
  });

  it('judges "within" at the asked number of evaluations and counts seeds', () => {
    const [at2, atEnd] = compare(entries, 'min', [
      { type: 'within', entry: 'bo', reference: 'grid-optimum', tolerance: 0.05, evaluations: 2 },
      { type: 'within', entry: 'bo', reference: 'grid-optimum', tolerance: 0.05 },
    ]);
    expect(at2!.mean_value).toBe(112);
    expect(at2!.holds).toBe(false);
    // Two seeds (gaps 20% and 4%, then 1% and -1%) cannot decide it either way: the interval
    // of the per-seed gaps decides "within" (experiments-claims.test.ts).
    expect(at2!.verdict).toBe('inconclusive');
    expect(at2!.seeds_within).toBe(1);
    expect(atEnd!.verdict).toBe('inconclusive');
    expect(atEnd!.seeds_within).toBe(2);
  });

  it('judges "versus" at the asked number of evaluations', () => {
    const [v] = compare(entries, 'min', [{ type: 'versus', a: 'bo', b: 'random' }]);
    expect(v!.improvement).toBeCloseTo((102 - 100) / 102, 12);
    expect(v!.a_mean).toBe(100);
    // Two seeds cannot decide it.
    expect(v!.verdict).toBe('inconclusive');
    const [early] = compare(entries, 'min', [
      { type: 'versus', a: 'bo', b: 'random', evaluations: 1 },
    ]);
    expect(early!).toMatchObject({ a_mean: 120, b_mean: 132.5, evaluations: 1 });
  });

  it('checks "beats-best-of" with and without a margin, and "improves-on"', () => {
    const [strict, margin, noWorse, onFifo] = compare(entries, 'min', [
      { type: 'beats-best-of', entry: 'bo', others: ['fifo', 'sjf'] },
      { type: 'beats-best-of', entry: 'bo', others: ['fifo', 'sjf'], by: 0.25 },
      { type: 'beats-best-of', entry: 'sjf', others: ['sjf', 'fifo'], by: 0 },
      { type: 'improves-on', entry: 'bo', reference: 'fifo', by: 0.2 },
    ]);
    expect(strict!.best_other).toBe('sjf');
    // Paired by seed: 24 and 36 better, a 95% interval of 30 ± 76 (two seeds): undecided.
    expect(strict!.verdict).toBe('inconclusive');
    // 100 vs 130 is 23% better: short of a 25% margin, and undecided too.
    expect(margin!.improvement).toBeCloseTo(30 / 130, 12);
    expect(margin!.holds).toBe(false);
    // An entry against itself is a tie, not "no worse".
    expect(noWorse!.verdict).toBe('tied');
    expect(noWorse!.holds).toBe(false);
    expect(onFifo!.improvement).toBeCloseTo(50 / 150, 12);
    // 49 and 51 better than FIFO: the interval (+24.9% to +41.8%) is above 20%.
    expect(onFifo!.verdict).toBe('holds');
    expect(onFifo!.holds).toBe(true);
  });

  it('reads "better" the other way for a metric to maximise', () => {
    const hits = [entry('belady', 'oracle', [0.5]), entry('lru', 'baseline', [0.4])];
    addOracleGaps(hits, 'max', 'belady');
    expect(hits[1]!.gap_to_oracle).toBeCloseTo(0.2, 12);
    const [c] = compare(hits, 'max', [
      { type: 'improves-on', entry: 'belady', reference: 'lru', by: 0.2 },
    ]);
    expect(c!.improvement).toBeCloseTo(0.25, 12);
    // One seed: no interval, so no verdict either way.
    expect(c!.verdict).toBe('inconclusive');
    const two = [entry('belady', 'oracle', [0.5, 0.6]), entry('lru', 'baseline', [0.4, 0.5])];
    const [d] = compare(two, 'max', [
      { type: 'improves-on', entry: 'belady', reference: 'lru', by: 0.2 },
    ]);
    // 0.1 better on both seeds: 22.2% of lru's mean, with no spread.
    expect(d!.verdict).toBe('holds');
  });

  it('names a missing entry', () => {
    expect(() => compare(entries, 'min', [{ type: 'versus', a: 'bo', b: 'cem' }])).toThrow(
      /lacks.*cem|cem.*lacks|entry cem/,
    );
  });
});
