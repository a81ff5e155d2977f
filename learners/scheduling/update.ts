// Gradient steps of a ScorerModel on packed decisions: behaviour cloning (cross-entropy of the
// teacher's choice under the masked softmax) and the PPO clipped-surrogate update with an
// entropy bonus. The loss terms are learners/ppo's, so the scorer's PPO is PPO's objective;
// only the network that makes the logits differs (and there is no critic: advantages come
// from the input-driven baseline of advantage.ts).
import type { Rng } from '../../envs/core/index.ts';
import { gatherRows, minibatchesOfSize } from '../buffers/rollout.ts';
import {
  MASKED_LOGIT,
  clippedPolicyLoss,
  entropyOf,
  logProbOf,
  maskedLogProbs,
  normalise,
  policyShift,
} from '../ppo/loss.ts';
import { tf } from '../tf/backend.ts';
import { maskScores, maskTensor } from '../tf/categorical.ts';
import { clippedStep } from '../tf/optimize.ts';
import { minibatchRows, type PackedDecisions } from './decisions.ts';
import type { ScorerModel } from './model.ts';

export interface StepOptions {
  epochs: number;
  /** Decisions per minibatch (the last one may be smaller). */
  minibatchSize: number;
  maxGradNorm: number | null;
  rng: Rng;
}

export interface PpoStepOptions extends StepOptions {
  clipCoef: number;
  entCoef: number;
  /** Stop the epochs once the approximate KL of an epoch exceeds this; null: never. */
  targetKl: number | null;
}

/**
 * As many minibatches as minibatchSize makes, of equal size but the last: the partition the
 * committed training results (experiments/results/learned-scheduler) were made with.
 */
function minibatches(p: PackedDecisions, o: StepOptions): Int32Array[] {
  const count = Math.max(1, Math.ceil(p.size / o.minibatchSize));
  return minibatchesOfSize(p.size, Math.ceil(p.size / count), o.rng);
}

/**
 * scores[slots], differentiable on every backend: the gradient of tf.gather needs the
 * UnsortedSegmentSum kernel, which the wasm backend lacks, so the gradient is a scatter-add
 * (ScatterNd sums duplicate indices; only the padding row has any).
 */
function gatherSlots(scores: tf.Tensor1D, slots: Int32Array): tf.Tensor1D {
  const idx = tf.tensor1d(slots, 'int32');
  const n = scores.shape[0];
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, save] = args as [tf.Tensor, tf.GradSaveFunc];
    save([idx]); // kept for the backward pass, which runs after this scope's tensors go
    return {
      value: tf.gather(x, idx),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.scatterND(tf.reshape(saved[0] as tf.Tensor, [-1, 1]), dy, [n]),
    };
  });
  return f(scores) as tf.Tensor1D;
}

/** The masked log-probabilities of the decisions `idx`: [m, width]. Call inside tf.tidy. */
function logProbsOf(model: ScorerModel, p: PackedDecisions, idx: Int32Array): tf.Tensor2D {
  const m = idx.length;
  const { rows, count, slots } = minibatchRows(p, idx);
  const scores = model.scores(tf.tensor2d(rows, [count, p.rowSize]));
  const logits = tf.reshape(gatherSlots(scores, slots), [m, p.width]);
  return maskedLogProbs(
    logits as tf.Tensor2D,
    maskTensor(gatherRows(p.masks, p.width, idx), m, p.width),
  );
}

export interface BcStats {
  /** Mean cross-entropy of the last epoch. */
  loss: number;
  /** Share of decisions where the model's top choice is one of the teacher's, after training. */
  agreement: number;
}

/**
 * -mean log pi(acceptable set): the probability mass on any of the teacher's tied first
 * choices (with one target per decision, plain cross-entropy). Call inside tf.tidy.
 */
function cloningLoss(logp: tf.Tensor2D, targets: tf.Tensor2D): tf.Scalar {
  const onTargets = maskScores(logp, targets, MASKED_LOGIT);
  return tf.neg(tf.mean(tf.logSumExp(onTargets, 1))) as tf.Scalar;
}

