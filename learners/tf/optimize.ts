// One gradient step with global-norm clipping (TF.js optimizers do not clip). Shared by DQN
// and PPO so both clip the same way.
import { tf } from './backend.ts';

/**
 * Computes `loss()` and its gradients with respect to `vars`, scales the gradients so their
 * global L2 norm is at most `maxGradNorm` (null: no clipping), and applies them.
 * Returns the loss value before the step.
 */
export function clippedStep(
  optimizer: tf.Optimizer,
  vars: tf.Variable[],
  loss: () => tf.Scalar,
  maxGradNorm: number | null,
): number {
  return tf.tidy(() => {
    const { value, grads } = tf.variableGrads(loss, vars);
    const names = Object.keys(grads);
    if (maxGradNorm !== null) {
      const sq = names.map((n) => tf.sum(tf.square(grads[n] as tf.Tensor)));
      const norm = tf.sqrt(tf.addN(sq));
      const scale = tf.minimum(1, tf.div(maxGradNorm, tf.add(norm, 1e-6)));
      for (const n of names) grads[n] = tf.mul(grads[n] as tf.Tensor, scale);
    }
    optimizer.applyGradients(grads);
    return value.dataSync()[0] as number;
  });
}
