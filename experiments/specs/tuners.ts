// The tuners every knob-tuning study compares, and the claims it checks about them: Bayesian
// optimisation within 5% of the best known value after 30 evaluations and at the full budget,
// and BO against random search and CEM, on the training objective; where the study has
// held-out workload seeds, the same claims on the held-out scores of the final configurations.
//
// What these claims are not: BO's design (learners/tuners/bayesopt.ts) was developed on the
// scheduler and messaging studies' own training objectives (the same workload draws), with
// other tuner seeds (101-140). Only the tuner's seed is held out there, so the training-
// objective claims on those two studies are in-sample for BO's design. The held-out claims
// re-score the final configurations on other workload draws (whether the development looked
// at those scores is not recorded); the development notes name no work on the cache study.
import { BayesOpt, CrossEntropy, GridSearch, RandomSearch } from '../../learners/tuners/index.ts';
import { BEST_KNOWN } from '../derived.ts';
import type { ComparisonSpec, TunerSpec } from '../spec.ts';

/** Evaluations by which BO should be near the best known value (the acceptance). */
export const BO_EVALUATIONS = 30;
export const BO_TOLERANCE = 0.05;

export const STANDARD_TUNERS: readonly TunerSpec[] = [
  { name: 'random', make: (c) => new RandomSearch(c) },
  // The seeded shuffle spreads a budget smaller than the grid over the whole space.
  { name: 'grid', make: (c) => new GridSearch({ ...c, pointsPerNumeric: 5 }) },
  // Small generations so a 50-evaluation budget sees several updates of the Gaussian.
  { name: 'cem', make: (c) => new CrossEntropy({ ...c, populationSize: 10 }) },
  { name: 'bo', make: (c) => new BayesOpt(c) },
];

/** Claims on the training objective (the values the tuners optimised). */
export const TUNER_CLAIMS: readonly ComparisonSpec[] = [
  {
    type: 'within',
    entry: 'bo',
    reference: BEST_KNOWN,
    tolerance: BO_TOLERANCE,
    evaluations: BO_EVALUATIONS,
  },
  { type: 'within', entry: 'bo', reference: BEST_KNOWN, tolerance: BO_TOLERANCE },
  { type: 'versus', a: 'bo', b: 'random', evaluations: BO_EVALUATIONS },
  { type: 'versus', a: 'bo', b: 'random' },
  { type: 'versus', a: 'bo', b: 'cem' },
];

/**
 * The same claims on held-out workload draws: each run's final configuration re-scored there
 * (at the full budget only: earlier configurations are not re-scored).
 */
export const HELD_OUT_TUNER_CLAIMS: readonly ComparisonSpec[] = [
  { type: 'within', entry: 'bo', reference: BEST_KNOWN, tolerance: BO_TOLERANCE, on: 'held-out' },
  { type: 'versus', a: 'bo', b: 'random', on: 'held-out' },
  { type: 'versus', a: 'bo', b: 'cem', on: 'held-out' },
];
