// The PPO agent: a separate actor (policy logits) and critic (state value) MLP, one Adam over
// both, masked categorical actions, and the update over a finished rollout. The loop that
// collects rollouts is learn.ts.
import { createRng, type Rng, type Space } from '../../envs/core/index.ts';
import {
  checkArtifact,
  joinWeights,
  metaCounter,
  spaceFromJson,
  spaceToJson,
  splitWeights,
  type DeepArtifact,
} from '../tf/artifact.ts';
import { loadTfBackend, tf } from '../tf/backend.ts';
import { argmaxRows, maskTensor, sampleCategorical } from '../tf/categorical.ts';
import { type Masks, actionCount, encodeBatch, obsSize, packMasks } from '../tf/encoding.ts';
import { Mlp } from '../tf/mlp.ts';
import { clippedStep } from '../tf/optimize.ts';
import { gatherRows, minibatchIndices, type RolloutBatch } from '../buffers/rollout.ts';
import { ppoConfig, type PpoConfig } from './config.ts';
import {
  clippedPolicyLoss,
  entropyOf,
  logProbOf,
  maskedLogProbs,
  normalise,
  policyShift,
  valueLoss,
} from './loss.ts';

export const PPO_ARTIFACT_KIND = 'ppo';
export const PPO_ARTIFACT_VERSION = 1;

export type PpoArtifact = DeepArtifact<typeof PPO_ARTIFACT_KIND, PpoConfig>;

export interface PpoSample {
  action: number;
  /** log pi(action | obs) under the current policy. */
  logProb: number;
  /** V(obs). */
  value: number;
}

/** Means over the minibatches of one update (the last epoch's values for approxKl). */
export interface PpoUpdateStats {
  policyLoss: number;
  valueLoss: number;
  entropy: number;
  approxKl: number;
  clipFraction: number;
  /** Epochs run: fewer than config.updateEpochs when targetKl stopped the update early. */
  epochs: number;
}

export class PpoAgent {
  readonly obsSize: number;
  readonly nActions: number;
  /** Env steps and updates taken by learnPpo so far. */
  envSteps = 0;
  updates = 0;
  private readonly actor: Mlp;
  private readonly critic: Mlp;
  private readonly optimizer: tf.Optimizer;
  private readonly actRng: Rng;
  private readonly shuffleRng: Rng;

  /** Use PpoAgent.create or PpoAgent.load: both make sure a TF.js backend is loaded first. */
  private constructor(
    readonly config: PpoConfig,
    readonly observationSpace: Space,
    readonly actionSpace: Space,
  ) {
    this.obsSize = obsSize(observationSpace);
    this.nActions = actionCount(actionSpace);
    // One root stream, forked in a fixed order: actor init, critic init, actions, shuffling.
    const rng = createRng(config.seed);
    const base = {
      inputSize: this.obsSize,
      hiddenSizes: config.hiddenSizes,
      activation: config.activation,
    };
    this.actor = new Mlp(
      { ...base, outputSize: this.nActions, outputGain: 0.01 },
      rng.int(2 ** 31),
    );
    this.critic = new Mlp({ ...base, outputSize: 1, outputGain: 1 }, rng.int(2 ** 31));
    this.actRng = rng.fork();
    this.shuffleRng = rng.fork();
    this.optimizer = tf.train.adam(config.learningRate, 0.9, 0.999, 1e-5);
  }

  static async create(
    observationSpace: Space,
    actionSpace: Space,
    config: Partial<PpoConfig> = {},
  ): Promise<PpoAgent> {
    await loadTfBackend();
    return new PpoAgent(ppoConfig(config), observationSpace, actionSpace);
  }

