// The DQN agent: an online Q-network, a target network, Adam, and epsilon-greedy action choice
// under a legal-action mask. The training loop that drives it is learn.ts; this file holds
// the pieces the loop calls, each readable on its own.
import { createRng, type Rng, type Space } from '../../envs/core/index.ts';
import {
  checkArtifact,
  metaCounter,
  spaceFromJson,
  spaceToJson,
  type DeepArtifact,
} from '../tf/artifact.ts';
import { loadTfBackend, tf } from '../tf/backend.ts';
import { argmaxRows, maskScores, maskTensor } from '../tf/categorical.ts';
import { linearSchedule } from '../tf/config.ts';
import {
  type Masks,
  actionCount,
  checkMask,
  encodeBatch,
  obsSize,
  packMasks,
} from '../tf/encoding.ts';
import { Mlp } from '../tf/mlp.ts';
import { clippedStep } from '../tf/optimize.ts';
import type { ReplayBatch } from '../buffers/replay.ts';
import { dqnConfig, type DqnConfig } from './config.ts';

export const DQN_ARTIFACT_KIND = 'dqn';
export const DQN_ARTIFACT_VERSION = 1;

export type DqnArtifact = DeepArtifact<typeof DQN_ARTIFACT_KIND, DqnConfig>;

export class DqnAgent {
  readonly obsSize: number;
  readonly nActions: number;
  /** Env steps and gradient steps taken by learnDqn so far (they drive epsilon and target syncs). */
  envSteps = 0;
  gradientSteps = 0;
  /** Stream for replay sampling, used by learnDqn. */
  readonly replayRng: Rng;
  private readonly exploreRng: Rng;
  private readonly online: Mlp;
  private readonly target: Mlp;
  private readonly optimizer: tf.Optimizer;

  /** Use DqnAgent.create or DqnAgent.load: both make sure a TF.js backend is loaded first. */
  private constructor(
    readonly config: DqnConfig,
    readonly observationSpace: Space,
    readonly actionSpace: Space,
  ) {
    this.obsSize = obsSize(observationSpace);
    this.nActions = actionCount(actionSpace);
    // One root stream per agent, forked in a fixed order: init, exploration, replay.
    const rng = createRng(config.seed);
    const spec = {
      inputSize: this.obsSize,
      hiddenSizes: config.hiddenSizes,
      outputSize: this.nActions,
      activation: config.activation,
      outputGain: 1,
    };
    this.online = new Mlp(spec, rng.int(2 ** 31));
    this.target = new Mlp(spec, 0);
    this.target.copyFrom(this.online);
    this.exploreRng = rng.fork();
    this.replayRng = rng.fork();
    this.optimizer = tf.train.adam(config.learningRate);
  }

  static async create(
    observationSpace: Space,
    actionSpace: Space,
    config: Partial<DqnConfig> = {},
  ): Promise<DqnAgent> {
    await loadTfBackend();
    return new DqnAgent(dqnConfig(config), observationSpace, actionSpace);
  }

  /** Rebuilds an agent from save(); its greedy decisions equal the saved agent's. */
  static async load(raw: unknown): Promise<DqnAgent> {
    const a = checkArtifact(raw, DQN_ARTIFACT_KIND, DQN_ARTIFACT_VERSION);
    // Checked before anything is built, like the spaces (checkArtifact) and the config (create).
    const envSteps = metaCounter(a.meta, 'envSteps');
    const gradientSteps = metaCounter(a.meta, 'gradientSteps');
    const agent = await DqnAgent.create(
      spaceFromJson(a.spaces.observation, 'spaces.observation'),
      spaceFromJson(a.spaces.action, 'spaces.action'),
      a.config as Partial<DqnConfig>,
    );
    // The networks and optimizer exist before the weights can be checked against them: free
    // them if the artifact is refused, else each refused load leaks their tensors.
    try {
      agent.online.setWeights(a);
    } catch (e) {
      agent.dispose();
      throw e;
    }
    agent.target.copyFrom(agent.online);
    // The counters drive epsilon, learningStarts, trainFrequency and target syncs: a resumed
    // run continues their schedules (learn.ts). What it restarts is in learners/tf/README.md.
    agent.envSteps = envSteps;
    agent.gradientSteps = gradientSteps;
    return agent;
  }

  /** Q-values of raw observations, [batch][nActions]; illegal actions read -Infinity. */
  qValues(obsBatch: readonly unknown[], masks: Masks = []): number[][] {
    const n = obsBatch.length;
    const flat = this.maskedQ(encodeBatch(this.observationSpace, obsBatch), n, masks);
    return Array.from({ length: n }, (_, i) =>
      Array.from(flat.subarray(i * this.nActions, (i + 1) * this.nActions)),
    );
  }

