// Discrete action choice under a legal-action mask, shared by DQN (argmax of Q) and PPO
// (sampling from a softmax). Illegal actions are removed inside the tensors, before argmax or
// softmax, so no code path can pick one.
import type { Rng } from '../../envs/core/index.ts';
import { tf } from './backend.ts';

/**
 * Replaces the entries of illegal actions (mask 0) by `fill`. DQN uses -Infinity (an illegal
 * action's Q is never the max); PPO uses a large finite negative so softmax gives it
 * probability 0 while log-probabilities and the entropy stay finite (0 * -1e9 = 0, whereas
 * 0 * -Infinity is NaN).
 */
export function maskScores(scores: tf.Tensor2D, mask: tf.Tensor2D, fill: number): tf.Tensor2D {
  return tf.where(tf.cast(mask, 'bool'), scores, tf.fill(scores.shape, fill));
}

/** A [rows, nActions] mask tensor from a packed 0/1 array (see packMasks). */
export function maskTensor(packed: Uint8Array, rows: number, nActions: number): tf.Tensor2D {
  return tf.tensor2d(packed, [rows, nActions], 'int32');
}

/** Index of the largest entry of each row; ties go to the lowest index. */
export function argmaxRows(values: ArrayLike<number>, rows: number, cols: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let c = 1; c < cols; c++) {
      if ((values[r * cols + c] as number) > (values[r * cols + best] as number)) best = c;
    }
    out.push(best);
  }
  return out;
}

/** One draw from a categorical distribution given its probabilities (summing to ~1). */
export function sampleCategorical(probs: ArrayLike<number>, rng: Rng): number {
  const u = rng.next();
  let acc = 0;
  let last = 0;
  for (let i = 0; i < probs.length; i++) {
    const p = probs[i] as number;
    if (p <= 0) continue;
    last = i;
    acc += p;
    if (u < acc) return i;
  }
  return last; // rounding left u above the total: the last action with mass
}
