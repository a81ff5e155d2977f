// What a run produces, as plain JSON: per study, per entry the mean, the spread and every
// seed's value (and for tuners the best-so-far trajectory of every seed), then the derived
// comparisons. Nothing here depends on the clock or the machine, so equal seeds give equal
// results; result.json adds the date and machine next to it (experiments/report.ts).
import type { KnobValues } from '../knobs/index.ts';
import type { Direction, EntryKind, TraceSource } from './spec.ts';

export interface SeedValue {
  seed: number;
  value: number;
}

export interface Summary {
  mean: number;
  /** Sample standard deviation over seeds (n - 1); 0 for one seed. */
  std: number;
  seeds: SeedValue[];
}

export interface EntryResult extends Summary {
  name: string;
  kind: EntryKind;
  /** Relative gap to the study's oracle, positive when worse: (mean - oracle) / |oracle| for min. */
  gap_to_oracle?: number;
  /** The same gap in the metric's own units (positive when worse). */
  gap_to_oracle_abs?: number;
  /** Tuners: best-so-far value after each evaluation, one list per seed. */
  trajectories?: number[][];
  /** The configuration each seed ended with (tuners) or the one the entry runs (baselines, oracle). */
  configs?: KnobValues[];
  /** Scores of those configurations on held-out workload seeds (mean over them, per seed). */
  test?: Summary;
  /**
   * Evaluations the entry spent: the oracle's grid size; a tuner's evaluations per run (the
   * most of any seed), which is less than the budget when the tuner ran out of points.
   */
  evaluations?: number;
  /** Means over seeds of the other metrics the runs reported. */
  metrics?: Record<string, number>;
}

/**
 * A claim's verdict (experiments/derived.ts): `holds` and `fails` when the evidence decides it,
 * `inconclusive` when the 95% interval or test does not, `tied` when the two entries gave
 * identical values on every seed, `not judged` when the runs cannot answer it (shorter than
 * the claim asks, or without the scores it needs).
 */
export type Verdict = 'holds' | 'fails' | 'inconclusive' | 'tied' | 'not judged';

export interface ComparisonResult {
  type: 'within' | 'versus' | 'beats-best-of' | 'improves-on';
  /** One sentence with the numbers, as it appears in result.md. */
  text: string;
  verdict: Verdict;
  /** verdict === 'holds'. */
  holds: boolean;
  [key: string]: unknown;
}

export interface StudyResult {
  name: string;
  title: string;
  type: 'tuning' | 'comparison';
  metric: string;
  direction: Direction;
  unit?: string;
  note?: string;
  results: EntryResult[];
  /** The best non-oracle entry by mean (an oracle is a reference, not a contender). */
  best: { name: string; kind: EntryKind; mean: number } | null;
  /** Name of the oracle entry, if the study has one. */
  oracle?: string;
  /**
   * Entries that beat the oracle on some seed (absent when none did): the oracle (a coarse
   * grid) is then a reference, not an optimum; claims use the best known value instead.
   */
  oracle_beaten_by?: string[];
  comparisons: ComparisonResult[];
  /** Tuning studies: evaluations per tuner run, the searched knobs and the workload seeds. */
  budget?: number;
  /** The scale the tuners saw the metric on ('log': they optimised log(metric)). */
  tuner_scale?: 'linear' | 'log';
  space?: { name: string; domain: string }[];
  train_seeds?: number[];
  test_seeds?: number[];
  /** Comparison studies: the workload seeds, when not the experiment's (the study's own). */
  seeds?: number[];
}

export interface ExperimentResult {
  experiment: string;
  title: string;
  /** The trace as given (path and format), or the generator's description. */
  workload: { trace?: TraceSource; description: string };
  quick: boolean;
  seeds: number[];
  /** A tuner's evaluations per run; absent when no tuning study ran (it changed nothing). */
  budget?: number;
  /** Offered load the jobs trace was replayed at; absent when the workload is not a jobs trace. */
  load?: number;
  /** The headline study's metric, direction, results and best (the CLI contract). */
  metric: string;
  direction: Direction;
  results: EntryResult[];
  best: StudyResult['best'];
  studies: StudyResult[];
}

export function mean(xs: readonly number[]): number {
  return xs.length === 0 ? Number.NaN : xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Sample standard deviation (n - 1 in the denominator); 0 for fewer than two values. */
export function std(xs: readonly number[]): number {
  // Equal values have no spread; computing it would leave rounding noise (1e-16).
  if (xs.length < 2 || xs.every((x) => x === xs[0])) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
}

export function summarise(seeds: readonly number[], values: readonly number[]): Summary {
  return {
    mean: mean(values),
    std: std(values),
    seeds: seeds.map((seed, i) => ({ seed, value: values[i] as number })),
  };
}

/** Whether a is better than b in the direction. */
export function better(direction: Direction, a: number, b: number): boolean {
  return direction === 'min' ? a < b : a > b;
}

/** How much worse `value` is than `reference` in the metric's units (positive = worse). */
export function absoluteGap(direction: Direction, value: number, reference: number): number {
  return direction === 'min' ? value - reference : reference - value;
}

/** The gap relative to |reference|; NaN when the reference is 0 (no relative scale). */
export function relativeGap(direction: Direction, value: number, reference: number): number {
  return reference === 0
    ? Number.NaN
    : absoluteGap(direction, value, reference) / Math.abs(reference);
}

/** How much better a is than b, relative to |b|: (b - a) / |b| for min (NaN when b is 0). */
export function improvementOver(direction: Direction, a: number, b: number): number {
  return b === 0 ? Number.NaN : absoluteGap(direction, b, a) / Math.abs(b);
}

/** The best entry by mean among those that are not oracles (an oracle is a reference). */
export function bestContender(
  entries: readonly EntryResult[],
  direction: Direction,
): { name: string; kind: EntryKind; mean: number } | null {
  let top: EntryResult | undefined;
  for (const e of entries) {
    if (e.kind !== 'oracle' && (!top || better(direction, e.mean, top.mean))) top = e;
  }
  return top ? { name: top.name, kind: top.kind, mean: top.mean } : null;
}
