// Claims against a reference whose mean is 0 (a metric such as lost jobs, where the best is
// none): no relative interval exists, so a paired comparison is decided on the absolute one
// (dividing by 0 gave infinities and NaN, and a verdict by accident), and "within x% of 0" is
// not judged. The statistics refuse values that are not finite numbers: a NaN dropped out of
// every comparison and read as an ordinary result.
import { describe, expect, it } from 'vitest';
import { compare } from '../experiments/derived.ts';
import { mannWhitney, meanInterval } from '../experiments/stats.ts';
import { entry } from './helpers/experiment-entries.ts';

describe('claims against a reference mean of 0', () => {
  // Lost jobs per workload draw (lower is better): the baseline loses none.
  const entries = [
    entry('none-lost', 'baseline', [0, 0, 0, 0, 0]),
    entry('lossy', 'learner', [3, 4, 5, 4, 3]),
    entry('mixed', 'learner', [1, -1, 2, -2, 0]),
  ];

  it('decides a paired comparison on the absolute interval', () => {
    const [worse, undecided] = compare(entries, 'min', [
      { type: 'versus', a: 'lossy', b: 'none-lost' },
      { type: 'versus', a: 'mixed', b: 'none-lost' },
    ]);
    expect(worse!.verdict).toBe('fails');
    expect(worse!['ci_high_abs']).toBeLessThan(0);
    expect(worse!.text).toMatch(/absolute: the reference mean is 0/);
    expect(undecided!.verdict).toBe('inconclusive');
  });

  it('does not judge "within x%" of a reference of 0', () => {
    const [w] = compare(entries, 'min', [
      { type: 'within', entry: 'lossy', reference: 'none-lost', tolerance: 0.05 },
    ]);
    expect(w!.verdict).toBe('not judged');
    expect(w!.text).toMatch(/no relative gap to a 0/);
  });
});

describe('statistics on values that are not finite', () => {
  it('refuse NaN and infinities, naming the argument and position', () => {
    expect(() => mannWhitney([Number.NaN, 1, 2], [1, 2, 3])).toThrow(/x\[0\] must be a finite/);
    expect(() => mannWhitney([1, 2, 3], [1, Infinity])).toThrow(/y\[1\] must be a finite/);
    expect(() => meanInterval([1, Number.NaN, 3])).toThrow(/xs\[1\] must be a finite/);
  });
});
