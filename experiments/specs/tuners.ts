// The tuners every knob-tuning study compares, and the claims it checks about them: Bayesian
// optimisation within 5% of the grid optimum after 30 evaluations, and BO against random search
// at the same budget (at 30 evaluations and at the full budget).
import { BayesOpt, CrossEntropy, GridSearch, RandomSearch } from '../../learners/tuners/index.ts';
import type { ComparisonSpec, TunerSpec } from '../spec.ts';

/** Evaluations by which BO should be near the grid optimum (the acceptance). */
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

export const TUNER_CLAIMS: readonly ComparisonSpec[] = [
  {
    type: 'within',
    entry: 'bo',
    reference: 'grid-optimum',
    tolerance: BO_TOLERANCE,
    evaluations: BO_EVALUATIONS,
  },
  { type: 'versus', a: 'bo', b: 'random', evaluations: BO_EVALUATIONS },
  { type: 'versus', a: 'bo', b: 'random' },
  { type: 'versus', a: 'bo', b: 'cem' },
];