  /** The greedy (highest legal Q) action of each observation. */
  greedyActions(obsBatch: readonly unknown[], masks: Masks = []): number[] {
    const n = obsBatch.length;
    const q = this.maskedQ(encodeBatch(this.observationSpace, obsBatch), n, masks);
    return argmaxRows(q, n, this.nActions);
  }

  /** Exploration rate after `step` env steps. */
  epsilon(step: number): number {
    const c = this.config;
    return linearSchedule(c.epsilonStart, c.epsilonEnd, c.explorationSteps, step);
  }

  /** Epsilon-greedy: a uniformly random legal action with probability epsilon(step), else greedy. */
  act(obs: unknown, mask: readonly boolean[] | undefined, step: number): number {
    if (this.exploreRng.next() < this.epsilon(step)) {
      if (mask === undefined) return this.exploreRng.int(this.nActions);
      const legal = checkMask(mask, this.nActions).flatMap((ok, a) => (ok ? [a] : []));
      return this.exploreRng.pick(legal);
    }
    return this.greedyActions([obs], [mask])[0] as number;
  }

  /**
   * One gradient step on a replay minibatch: Huber loss between Q(s, a) and the TD target
   *   y = r + gamma * (1 - terminated) * Q_target(s', a*),
   *   a* = argmax over legal a' of Q_online(s', a')   (double DQN; Q_target's own argmax if off).
   * The target is computed outside the gradient tape. Returns the loss.
   */
  trainStep(b: ReplayBatch): number {
    const { gamma, doubleDqn, huberDelta, maxGradNorm } = this.config;
    const [n, k, d] = [b.size, this.nActions, this.obsSize];
    const target = tf.tidy(() => {
      const nextObs = tf.tensor2d(b.nextObs, [n, d]);
      const nextQTarget = this.target.apply(nextObs);
      const chooser = doubleDqn ? this.online.apply(nextObs) : nextQTarget;
      const legalChooser = maskScores(chooser, maskTensor(b.nextMasks, n, k), -Infinity);
      const nextAction = tf.argMax(legalChooser, 1) as tf.Tensor1D;
      // Gathering the target net's value at a* keeps -Infinity out of the arithmetic.
      const nextQ = tf.sum(tf.mul(nextQTarget, tf.oneHot(nextAction, k)), 1);
      const notTerminated = tf.sub(1, tf.tensor1d(b.terminated));
      return tf.add(tf.tensor1d(b.rewards), tf.mul(gamma, tf.mul(notTerminated, nextQ)));
    });
    const obs = tf.tensor2d(b.obs, [n, d]);
    const taken = tf.tidy(() => tf.oneHot(tf.tensor1d(b.actions, 'int32'), k));
    const loss = clippedStep(
      this.optimizer,
      this.online.params,
      () => {
        const qTaken = tf.sum(tf.mul(this.online.apply(obs), taken), 1);
        return tf.losses.huberLoss(target, qTaken, undefined, huberDelta) as tf.Scalar;
      },
      maxGradNorm,
    );
    tf.dispose([target, obs, taken]);
    return loss;
  }

  /** Copies the online network into the target network. */
  syncTarget(): void {
    this.target.copyFrom(this.online);
  }

  /**
   * A JSON-serialisable checkpoint of the online network (the optimizer state is not kept).
   * `meta` is stored with it, except that envSteps and gradientSteps are always the agent's:
   * load restores them.
   */
  save(meta: Record<string, unknown> = {}): DqnArtifact {
    return {
      kind: DQN_ARTIFACT_KIND,
      version: DQN_ARTIFACT_VERSION,
      config: { ...this.config, hiddenSizes: [...this.config.hiddenSizes] },
      spaces: {
        observation: spaceToJson(this.observationSpace),
        action: spaceToJson(this.actionSpace),
      },
      ...this.online.getWeights(),
      meta: { ...meta, envSteps: this.envSteps, gradientSteps: this.gradientSteps },
    };
  }

  dispose(): void {
    this.online.dispose();
    this.target.dispose();
    this.optimizer.dispose();
  }

  private maskedQ(encoded: Float32Array, n: number, masks: Masks): Float32Array {
    const k = this.nActions;
    const rows = Array.from({ length: n }, (_, i) => masks[i]);
    return tf.tidy(() => {
      const q = this.online.apply(tf.tensor2d(encoded, [n, this.obsSize]));
      return maskScores(
        q,
        maskTensor(packMasks(rows, k), n, k),
        -Infinity,
      ).dataSync() as Float32Array;
    });
  }
}
