// The PPO objective (Schulman et al. 2017) as pure functions of tensors, so each term can be
// checked against a hand computation. All return scalars to be minimised.
import { tf } from '../tf/backend.ts';
import { maskScores } from '../tf/categorical.ts';

/**
 * Logits of illegal actions become this before softmax: probability exp(-1e9) = 0, yet the
 * log-probabilities and entropy stay finite (-Infinity would turn 0 * log 0 into NaN).
 */
export const MASKED_LOGIT = -1e9;

/** log pi(. | s) over legal actions: [batch, nActions], illegal entries about -1e9. */
export function maskedLogProbs(logits: tf.Tensor2D, mask: tf.Tensor2D): tf.Tensor2D {
  return tf.logSoftmax(maskScores(logits, mask, MASKED_LOGIT));
}

/** log pi(a_i | s_i) of the taken actions: [batch]. */
export function logProbOf(logProbs: tf.Tensor2D, actions: tf.Tensor1D): tf.Tensor1D {
  return tf.sum(tf.mul(logProbs, tf.oneHot(actions, logProbs.shape[1])), 1);
}

/** Entropy of each row's categorical distribution: [batch]. Illegal actions add 0. */
export function entropyOf(logProbs: tf.Tensor2D): tf.Tensor1D {
  return tf.neg(tf.sum(tf.mul(tf.exp(logProbs), logProbs), 1)) as tf.Tensor1D;
}

/**
 * Clipped surrogate policy loss:
 *   r_i = exp(newLogProb_i - oldLogProb_i)
 *   L   = mean_i max(-A_i * r_i, -A_i * clip(r_i, 1 - clipCoef, 1 + clipCoef))
 * (the negative of the paper's L^CLIP, which is maximised).
 */
export function clippedPolicyLoss(
  newLogProbs: tf.Tensor1D,
  oldLogProbs: tf.Tensor1D,
  advantages: tf.Tensor1D,
  clipCoef: number,
): tf.Scalar {
  return tf.tidy(() => {
    const ratio = tf.exp(tf.sub(newLogProbs, oldLogProbs));
    const unclipped = tf.mul(tf.neg(advantages), ratio);
    const clipped = tf.mul(tf.neg(advantages), tf.clipByValue(ratio, 1 - clipCoef, 1 + clipCoef));
    return tf.mean(tf.maximum(unclipped, clipped));
  });
}

/**
 * Value loss: 0.5 * mean (V - R)^2, or with `clipCoef` not null the pessimistic clipped form
 * 0.5 * mean max((V - R)^2, (V_old + clip(V - V_old, -c, c) - R)^2).
 */
export function valueLoss(
  newValues: tf.Tensor1D,
  oldValues: tf.Tensor1D,
  returns: tf.Tensor1D,
  clipCoef: number | null,
): tf.Scalar {
  return tf.tidy(() => {
    const unclipped = tf.square(tf.sub(newValues, returns));
    if (clipCoef === null) return tf.mul(0.5, tf.mean(unclipped));
    const delta = tf.clipByValue(tf.sub(newValues, oldValues), -clipCoef, clipCoef);
    const clipped = tf.square(tf.sub(tf.add(oldValues, delta), returns));
    return tf.mul(0.5, tf.mean(tf.maximum(unclipped, clipped)));
  });
}

/** Diagnostics of one minibatch: how far the policy moved from the one that collected the data. */
export function policyShift(
  newLogProbs: tf.Tensor1D,
  oldLogProbs: tf.Tensor1D,
  clipCoef: number,
): { approxKl: tf.Scalar; clipFraction: tf.Scalar } {
  return tf.tidy(() => {
    const logRatio = tf.sub(newLogProbs, oldLogProbs);
    const ratio = tf.exp(logRatio);
    // The low-variance unbiased estimator of KL(old || new) (Schulman's k3).
    const approxKl = tf.mean(tf.sub(tf.sub(ratio, 1), logRatio)) as tf.Scalar;
    const outside = tf.greater(tf.abs(tf.sub(ratio, 1)), clipCoef);
    const clipFraction = tf.mean(tf.cast(outside, 'float32')) as tf.Scalar;
    return { approxKl, clipFraction };
  });
}

/** Standardises advantages to mean 0, std 1 (population std; 1e-8 guards a constant batch). */
export function normalise(x: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => {
    const { mean, variance } = tf.moments(x);
    return tf.div(tf.sub(x, mean), tf.add(tf.sqrt(variance), 1e-8));
  });
}
