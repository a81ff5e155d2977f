// The simulation gate: candidate against incumbent in the calibrated simulator over several
// seeds and workload slices, decided statistically with three outcomes, as canary analysis
// does (Kayenta, Argo Rollouts): successful, failed, or inconclusive. Each sample is a paired
// run (same seed, same slice) so workload noise cancels in the difference.
//
// The effect is the ratio of means: the mean paired difference over the incumbent's mean (a
// per-pair ratio lets one pair with a near-zero incumbent dominate), with a delta-method
// interval, and the mean difference must also clear an absolute floor.
//
// Group-sequential design: the gate looks at the data only at minSamples, the midpoint and
// maxSamples (duplicates merged), and each look uses Pocock's constant adjusted level, so the
// chance of any look's interval missing the truth stays near 5% two-sided overall (judging
// after every sample at 95% made a false 'successful' about four times likelier).
import { ValidationError } from '../store/errors.ts';
import { mean, sampleStd, tQuantile } from './stats.ts';

export type GateOutcome = 'successful' | 'failed' | 'inconclusive';

export interface GateOptions {
  direction: 'min' | 'max';
  /** Least relative improvement worth a change (0.01 = 1%): of the mean, over the incumbent's. */
  minEffect: number;
  /**
   * Least absolute improvement of the mean worth a change, in the objective's units (a
   * near-zero incumbent makes any relative gain look large). Default 1e-6 (MIN_ABS_EFFECT).
   */
  minAbsEffect?: number;
  /** Fewest paired samples before any verdict: the first look. */
  minSamples: number;
  /** Most paired samples: the last look; still undecided then = inconclusive. */
  maxSamples: number;
}

export const DEFAULT_GATE: GateOptions = {
  direction: 'min',
  minEffect: 0.01,
  minSamples: 4,
  maxSamples: 16,
};

/**
 * The default absolute floor, the same either way (it applies to the improvement in the
 * direction's sense, positive = better): a millionth of the objective's unit is numerical
 * noise for every target's cost (ms, imbalance, cost per request).
 */
export const MIN_ABS_EFFECT = 1e-6;

/** The overall two-sided error of the sequential design. */
export const GATE_ALPHA = 0.05;

// Pocock's per-look two-sided level for K equally spaced looks at overall 0.05 (constants
// 1.960, 2.178, 2.289: Pocock 1977).
const POCOCK_ALPHA = [0.05, 0.0294, 0.0221] as const;

/** Refuses gate options the design cannot run on, naming the field and the rule. */
export function validateGate(g: GateOptions & { slices?: number }): void {
  const bad = (field: string, rule: string, msg: string, got: unknown): never => {
    throw new ValidationError(`gate: ${field} ${msg}, got ${String(got)}`, `gate.${field}`, rule);
  };
  if (g.direction !== 'min' && g.direction !== 'max')
    bad('direction', 'enum', "must be 'min' or 'max'", g.direction);
  if (!Number.isInteger(g.minSamples) || g.minSamples < 2)
    bad(
      'minSamples',
      'min',
      'must be an integer >= 2 (an interval needs two samples)',
      g.minSamples,
    );
  if (!Number.isInteger(g.maxSamples) || g.maxSamples < g.minSamples)
    bad('maxSamples', 'min', `must be an integer >= minSamples (${g.minSamples})`, g.maxSamples);
  if (!(Number.isFinite(g.minEffect) && g.minEffect >= 0))
    bad('minEffect', 'min', 'must be a finite number >= 0', g.minEffect);
  if (g.minAbsEffect !== undefined && !(Number.isFinite(g.minAbsEffect) && g.minAbsEffect >= 0))
    bad('minAbsEffect', 'min', 'must be a finite number >= 0', g.minAbsEffect);
  if (g.slices !== undefined && (!Number.isInteger(g.slices) || g.slices < 1))
    bad('slices', 'min', 'must be an integer >= 1', g.slices);
}

/** The sample counts at which the gate judges: minSamples, the midpoint, maxSamples. */
export function gateLooks(opts: Pick<GateOptions, 'minSamples' | 'maxSamples'>): number[] {
  const mid = Math.round((opts.minSamples + opts.maxSamples) / 2);
  return [...new Set([opts.minSamples, mid, opts.maxSamples])].sort((a, b) => a - b);
}

/** The two-sided confidence level of each look. */
export function lookLevel(opts: Pick<GateOptions, 'minSamples' | 'maxSamples'>): number {
  return 1 - (POCOCK_ALPHA[gateLooks(opts).length - 1] as number);
}

export interface Pair {
  incumbent: number;
  candidate: number;
  seed: number;
  slice: number;
}

export interface GateReport {
  outcome: GateOutcome;
  samples: number;
  incumbentMean: number;
  candidateMean: number;
  /** Relative improvement of the candidate's mean (positive = better) and its interval. */
  improvement: number;
  ci: [number, number];
  /** Mean absolute improvement (positive = better) and its interval (the relative one scaled). */
  absImprovement: number;
  absCi: [number, number];
  /** The intervals' two-sided confidence level (the look's adjusted level). */
  level: number;
  reasons: string[];
  pairs: Pair[];
}