  /** Rebuilds an agent from save(); its deterministic decisions equal the saved agent's. */
  static async load(raw: unknown): Promise<PpoAgent> {
    const a = checkArtifact(raw, PPO_ARTIFACT_KIND, PPO_ARTIFACT_VERSION);
    // Checked before anything is built, like the spaces (checkArtifact) and the config (create).
    const envSteps = metaCounter(a.meta, 'envSteps');
    const updates = metaCounter(a.meta, 'updates');
    const agent = await PpoAgent.create(
      spaceFromJson(a.spaces.observation, 'spaces.observation'),
      spaceFromJson(a.spaces.action, 'spaces.action'),
      a.config as Partial<PpoConfig>,
    );
    // The networks and optimizer exist before the weights can be checked against them: free
    // them if the artifact is refused, else each refused load leaks their tensors.
    try {
      const [actor, critic] = splitWeights(a, [
        agent.actor.params.length,
        agent.critic.params.length,
      ]);
      agent.actor.setWeights(actor as typeof a, 'weights (actor)');
      agent.critic.setWeights(critic as typeof a, 'weights (critic)');
    } catch (e) {
      agent.dispose();
      throw e;
    }
    // Only reported (onEpisode, onUpdate): no PPO schedule reads them. What a resumed run
    // restarts is in learners/tf/README.md.
    agent.envSteps = envSteps;
    agent.updates = updates;
    return agent;
  }

  /** pi(. | obs) for each raw observation, [batch][nActions]; illegal actions get 0. */
  actionProbs(obsBatch: readonly unknown[], masks: Masks = []): number[][] {
    const n = obsBatch.length;
    const logp = this.logProbs(encodeBatch(this.observationSpace, obsBatch), n, masks);
    return Array.from({ length: n }, (_, i) =>
      Array.from(logp.subarray(i * this.nActions, (i + 1) * this.nActions), Math.exp),
    );
  }

  /** The most probable legal action of each observation: the policy used for evaluation. */
  deterministicActions(obsBatch: readonly unknown[], masks: Masks = []): number[] {
    const n = obsBatch.length;
    const logp = this.logProbs(encodeBatch(this.observationSpace, obsBatch), n, masks);
    return argmaxRows(logp, n, this.nActions);
  }

  /** V(obs) of each raw observation. */
  values(obsBatch: readonly unknown[]): number[] {
    const n = obsBatch.length;
    const x = encodeBatch(this.observationSpace, obsBatch);
    return tf.tidy(() =>
      Array.from(this.critic.apply(tf.tensor2d(x, [n, this.obsSize])).dataSync()),
    );
  }

  /** Samples an action from pi(. | obs) restricted to legal actions, with its log-prob and V(obs). */
  sample(obs: unknown, mask: readonly boolean[] | undefined): PpoSample {
    const x = encodeBatch(this.observationSpace, [obs]);
    const logp = this.logProbs(x, 1, [mask]);
    const action = sampleCategorical(Array.from(logp, Math.exp), this.actRng);
    const value = this.values([obs])[0] as number;
    return { action, logProb: logp[action] as number, value };
  }

  /**
   * The PPO update: `updateEpochs` passes over the rollout in shuffled minibatches, each one
   * Adam step on  policyLoss - entCoef * entropy + vfCoef * valueLoss.
   */
  update(b: RolloutBatch): PpoUpdateStats {
    const c = this.config;
    const sums = { policyLoss: 0, valueLoss: 0, entropy: 0, approxKl: 0, clipFraction: 0 };
    let minibatches = 0;
    let epochs = 0;
    let lastKl = 0;
    for (let epoch = 0; epoch < c.updateEpochs; epoch++) {
      epochs++;
      let klSum = 0;
      const batches = minibatchIndices(b.size, c.numMinibatches, this.shuffleRng);
      for (const idx of batches) {
        const s = this.minibatchStep(b, idx);
        for (const k of Object.keys(sums) as (keyof typeof sums)[]) sums[k] += s[k];
        klSum += s.approxKl;
        minibatches++;
      }
      lastKl = klSum / batches.length;
      if (c.targetKl !== null && lastKl > c.targetKl) break;
    }
    this.updates++;
    return {
      policyLoss: sums.policyLoss / minibatches,
      valueLoss: sums.valueLoss / minibatches,
      entropy: sums.entropy / minibatches,
      approxKl: lastKl,
      clipFraction: sums.clipFraction / minibatches,
      epochs,
    };
  }

