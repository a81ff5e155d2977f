// Every hyperparameter of DQN in one typed, documented config (CleanRL's dqn.py defaults,
// scaled down for small control problems). It is saved in the artifact and logged with a run.
import { checkField, checkGradClip, checkHiddenSizes, checkOneOf } from '../tf/config.ts';
import type { Activation } from '../tf/mlp.ts';
import { REPLAY_CAPACITY_MAX } from '../buffers/replay.ts';

export interface DqnConfig {
  /** Seeds the network initialisers, exploration and replay sampling. */
  seed: number;
  /** Widths of the Q-network's hidden layers. */
  hiddenSizes: number[];
  activation: Activation;
  /** Adam step size. */
  learningRate: number;
  /** Discount factor of the TD target. */
  gamma: number;
  /** Transitions kept in the replay buffer; the oldest are overwritten. */
  bufferSize: number;
  /** Transitions per gradient step. */
  batchSize: number;
  /**
   * Env steps that only fill the replay buffer before the first gradient step. Not pure
   * exploration: epsilon decays from step 0 (as in CleanRL), so the untrained network already
   * chooses a share of these actions.
   */
  learningStarts: number;
  /** Env steps between gradient steps. */
  trainFrequency: number;
  /** Gradient steps between copies of the online network into the target network. */
  targetUpdateInterval: number;
  /** Exploration rate at step 0 ... */
  epsilonStart: number;
  /** ... falling linearly to this ... */
  epsilonEnd: number;
  /** ... over this many env steps, then held. */
  explorationSteps: number;
  /** Double DQN (van Hasselt 2016): the online net picks the next action, the target net scores it. */
  doubleDqn: boolean;
  /** Huber loss threshold: quadratic below, linear above (robust to large TD errors). */
  huberDelta: number;
  /** Global gradient-norm clip (SB3's default for DQN is 10); null disables it. */
  maxGradNorm: number | null;
}

export const DQN_DEFAULTS: Readonly<DqnConfig> = Object.freeze({
  seed: 1,
  hiddenSizes: [64, 64],
  activation: 'relu',
  learningRate: 1e-3,
  gamma: 0.99,
  bufferSize: 10_000,
  batchSize: 64,
  learningStarts: 500,
  trainFrequency: 1,
  targetUpdateInterval: 100,
  epsilonStart: 1,
  epsilonEnd: 0.05,
  explorationSteps: 2_000,
  doubleDqn: true,
  huberDelta: 1,
  maxGradNorm: 10,
});

/** Defaults overlaid with `partial`, each field checked; throws LearnerConfigError. */
export function dqnConfig(partial: Partial<DqnConfig> = {}): DqnConfig {
  const c: DqnConfig = {
    ...DQN_DEFAULTS,
    ...partial,
    hiddenSizes: [...(partial.hiddenSizes ?? DQN_DEFAULTS.hiddenSizes)],
  };
  const L = 'dqn';
  checkField(L, 'seed', c.seed, 'integer>=0');
  checkHiddenSizes(L, c.hiddenSizes);
  checkOneOf(L, 'activation', c.activation, ['relu', 'tanh']);
  checkField(L, 'learningRate', c.learningRate, '>0');
  checkField(L, 'gamma', c.gamma, '[0,1]');
  checkField(
    L,
    'bufferSize',
    c.bufferSize,
    'integer>=1',
    REPLAY_CAPACITY_MAX,
    'REPLAY_CAPACITY_MAX',
  );
  checkField(L, 'batchSize', c.batchSize, 'integer>=1', c.bufferSize, 'bufferSize');
  checkField(L, 'learningStarts', c.learningStarts, 'integer>=0');
  checkField(L, 'trainFrequency', c.trainFrequency, 'integer>=1');
  checkField(L, 'targetUpdateInterval', c.targetUpdateInterval, 'integer>=1');
  checkField(L, 'epsilonStart', c.epsilonStart, '[0,1]');
  checkField(L, 'epsilonEnd', c.epsilonEnd, '[0,1]');
  checkField(L, 'explorationSteps', c.explorationSteps, 'integer>=0');
  checkField(L, 'huberDelta', c.huberDelta, '>0');
  checkOneOf(L, 'doubleDqn', c.doubleDqn, [true, false]);
  checkGradClip(L, c.maxGradNorm);
  return c;
}