/** The improvement of one pair, in the objective's units: positive when the candidate is better. */
export function improvementOf(p: Pair, direction: 'min' | 'max'): number {
  return direction === 'min' ? p.incumbent - p.candidate : p.candidate - p.incumbent;
}

/**
 * The verdict on the pairs so far, at two-sided confidence `level` (by default the adjusted
 * level of one of the design's looks).
 */
export function judge(
  pairs: readonly Pair[],
  opts: GateOptions,
  level = lookLevel(opts),
): GateReport {
  validateGate(opts);
  const n = pairs.length;
  const d = pairs.map((p) => improvementOf(p, opts.direction));
  const inc = pairs.map((p) => p.incumbent);
  const incMean = n ? mean(inc) : Number.NaN;
  const scale = Math.max(Math.abs(incMean), 1e-12);
  const rel = n ? mean(d) / scale : Number.NaN;
  // Delta method for mean(d) / |mean(inc)|: each pair's influence is
  // (d - (mean(d) / mean(inc)) inc) / |mean(inc)| (the ratio with the signed mean: with a
  // negative incumbent mean, rel's sign is not the ratio's).
  const ratio = n ? mean(d) / (Math.sign(incMean) * scale || scale) : Number.NaN;
  const half =
    n >= 2
      ? (tQuantile(1 - (1 - level) / 2, n - 1) *
          sampleStd(pairs.map((_, i) => ((d[i] as number) - ratio * (inc[i] as number)) / scale))) /
        Math.sqrt(n)
      : 0;
  const base = {
    samples: n,
    incumbentMean: incMean,
    candidateMean: n ? mean(pairs.map((p) => p.candidate)) : Number.NaN,
    improvement: rel,
    ci: (n ? [rel - half, rel + half] : [Number.NaN, Number.NaN]) as [number, number],
    absImprovement: n ? mean(d) : Number.NaN,
    // The same interval in the objective's units, so both conditions judge one interval.
    absCi: (n ? [(rel - half) * scale, (rel + half) * scale] : [Number.NaN, Number.NaN]) as [
      number,
      number,
    ],
    level,
    pairs: [...pairs],
  };
  const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
  const lvl = `${(level * 100).toFixed(1)}%`;
  const floor = opts.minAbsEffect ?? MIN_ABS_EFFECT;
  if (n < opts.minSamples) {
    return {
      ...base,
      outcome: 'inconclusive',
      reasons: [`${n} of at least ${opts.minSamples} samples`],
    };
  }
  const [lo, hi] = base.ci;
  const [absLo, absHi] = base.absCi;
  if (lo > opts.minEffect && absLo > floor) {
    return {
      ...base,
      outcome: 'successful',
      reasons: [
        `improvement ${pct(rel)}, ${lvl} CI [${pct(lo)}, ${pct(hi)}] above ${pct(opts.minEffect)}`,
      ],
    };
  }
  if (hi < 0) {
    return {
      ...base,
      outcome: 'failed',
      reasons: [`regression: improvement ${pct(rel)}, ${lvl} CI [${pct(lo)}, ${pct(hi)}] below 0`],
    };
  }
  if (hi < opts.minEffect) {
    return {
      ...base,
      outcome: 'failed',
      reasons: [
        `gain too small: ${lvl} CI [${pct(lo)}, ${pct(hi)}] below the ${pct(opts.minEffect)} worth a change`,
      ],
    };
  }
  if (absHi < floor) {
    return {
      ...base,
      outcome: 'failed',
      reasons: [
        `gain too small: absolute ${lvl} CI [${absLo.toPrecision(3)}, ${absHi.toPrecision(3)}] below the floor ${floor}`,
      ],
    };
  }
  return {
    ...base,
    outcome: 'inconclusive',
    reasons: [
      `${lvl} CI [${pct(lo)}, ${pct(hi)}] straddles ${pct(opts.minEffect)} after ${n} samples`,
    ],
  };
}

/**
 * Runs paired evaluations, seeds by slices, judging at each of the design's looks (gateLooks)
 * until the verdict is no longer inconclusive or the last look is passed. `evaluate` runs one
 * configuration on one seed and slice.
 */
export async function runGate<C>(
  evaluate: (config: C, seed: number, slice: number) => Promise<number>,
  incumbent: C,
  candidate: C,
  opts: GateOptions & { slices: number; seed: number },
): Promise<GateReport> {
  validateGate(opts);
  const looks = new Set(gateLooks(opts));
  const level = lookLevel(opts);
  const pairs: Pair[] = [];
  let report = judge(pairs, opts, level);
  for (let i = 0; i < opts.maxSamples; i++) {
    const slice = i % opts.slices;
    const seed = opts.seed + Math.floor(i / opts.slices);
    const [inc, cand] = [
      await evaluate(incumbent, seed, slice),
      await evaluate(candidate, seed, slice),
    ];
    pairs.push({ incumbent: inc, candidate: cand, seed, slice });
    if (!looks.has(pairs.length)) continue;
    report = judge(pairs, opts, level);
    if (report.outcome !== 'inconclusive') return report;
  }
  return report;
}
