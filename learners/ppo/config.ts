// Every hyperparameter of PPO in one typed, documented config (CleanRL's ppo.py defaults for
// classic control, one env). It is saved in the artifact and logged with a run.
import { checkField, checkGradClip, checkHiddenSizes, checkOneOf } from '../tf/config.ts';
import type { Activation } from '../tf/mlp.ts';
import { ROLLOUT_CAPACITY_MAX } from '../buffers/rollout.ts';

export interface PpoConfig {
  /** Seeds the network initialisers, action sampling and minibatch shuffling. */
  seed: number;
  /** Widths of the hidden layers of the actor and of the critic (separate networks). */
  hiddenSizes: number[];
  activation: Activation;
  /** Adam step size (one optimizer over actor and critic). */
  learningRate: number;
  /** Env steps collected per update. */
  nSteps: number;
  /** Discount factor. */
  gamma: number;
  /** GAE lambda: 0 is one-step TD, 1 is Monte Carlo. */
  gaeLambda: number;
  /** Minibatches per epoch (each holds about nSteps / numMinibatches steps). */
  numMinibatches: number;
  /** Passes over the rollout per update. */
  updateEpochs: number;
  /** Standardise advantages within each minibatch. */
  normAdvantages: boolean;
  /** Surrogate clipping: the probability ratio is kept within [1 - clipCoef, 1 + clipCoef]. */
  clipCoef: number;
  /** Clip the value update around the old values with the same coefficient. */
  clipValueLoss: boolean;
  /** Weight of the entropy bonus (exploration). */
  entCoef: number;
  /** Weight of the value loss. */
  vfCoef: number;
  /** Global gradient-norm clip; null disables it. */
  maxGradNorm: number | null;
  /** Stop the epochs of an update early once the approximate KL exceeds this; null: never. */
  targetKl: number | null;
}

export const PPO_DEFAULTS: Readonly<PpoConfig> = Object.freeze({
  seed: 1,
  hiddenSizes: [64, 64],
  activation: 'tanh',
  learningRate: 2.5e-4,
  nSteps: 128,
  gamma: 0.99,
  gaeLambda: 0.95,
  numMinibatches: 4,
  updateEpochs: 4,
  normAdvantages: true,
  clipCoef: 0.2,
  clipValueLoss: true,
  entCoef: 0.01,
  vfCoef: 0.5,
  maxGradNorm: 0.5,
  targetKl: null,
});

/** Defaults overlaid with `partial`, each field checked; throws LearnerConfigError. */
export function ppoConfig(partial: Partial<PpoConfig> = {}): PpoConfig {
  const c: PpoConfig = {
    ...PPO_DEFAULTS,
    ...partial,
    hiddenSizes: [...(partial.hiddenSizes ?? PPO_DEFAULTS.hiddenSizes)],
  };
  const L = 'ppo';
  checkField(L, 'seed', c.seed, 'integer>=0');
  checkHiddenSizes(L, c.hiddenSizes);
  checkOneOf(L, 'activation', c.activation, ['relu', 'tanh']);
  checkField(L, 'learningRate', c.learningRate, '>0');
  checkField(L, 'nSteps', c.nSteps, 'integer>=1', ROLLOUT_CAPACITY_MAX, 'ROLLOUT_CAPACITY_MAX');
  checkField(L, 'gamma', c.gamma, '[0,1]');
  checkField(L, 'gaeLambda', c.gaeLambda, '[0,1]');
  checkField(L, 'numMinibatches', c.numMinibatches, 'integer>=1', c.nSteps, 'nSteps');
  checkField(L, 'updateEpochs', c.updateEpochs, 'integer>=1');
  checkOneOf(L, 'normAdvantages', c.normAdvantages, [true, false]);
  checkField(L, 'clipCoef', c.clipCoef, '>0');
  checkOneOf(L, 'clipValueLoss', c.clipValueLoss, [true, false]);
  checkField(L, 'entCoef', c.entCoef, '>=0');
  checkField(L, 'vfCoef', c.vfCoef, '>=0');
  checkGradClip(L, c.maxGradNorm);
  if (c.targetKl !== null) checkField(L, 'targetKl', c.targetKl, '>0');
  return c;
}
