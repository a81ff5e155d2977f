// A plain multi-layer perceptron held as TF.js variables [W0, b0, W1, b1, ...]. Explicit
// variables rather than tf.layers: the learners need exact weight copies (target networks),
// flat weight lists for artifacts and seeded initialisation, and nothing else from Keras.
import { tf } from './backend.ts';
import { ArtifactError } from './errors.ts';

export type Activation = 'relu' | 'tanh';

export interface MlpSpec {
  inputSize: number;
  hiddenSizes: readonly number[];
  outputSize: number;
  activation: Activation;
  /**
   * Scale on the last layer's initial weights. 1 for Q and value heads; 0.01 for a policy
   * head, so the first policy is near uniform (as CleanRL's orthogonal init with gain 0.01).
   */
  outputGain: number;
}

/** Weights as plain arrays: one row-major list per variable and its shape. */
export interface WeightArrays {
  shapes: number[][];
  weights: number[][];
}

export class Mlp {
  readonly params: tf.Variable[];

  /** `seed` drives TF.js's seeded Glorot initialiser, one derived seed per layer. */
  constructor(
    readonly spec: MlpSpec,
    seed: number,
  ) {
    const sizes = [spec.inputSize, ...spec.hiddenSizes, spec.outputSize];
    this.params = [];
    try {
      for (let i = 0; i + 1 < sizes.length; i++) {
        const shape = [sizes[i] as number, sizes[i + 1] as number];
        const gain = i + 2 === sizes.length ? spec.outputGain : 1;
        // tidy frees the initial values; the variables made from them are never tidied away.
        tf.tidy(() => {
          const init = tf.initializers.glorotUniform({ seed: (seed + 7919 * i) >>> 0 });
          this.params.push(
            tf.variable(tf.mul(init.apply(shape), gain)),
            tf.variable(tf.zeros([shape[1] as number])),
          );
        });
      }
    } catch (e) {
      // A bad size met midway (say a layer of NaN width): free the layers already made, or
      // nobody can (the network is never returned).
      this.dispose();
      throw e;
    }
  }

  /** Forward pass: [batch, inputSize] -> [batch, outputSize]. Call inside tf.tidy. */
  apply(x: tf.Tensor2D): tf.Tensor2D {
    let h: tf.Tensor2D = x;
    const layers = this.params.length / 2;
    for (let i = 0; i < layers; i++) {
      h = tf.add(
        tf.matMul(h, this.params[2 * i] as tf.Variable),
        this.params[2 * i + 1] as tf.Variable,
      );
      if (i + 1 < layers) h = this.spec.activation === 'relu' ? tf.relu(h) : tf.tanh(h);
    }
    return h;
  }

  /** Makes this network an exact copy of `other` (same spec): the target-network sync. */
  copyFrom(other: Mlp): void {
    this.params.forEach((p, i) => p.assign(other.params[i] as tf.Variable));
  }

  getWeights(): WeightArrays {
    return {
      shapes: this.params.map((p) => [...p.shape]),
      weights: this.params.map((p) => Array.from(p.dataSync())),
    };
  }

  /**
   * Loads weights saved by getWeights; shapes must match this network's exactly. All are
   * checked before any is assigned, so a refused load leaves the network as it was.
   */
  setWeights(w: WeightArrays, field = 'weights'): void {
    if (w.shapes.length !== this.params.length || w.weights.length !== this.params.length) {
      throw new ArtifactError(
        field,
        `${field}: expected ${this.params.length} tensors, got ${w.weights.length}`,
      );
    }
    this.params.forEach((p, i) => {
      const shape = w.shapes[i] as number[];
      const values = w.weights[i] as number[];
      const want = p.shape.join('x');
      if (shape.join('x') !== want) {
        throw new ArtifactError(
          `${field}[${i}]`,
          `${field}[${i}]: shape ${shape.join('x')} != ${want}`,
        );
      }
      if (values.length !== p.size || !values.every(Number.isFinite)) {
        throw new ArtifactError(`${field}[${i}]`, `${field}[${i}]: need ${p.size} finite numbers`);
      }
    });
    this.params.forEach((p, i) =>
      tf.tidy(() => p.assign(tf.tensor(w.weights[i] as number[], p.shape))),
    );
  }

  dispose(): void {
    this.params.forEach((p) => p.dispose());
  }
}