  /**
   * A JSON-serialisable checkpoint of actor then critic (the optimizer state is not kept).
   * `meta` is stored with it, except that envSteps and updates are always the agent's: load
   * restores them.
   */
  save(meta: Record<string, unknown> = {}): PpoArtifact {
    return {
      kind: PPO_ARTIFACT_KIND,
      version: PPO_ARTIFACT_VERSION,
      config: { ...this.config, hiddenSizes: [...this.config.hiddenSizes] },
      spaces: {
        observation: spaceToJson(this.observationSpace),
        action: spaceToJson(this.actionSpace),
      },
      ...joinWeights([this.actor.getWeights(), this.critic.getWeights()]),
      meta: { ...meta, envSteps: this.envSteps, updates: this.updates },
    };
  }

  dispose(): void {
    this.actor.dispose();
    this.critic.dispose();
    this.optimizer.dispose();
  }

  private logProbs(encoded: Float32Array, n: number, masks: Masks): Float32Array {
    const k = this.nActions;
    const rows = Array.from({ length: n }, (_, i) => masks[i]);
    return tf.tidy(() => {
      const logits = this.actor.apply(tf.tensor2d(encoded, [n, this.obsSize]));
      return maskedLogProbs(
        logits,
        maskTensor(packMasks(rows, k), n, k),
      ).dataSync() as Float32Array;
    });
  }

  private minibatchStep(b: RolloutBatch, idx: Int32Array): Omit<PpoUpdateStats, 'epochs'> {
    const c = this.config;
    const [m, k, d] = [idx.length, this.nActions, this.obsSize];
    const obs = tf.tensor2d(gatherRows(b.obs, d, idx), [m, d]);
    const mask = maskTensor(gatherRows(b.masks, k, idx), m, k);
    const actions = tf.tensor1d(gatherRows(b.actions, 1, idx), 'int32');
    const oldLogProbs = tf.tensor1d(gatherRows(b.logProbs, 1, idx));
    const oldValues = tf.tensor1d(gatherRows(b.values, 1, idx));
    const returns = tf.tensor1d(gatherRows(b.returns, 1, idx));
    const rawAdv = tf.tensor1d(gatherRows(b.advantages, 1, idx));
    const advantages = c.normAdvantages && m > 1 ? normalise(rawAdv) : rawAdv;
    const kept: { stats?: tf.Tensor1D } = {};
    clippedStep(
      this.optimizer,
      [...this.actor.params, ...this.critic.params],
      () => {
        const logp = maskedLogProbs(this.actor.apply(obs), mask);
        const newLogProbs = logProbOf(logp, actions);
        const values = tf.reshape(this.critic.apply(obs), [m]) as tf.Tensor1D;
        const pg = clippedPolicyLoss(newLogProbs, oldLogProbs, advantages, c.clipCoef);
        const v = valueLoss(values, oldValues, returns, c.clipValueLoss ? c.clipCoef : null);
        const entropy = tf.mean(entropyOf(logp));
        const { approxKl, clipFraction } = policyShift(newLogProbs, oldLogProbs, c.clipCoef);
        kept.stats = tf.keep(tf.stack([pg, v, entropy, approxKl, clipFraction]) as tf.Tensor1D);
        return tf.add(tf.sub(pg, tf.mul(c.entCoef, entropy)), tf.mul(c.vfCoef, v)) as tf.Scalar;
      },
      c.maxGradNorm,
    );
    const [policyLoss, vLoss, entropy, approxKl, clipFraction] = Array.from(
      kept.stats?.dataSync() ?? [],
    );
    tf.dispose([obs, mask, actions, oldLogProbs, oldValues, returns, rawAdv, advantages]);
    kept.stats?.dispose();
    return {
      policyLoss: policyLoss as number,
      valueLoss: vLoss as number,
      entropy: entropy as number,
      approxKl: approxKl as number,
      clipFraction: clipFraction as number,
    };
  }
}