/** Behaviour cloning: maximise the probability of the teacher's choices over `epochs` passes. */
export function behaviourCloning(
  model: ScorerModel,
  optimizer: tf.Optimizer,
  p: PackedDecisions,
  o: StepOptions,
): BcStats {
  let loss = 0;
  for (let e = 0; e < o.epochs; e++) {
    let sum = 0;
    const batches = minibatches(p, o);
    for (const idx of batches) {
      const targets = maskTensor(gatherRows(p.targets, p.width, idx), idx.length, p.width);
      sum += clippedStep(
        optimizer,
        model.params,
        () => cloningLoss(logProbsOf(model, p, idx), targets),
        o.maxGradNorm,
      );
      targets.dispose();
    }
    loss = sum / batches.length;
  }
  return { loss, agreement: agreement(model, p) };
}

/** Share of decisions whose most probable candidate is an acceptable one (see targets). */
export function agreement(model: ScorerModel, p: PackedDecisions): number {
  if (p.size === 0) return NaN;
  const all = Int32Array.from({ length: p.size }, (_, i) => i);
  const top = tf.tidy(() => tf.argMax(logProbsOf(model, p, all), 1).dataSync());
  let same = 0;
  for (let i = 0; i < p.size; i++) if (p.targets[i * p.width + (top[i] as number)] === 1) same++;
  return same / p.size;
}

export interface PpoStats {
  policyLoss: number;
  entropy: number;
  approxKl: number;
  clipFraction: number;
  epochs: number;
}

/**
 * The PPO update on decisions taken by the policy that recorded `p.logProbs`:
 * minimise clippedPolicyLoss - entCoef * entropy, advantages standardised per minibatch.
 */
export function ppoUpdate(
  model: ScorerModel,
  optimizer: tf.Optimizer,
  p: PackedDecisions,
  advantages: Float32Array,
  o: PpoStepOptions,
): PpoStats {
  const sums = { policyLoss: 0, entropy: 0, approxKl: 0, clipFraction: 0 };
  let count = 0;
  let epochs = 0;
  for (let e = 0; e < o.epochs; e++) {
    epochs++;
    let kl = 0;
    const batches = minibatches(p, o);
    for (const idx of batches) {
      const actions = tf.tensor1d(gatherRows(p.actions, 1, idx), 'int32');
      const old = tf.tensor1d(gatherRows(p.logProbs, 1, idx));
      const rawAdv = tf.tensor1d(gatherRows(advantages, 1, idx));
      const adv = idx.length > 1 ? normalise(rawAdv) : rawAdv;
      const kept: { stats?: tf.Tensor1D } = {};
      clippedStep(
        optimizer,
        model.params,
        () => {
          const logp = logProbsOf(model, p, idx);
          const lp = logProbOf(logp, actions);
          const pg = clippedPolicyLoss(lp, old, adv, o.clipCoef);
          const ent = tf.mean(entropyOf(logp));
          const shift = policyShift(lp, old, o.clipCoef);
          kept.stats = tf.keep(
            tf.stack([pg, ent, shift.approxKl, shift.clipFraction]) as tf.Tensor1D,
          );
          return tf.sub(pg, tf.mul(o.entCoef, ent)) as tf.Scalar;
        },
        o.maxGradNorm,
      );
      const [pg, ent, akl, cf] = Array.from(kept.stats?.dataSync() ?? []);
      tf.dispose([actions, old, rawAdv, adv, kept.stats as tf.Tensor]);
      sums.policyLoss += pg as number;
      sums.entropy += ent as number;
      sums.approxKl += akl as number;
      sums.clipFraction += cf as number;
      kl += akl as number;
      count++;
    }
    if (o.targetKl !== null && kl / batches.length > o.targetKl) break;
  }
  return {
    policyLoss: sums.policyLoss / count,
    entropy: sums.entropy / count,
    approxKl: sums.approxKl / count,
    clipFraction: sums.clipFraction / count,
    epochs,
  };
}
