// The bar chart's error bars on a log axis: one standard deviation as the subtitle says, a
// lower end that would fall at or below 0 cut at the axis (and the subtitle saying so), and
// the tuning objective's repeated-evaluation mean failing loudly on a metric some seed lacks.
import { describe, expect, it } from 'vitest';
import type { KnobObjective } from '../envs/core/index.ts';
import { barsSpec } from '../experiments/plots.ts';
import { summarise, type StudyResult } from '../experiments/results.ts';
import { fixedObjective } from '../experiments/tuning.ts';

function study(entries: { name: string; values: number[] }[]): StudyResult {
  return {
    name: 's',
    title: 'S',
    type: 'comparison',
    metric: 'm',
    direction: 'min',
    results: entries.map((e) => ({
      name: e.name,
      kind: 'baseline',
      ...summarise(
        e.values.map((_, i) => i + 1),
        e.values,
      ),
    })),
    best: null,
    comparisons: [],
  };
}

type Row = { name: string; mean: number; lo: number; hi: number };
const rowsOf = (spec: unknown): Row[] => (spec as { data: { values: Row[] } }).data.values;
const subtitleOf = (spec: unknown): string =>
  (spec as { title: { subtitle: string } }).title.subtitle;

describe('bar chart error bars', () => {
  it('draws mean - std on a log axis whenever it is above 0', () => {
    // Means 1 and 100 (a log chart); b's std (0.7 of its mean) once got clamped at mean / 2.
    const spec = barsSpec(
      study([
        { name: 'a', values: [1, 1] },
        { name: 'b', values: [50, 150] },
      ]),
    );
    const b = rowsOf(spec).find((r) => r.name === 'b')!;
    expect(b.lo).toBeCloseTo(100 - 50 * Math.SQRT2, 9);
    expect(subtitleOf(spec)).toBe('mean over seeds, error bar = one standard deviation');
  });

  it('cuts a lower end at or below 0 at the axis, and says so', () => {
    const spec = barsSpec(
      study([
        { name: 'a', values: [1, 1] },
        { name: 'b', values: [10, 290] },
      ]),
    );
    const b = rowsOf(spec).find((r) => r.name === 'b')!;
    expect(b.lo).toBeGreaterThan(0);
    expect(b.lo).toBeLessThanOrEqual(0.5);
    expect(subtitleOf(spec)).toContain('cut at the axis');
  });
});

describe('the training objective', () => {
  it('fails loudly on a metric some workload seeds lack, instead of averaging a 0', async () => {
    const inner: KnobObjective = {
      id: 'fake',
      knobs: [],
      objective: { metric: 'cost', direction: 'min' },
      evaluate: (_values: unknown, seed: number) =>
        seed === 1 ? { cost: 1, extra: 5 } : { cost: 3 },
    } as unknown as KnobObjective;
    const f = fixedObjective(inner, [1, 2]);
    await expect(f.evaluate({})).rejects.toThrow(/extra/);
    const ok = fixedObjective(inner, [2, 2]);
    await expect(ok.evaluate({})).resolves.toEqual({ cost: 3 });
  });
});
