// The scorer of net.ts in TF.js, for training: one MLP (learners/tf Mlp) applied to every
// candidate's feature row with the same weights, so a decision's logits are the candidates'
// scores and the policy is a softmax over the legal ones (Decima's per-node scoring). Why not
// PpoAgent: its actor is an MLP over the whole flattened window, so a task's score would
// depend on its slot and on the other tasks; such a network cannot be run as a per-task score
// in ScoredPolicy, which is what the live scheduler calls.
import { tf } from '../tf/backend.ts';
import { Mlp, type Activation } from '../tf/mlp.ts';
import { cloneScoreNet, INPUT_STD_MIN, type ScoreNet } from './net.ts';

export interface ScorerSpec {
  inputSize: number;
  hiddenSizes: number[];
  activation: Activation;
}

/**
 * A constant feature keeps scale 1: dividing by ~0 would blow up any value seen later (the
 * same floor artifacts are checked against).
 */
const STD_FLOOR = INPUT_STD_MIN;

/** Per-column mean and std of `rows` (row-major, `width` columns), for input standardisation. */
export function columnStats(
  rows: Float32Array,
  width: number,
  count: number,
): { mean: number[]; std: number[]; constant: boolean[] } {
  const mean = new Array<number>(width).fill(0);
  const sq = new Array<number>(width).fill(0);
  for (let r = 0; r < count; r++) {
    for (let c = 0; c < width; c++) {
      const v = rows[r * width + c] as number;
      mean[c] = (mean[c] as number) + v;
      sq[c] = (sq[c] as number) + v * v;
    }
  }
  const n = Math.max(1, count);
  const m = mean.map((s) => s / n);
  const sd = sq.map((s, c) => Math.sqrt(Math.max(0, s / n - (m[c] as number) ** 2)));
  const constant = sd.map((x) => !(x > STD_FLOOR));
  return { mean: m, std: sd.map((x, c) => (constant[c] ? 1 : x)), constant };
}

export class ScorerModel {
  readonly mlp: Mlp;
  /** The linear path of net.ts: [inputSize], on the standardised input. */
  readonly skip: tf.Variable;
  private mean: tf.Tensor1D;
  private invStd: tf.Tensor1D;
  private meanList: number[];
  private stdList: number[];

  /** Call loadTfBackend() first. The output layer starts small, so the first policy is near uniform. */
  constructor(
    readonly spec: ScorerSpec,
    seed: number,
  ) {
    this.mlp = new Mlp({ ...spec, outputSize: 1, outputGain: 0.01 }, seed);
    this.skip = tf.variable(tf.zeros([spec.inputSize]));
    this.meanList = new Array<number>(spec.inputSize).fill(0);
    this.stdList = new Array<number>(spec.inputSize).fill(1);
    this.mean = tf.keep(tf.tensor1d(this.meanList));
    this.invStd = tf.keep(tf.tensor1d(this.stdList));
  }

  /** Sets the input standardisation (from the training data, before training starts). */
  setNormaliser(mean: readonly number[], std: readonly number[]): void {
    this.meanList = [...mean];
    this.stdList = [...std];
    tf.dispose([this.mean, this.invStd]);
    this.mean = tf.keep(tf.tensor1d(this.meanList));
    this.invStd = tf.keep(tf.tensor1d(this.stdList.map((s) => 1 / s)));
  }

  /** Scores of `rows` ([count, inputSize] flat): [count]. Call inside tf.tidy. */
  scores(rows: tf.Tensor2D): tf.Tensor1D {
    const x = tf.mul(tf.sub(rows, this.mean), this.invStd) as tf.Tensor2D;
    const linear = tf.matMul(x, tf.reshape(this.skip, [this.spec.inputSize, 1]));
    return tf.reshape(tf.add(this.mlp.apply(x), linear), [rows.shape[0]]) as tf.Tensor1D;
  }

  /** Sets the linear path (e.g. a heuristic's criterion as the starting point). */
  setSkip(weights: readonly number[]): void {
    if (weights.length !== this.spec.inputSize || !weights.every(Number.isFinite)) {
      throw new RangeError(`skip must be ${this.spec.inputSize} finite numbers`);
    }
    // tidy frees the tensor1d the values arrive in (assign copies it into the variable).
    tf.tidy(() => this.skip.assign(tf.tensor1d([...weights])));
  }

  /** Makes the net the linear scorer `skip`: the MLP's output layer is zeroed (still trained). */
  setLinear(skip: readonly number[]): void {
    this.setSkip(skip);
    const w = this.mlp.getWeights();
    const last = w.weights.length - 2;
    w.weights = w.weights.map((a, k) => (k >= last ? a.map(() => 0) : a));
    this.mlp.setWeights(w);
  }

  get params(): tf.Variable[] {
    return [...this.mlp.params, this.skip];
  }

  /** The plain-number net that net.ts runs: the same function without TF.js. */
  toNet(): ScoreNet {
    return {
      ...this.spec,
      hiddenSizes: [...this.spec.hiddenSizes],
      inputMean: [...this.meanList],
      inputStd: [...this.stdList],
      skip: Array.from(this.skip.dataSync()),
      ...this.mlp.getWeights(),
    };
  }

  /** Loads a net's weights and normaliser (its sizes must equal this model's). */
  fromNet(net: ScoreNet): void {
    const n = cloneScoreNet(net);
    this.setNormaliser(n.inputMean, n.inputStd);
    this.setSkip(n.skip);
    this.mlp.setWeights(n, 'net');
  }

  dispose(): void {
    this.mlp.dispose();
    tf.dispose([this.mean, this.invStd, this.skip]);
  }
}
