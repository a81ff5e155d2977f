// Every hyperparameter of the learned placement policy's training, saved in its artifact. An
// episode is cheap (200 intervals, a few dozen candidates each), so PPO gets many iterations.
import { checkField } from '../tf/config.ts';
import { LearnerConfigError } from '../tf/errors.ts';
import { checkLoopConfig, type ScorerLoopConfig } from '../scheduling/loop-config.ts';

export interface PlacementTrainConfig extends ScorerLoopConfig {
  /** Greedy's payback (intervals) when it teaches; null: no cloning, PPO from scratch. */
  teacherPayback: number | null;
  /** Discount of returns per interval, as a horizon in intervals (null: none). */
  horizonSteps: number | null;
  validationSeeds: number[];
}

export const PLACEMENT_TRAIN_DEFAULTS: Readonly<PlacementTrainConfig> = Object.freeze({
  seed: 1,
  hiddenSizes: [32, 16],
  activation: 'relu',
  trainSeedBase: 100_000,
  bcRounds: 2,
  bcEpisodesPerRound: 4,
  decisionsPerEpisode: 2_000,
  bcEpochs: 8,
  bcLearningRate: 3e-3,
  ppoIterations: 60,
  rolloutsPerIteration: 4,
  ppoLearningRate: 1e-3,
  ppoEpochs: 4,
  minibatchSize: 256,
  clipCoef: 0.2,
  entCoef: 0.003,
  targetKl: 0.02,
  maxGradNorm: 0.5,
  validateEvery: 10,
  teacherPayback: 1,
  horizonSteps: 20,
  validationSeeds: [200_001, 200_002, 200_003, 200_004],
});

export function placementTrainConfig(
  partial: Partial<PlacementTrainConfig> = {},
): PlacementTrainConfig {
  const c: PlacementTrainConfig = {
    ...PLACEMENT_TRAIN_DEFAULTS,
    ...partial,
    hiddenSizes: [...(partial.hiddenSizes ?? PLACEMENT_TRAIN_DEFAULTS.hiddenSizes)],
    validationSeeds: [...(partial.validationSeeds ?? PLACEMENT_TRAIN_DEFAULTS.validationSeeds)],
  };
  const L = 'placement';
  checkLoopConfig(L, c);
  if (c.teacherPayback !== null) checkField(L, 'teacherPayback', c.teacherPayback, '>0');
  if (c.horizonSteps !== null) checkField(L, 'horizonSteps', c.horizonSteps, '>0');
  if (c.validationSeeds.length === 0 || !c.validationSeeds.every((s) => Number.isInteger(s))) {
    throw new LearnerConfigError(
      'validationSeeds',
      'list',
      `${L}.validationSeeds must be a non-empty list of integers, got ${JSON.stringify(c.validationSeeds)}`,
    );
  }
  return c;
}
