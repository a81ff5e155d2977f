// The simulation gate: candidate against incumbent in the calibrated simulator over several
// seeds and workload slices, decided statistically with three outcomes, as canary analysis
// does (Kayenta, Argo Rollouts): successful, failed, or inconclusive. Each run is paired (same
// seed, same slice) so workload noise cancels in the difference. The unit of the statistics is
// the slice, not the run: runs of one slice on other seeds share its data (a deterministic
// simulator gives the very same numbers; a seeded window of the slice overlaps the others), so
// counting them as independent samples would narrow the interval without new information.
// Each slice contributes the mean of its runs' improvements, and the interval has slices - 1
// degrees of freedom.
import { ci95, mean } from './stats.ts';

export type GateOutcome = 'successful' | 'failed' | 'inconclusive';

export interface GateOptions {
  direction: 'min' | 'max';
  /** Least relative improvement worth a change (0.01 = 1%). */
  minEffect: number;
  /** Fewest slices judged before any verdict (at least 3, and no more than the slices). */
  minSamples: number;
  /** Most paired runs; still undecided then = inconclusive. */
  maxSamples: number;
}

export const DEFAULT_GATE: GateOptions = {
  direction: 'min',
  minEffect: 0.01,
  minSamples: 4,
  maxSamples: 24,
};

export interface Pair {
  incumbent: number;
  candidate: number;
  seed: number;
  slice: number;
}

export interface GateReport {
  outcome: GateOutcome;
  /** Slices judged (the units of the interval); `pairs` holds every run. */
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

/** Each slice's mean improvement over its runs, in the order the slices first came. */
export function sliceImprovements(pairs: readonly Pair[], direction: 'min' | 'max'): number[] {
  const bySlice = new Map<number, number[]>();
  for (const p of pairs) {
    const d = improvementOf(p, direction);
    const runs = bySlice.get(p.slice);
    if (runs) runs.push(d);
    else bySlice.set(p.slice, [d]);
  }
  return [...bySlice.values()].map((runs) => mean(runs));
}

/** The verdict on the pairs so far, judged on their slices. */
export function judge(pairs: readonly Pair[], opts: GateOptions): GateReport {
  const d = sliceImprovements(pairs, opts.direction);
  const base = {
    samples: d.length,
    incumbentMean: pairs.length ? mean(pairs.map((p) => p.incumbent)) : Number.NaN,
    candidateMean: pairs.length ? mean(pairs.map((p) => p.candidate)) : Number.NaN,
    improvement: d.length ? mean(d) : Number.NaN,
    ci: (d.length ? ci95(d) : [Number.NaN, Number.NaN]) as [number, number],
    pairs: [...pairs],
  };
  const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
  if (d.length < opts.minSamples) {
    return {
      ...base,
      outcome: 'inconclusive',
      reasons: [`${d.length} of at least ${opts.minSamples} slices`],
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
      `95% CI [${pct(lo)}, ${pct(hi)}] straddles ${pct(opts.minEffect)} over ${d.length} slices (${pairs.length} runs)`,
    ],
  };
}

/**
 * Runs paired evaluations, round by round over the slices (each round on the next seed), until
 * the verdict is no longer inconclusive or maxSamples runs are spent. A round that repeats the
 * last one exactly (a simulator that ignores the seed) ends it: more rounds would add nothing.
 * `evaluate` runs one configuration on one seed and slice.
 */
export async function runGate<C>(
  evaluate: (config: C, seed: number, slice: number) => Promise<number>,
  incumbent: C,
  candidate: C,
  opts: GateOptions & { slices: number; seed: number },
): Promise<GateReport> {
  if (!Number.isInteger(opts.minSamples) || opts.minSamples < 3)
    throw new RangeError(`gate: minSamples must be an integer >= 3, got ${opts.minSamples}`);
  if (!Number.isInteger(opts.slices) || opts.slices < opts.minSamples)
    throw new RangeError(
      `gate: slices (${opts.slices}) must be an integer >= minSamples (${opts.minSamples}): the gate judges slices`,
    );
  const pairs: Pair[] = [];
  let report = judge(pairs, opts);
  let repeated = true;
  for (let i = 0; i < opts.maxSamples; i++) {
    const slice = i % opts.slices;
    const seed = opts.seed + Math.floor(i / opts.slices);
    const [inc, cand] = [
      await evaluate(incumbent, seed, slice),
      await evaluate(candidate, seed, slice),
    ];
    const before = pairs[i - opts.slices];
    if (!before || before.incumbent !== inc || before.candidate !== cand) repeated = false;
    pairs.push({ incumbent: inc, candidate: cand, seed, slice });
    report = judge(pairs, opts);
    if (report.outcome !== 'inconclusive') return report;
    if (slice === opts.slices - 1) {
      if (i >= opts.slices && repeated) {
        report.reasons.push('the simulator gave every slice the same result on a new seed');
        return report;
      }
      repeated = true;
    }
  }
  return report;
}
