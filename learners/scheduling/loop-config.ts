// The hyperparameters of the scorer training loop (loop.ts), shared by the scheduler's and the
// placement learner's configs, which add their domain's fields. Checked field by field.
import { checkField, checkGradClip, checkHiddenSizes, checkOneOf } from '../tf/config.ts';
import type { Activation } from '../tf/mlp.ts';

export interface ScorerLoopConfig {
  /** Seeds the network, sampling, reservoirs, shuffling and the order of training workloads. */
  seed: number;
  hiddenSizes: number[];
  activation: Activation;
  /** Workload seeds of training are trainSeedBase + i: far from the evaluation seeds. */
  trainSeedBase: number;
  /** DAgger rounds (0: no cloning); round 0 follows the teacher, later rounds the learner. */
  bcRounds: number;
  bcEpisodesPerRound: number;
  /** Decisions kept per episode (a uniform sample). */
  decisionsPerEpisode: number;
  bcEpochs: number;
  bcLearningRate: number;
  /** PPO iterations; each runs `rolloutsPerIteration` episodes on one workload. */
  ppoIterations: number;
  rolloutsPerIteration: number;
  ppoLearningRate: number;
  ppoEpochs: number;
  minibatchSize: number;
  clipCoef: number;
  entCoef: number;
  /** Stop an update's epochs once the approximate KL exceeds this; null: never. */
  targetKl: number | null;
  maxGradNorm: number | null;
  /** Validate after every this many PPO iterations (and after the last). */
  validateEvery: number;
}

/** Throws LearnerConfigError naming `learner.field` for the first field out of its domain. */
export function checkLoopConfig(L: string, c: ScorerLoopConfig): void {
  checkField(L, 'seed', c.seed, 'integer>=0');
  checkHiddenSizes(L, c.hiddenSizes);
  checkOneOf(L, 'activation', c.activation, ['relu', 'tanh']);
  checkField(L, 'trainSeedBase', c.trainSeedBase, 'integer>=0');
  checkField(L, 'bcRounds', c.bcRounds, 'integer>=0', 100);
  checkField(L, 'bcEpisodesPerRound', c.bcEpisodesPerRound, 'integer>=1', 100);
  checkField(L, 'decisionsPerEpisode', c.decisionsPerEpisode, 'integer>=1', 100_000);
  checkField(L, 'bcEpochs', c.bcEpochs, 'integer>=1', 1_000);
  checkField(L, 'bcLearningRate', c.bcLearningRate, '>0');
  checkField(L, 'ppoIterations', c.ppoIterations, 'integer>=0', 10_000);
  checkField(L, 'rolloutsPerIteration', c.rolloutsPerIteration, 'integer>=1', 64);
  checkField(L, 'ppoLearningRate', c.ppoLearningRate, '>0');
  checkField(L, 'ppoEpochs', c.ppoEpochs, 'integer>=1', 100);
  checkField(L, 'minibatchSize', c.minibatchSize, 'integer>=1', 65_536);
  checkField(L, 'clipCoef', c.clipCoef, '>0');
  checkField(L, 'entCoef', c.entCoef, '>=0');
  if (c.targetKl !== null) checkField(L, 'targetKl', c.targetKl, '>0');
  checkGradClip(L, c.maxGradNorm);
  checkField(L, 'validateEvery', c.validateEvery, 'integer>=1');
}
