// The tuning loop: propose, evaluate on a KnobObjective, observe, for a bounded budget. Each
// evaluation runs with its own workload seed derived from the loop's seed, so a repeated
// configuration measures the objective's noise instead of replaying the same run.
import type { KnobValues } from '../../knobs/index.ts';
import type { KnobObjective, Metrics } from '../../envs/core/index.ts';
import { checkField, checkSeed } from './config.ts';
import { LearnerConfigError, LearnerInputError } from './errors.ts';
import { deriveSeed, STREAM } from './seeding.ts';
import type { ProposalReason, Tuner, TunerBest } from './types.ts';

export interface Evaluation {
  /** 0-based position in the run. */
  index: number;
  values: KnobValues;
  reason: ProposalReason;
  seed: number;
  /** The objective metric's value. */
  value: number;
  metrics: Metrics;
  /** The best objective value observed up to and including this evaluation. */
  bestSoFar: number;
}

export interface TuneResult {
  evaluations: Evaluation[];
  /** `bestSoFar` of every evaluation: the trajectory to plot. */
  trajectory: number[];
  /** The tuner's best at the end (mean over repeats of one configuration). */
  best: TunerBest | undefined;
  /** True when the tuner ran out of proposals before the budget (a small grid). */
  exhausted: boolean;
}

export interface TuneOptions {
  /** Called after every evaluation (progress bars, logs to stderr). */
  onProgress?: (e: Evaluation, budget: number) => void;
}

/** The workload seed of evaluation `index` of a tuning run seeded with `seed`. */
export function evaluationSeed(seed: number, index: number): number {
  return deriveSeed(seed, STREAM.evaluation, index);
}

function objectiveValue(objective: KnobObjective, metrics: Metrics): number {
  const v = metrics[objective.objective.metric];
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new LearnerInputError(
      `metrics.${objective.objective.metric}`,
      `tune: objective ${objective.id} returned no finite ${objective.objective.metric}`,
    );
  }
  return v;
}

/** Runs `budget` evaluations (fewer if the tuner is exhausted) and records the trajectory. */
export async function tune(
  tuner: Tuner,
  objective: KnobObjective,
  budget: number,
  seed: number,
  opts: TuneOptions = {},
): Promise<TuneResult> {
  checkField('tune', 'budget', budget, 'integer>=1');
  checkSeed('tune', seed);
  const { metric, direction } = objective.objective;
  if (tuner.objective.metric !== metric || tuner.objective.direction !== direction) {
    throw new LearnerConfigError(
      'objective',
      'match',
      `tune: tuner optimises ${tuner.objective.direction} ${tuner.objective.metric} but ` +
        `objective ${objective.id} is ${direction} ${metric}`,
    );
  }
  const better = (a: number, b: number): boolean => (direction === 'min' ? a < b : a > b);
  const evaluations: Evaluation[] = [];
  let best: number | undefined;
  for (let index = 0; index < budget && !tuner.exhausted(); index++) {
    const proposal = await tuner.propose();
    const evalSeed = evaluationSeed(seed, index);
    const metrics = await objective.evaluate(proposal.values, evalSeed);
    const value = objectiveValue(objective, metrics);
    tuner.observe({ values: proposal.values, metrics, value, seed: evalSeed });
    if (best === undefined || better(value, best)) best = value;
    const e: Evaluation = {
      index,
      values: proposal.values,
      reason: proposal.reason,
      seed: evalSeed,
      value,
      metrics,
      bestSoFar: best,
    };
    evaluations.push(e);
    opts.onProgress?.(e, budget);
  }
  return {
    evaluations,
    trajectory: evaluations.map((e) => e.bestSoFar),
    best: tuner.best(),
    exhausted: evaluations.length < budget,
  };
}
