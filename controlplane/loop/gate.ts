// The simulation gate: candidate against incumbent in the calibrated simulator over several
// seeds and workload slices, decided statistically with three outcomes, as canary analysis
// does (Kayenta, Argo Rollouts): successful, failed, or inconclusive. Each sample is a paired
// run (same seed, same slice) so workload noise cancels in the difference.
import { ci95, mean } from './stats.ts';

export type GateOutcome = 'successful' | 'failed' | 'inconclusive';

export interface GateOptions {
  direction: 'min' | 'max';
  /** Least relative improvement worth a change (0.01 = 1%). */
  minEffect: number;
  /** Fewest paired samples before any verdict. */
  minSamples: number;
  /** Most paired samples; still undecided then = inconclusive. */
  maxSamples: number;
}

export const DEFAULT_GATE: GateOptions = {
  direction: 'min',
  minEffect: 0.01,
  minSamples: 4,
  maxSamples: 16,
};

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
  /** Mean relative improvement of the candidate (positive = better) and its 95% interval. */
  improvement: number;
  ci: [number, number];
  reasons: string[];
  pairs: Pair[];
}

/** Relative improvement of one pair: positive when the candidate is better. */
export function improvementOf(p: Pair, direction: 'min' | 'max'): number {
  const scale = Math.max(Math.abs(p.incumbent), 1e-12);
  return (direction === 'min' ? p.incumbent - p.candidate : p.candidate - p.incumbent) / scale;
}

/** The verdict on the pairs so far. */
export function judge(pairs: readonly Pair[], opts: GateOptions): GateReport {
  const d = pairs.map((p) => improvementOf(p, opts.direction));
  const base = {
    samples: pairs.length,
    incumbentMean: pairs.length ? mean(pairs.map((p) => p.incumbent)) : Number.NaN,
    candidateMean: pairs.length ? mean(pairs.map((p) => p.candidate)) : Number.NaN,
    improvement: pairs.length ? mean(d) : Number.NaN,
    ci: (pairs.length ? ci95(d) : [Number.NaN, Number.NaN]) as [number, number],
    pairs: [...pairs],
  };
  const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
  if (pairs.length < opts.minSamples) {
    return {
      ...base,
      outcome: 'inconclusive',
      reasons: [`${pairs.length} of at least ${opts.minSamples} samples`],
    };
  }
  const [lo, hi] = base.ci;
  if (lo > opts.minEffect) {
    return {
      ...base,
      outcome: 'successful',
      reasons: [
        `improvement ${pct(base.improvement)}, 95% CI [${pct(lo)}, ${pct(hi)}] above ${pct(opts.minEffect)}`,
      ],
    };
  }
  if (hi < 0) {
    return {
      ...base,
      outcome: 'failed',
      reasons: [
        `regression: improvement ${pct(base.improvement)}, 95% CI [${pct(lo)}, ${pct(hi)}] below 0`,
      ],
    };
  }
  if (hi < opts.minEffect) {
    return {
      ...base,
      outcome: 'failed',
      reasons: [
        `gain too small: 95% CI [${pct(lo)}, ${pct(hi)}] below the ${pct(opts.minEffect)} worth a change`,
      ],
    };
  }
  return {
    ...base,
    outcome: 'inconclusive',
    reasons: [
      `95% CI [${pct(lo)}, ${pct(hi)}] straddles ${pct(opts.minEffect)} after ${pairs.length} samples`,
    ],
  };
}

/**
 * Runs paired evaluations, seeds by slices, until the verdict is no longer inconclusive or
 * maxSamples is reached. `evaluate` runs one configuration on one seed and slice.
 */
export async function runGate<C>(
  evaluate: (config: C, seed: number, slice: number) => Promise<number>,
  incumbent: C,
  candidate: C,
  opts: GateOptions & { slices: number; seed: number },
): Promise<GateReport> {
  const pairs: Pair[] = [];
  let report = judge(pairs, opts);
  for (let i = 0; i < opts.maxSamples; i++) {
    const slice = i % opts.slices;
    const seed = opts.seed + Math.floor(i / opts.slices);
    const [inc, cand] = [
      await evaluate(incumbent, seed, slice),
      await evaluate(candidate, seed, slice),
    ];
    pairs.push({ incumbent: inc, candidate: cand, seed, slice });
    report = judge(pairs, opts);
    if (report.outcome !== 'inconclusive') return report;
  }
  return report;
}
