// A per-candidate scorer as plain numbers: standardise the candidate's feature row x', then
//   score = skip . x' + MLP(x')
// (a linear path beside a small MLP, "wide and deep"). The linear path can carry a heuristic's
// criterion at full strength from the start (see config.priorWeight); the MLP learns the rest. This is the whole of a trained policy at decision time, so the
// live scheduler and the simulators run it without TensorFlow.js (model.ts is the same network
// in TF.js, for training; a test checks that the two agree). Shared by learners/placement.
import type { Activation, WeightArrays } from '../tf/mlp.ts';
import { ArtifactError } from '../core/errors.ts';

/** The smallest input scale an artifact may carry (the trainer floors its scales here). */
export const INPUT_STD_MIN = 1e-6;

export interface ScoreNet extends WeightArrays {
  inputSize: number;
  hiddenSizes: number[];
  activation: Activation;
  /** x' = (x - inputMean) / inputStd, per input, before the first layer. */
  inputMean: number[];
  inputStd: number[];
  /** Weights of the linear path on the standardised input (zeros: MLP only). */
  skip: number[];
}

/** Scores one feature row: reads `inputSize` numbers of `x` from `offset`. */
export type RowScorer = (x: ArrayLike<number>, offset?: number) => number;

/** Bound on the width of a layer: these nets score a row in microseconds. */
export const SCORE_NET_WIDTH_MAX = 1024;

function fail(field: string, rule: string): never {
  throw new ArtifactError(field, `score net: ${field} ${rule}`);
}

function finiteList(v: unknown, n: number, field: string): number[] {
  if (!Array.isArray(v) || v.length !== n || !v.every((x) => Number.isFinite(x))) {
    fail(field, `must be ${n} finite numbers`);
  }
  return v as number[];
}

/** Checks a net read from an artifact: sizes, activation, shapes and finite values. */
export function checkScoreNet(raw: unknown, field = 'net'): ScoreNet {
  if (typeof raw !== 'object' || raw === null) fail(field, 'must be an object');
  const n = raw as Partial<ScoreNet>;
  const sizeOk = (s: unknown) => Number.isInteger(s) && (s as number) >= 1;
  if (!sizeOk(n.inputSize) || (n.inputSize as number) > SCORE_NET_WIDTH_MAX) {
    fail(`${field}.inputSize`, `must be an integer in [1, ${SCORE_NET_WIDTH_MAX}]`);
  }
  const hidden = n.hiddenSizes;
  if (
    !Array.isArray(hidden) ||
    hidden.length > 8 ||
    !hidden.every((h) => sizeOk(h) && h <= SCORE_NET_WIDTH_MAX)
  ) {
    fail(`${field}.hiddenSizes`, `must be at most 8 integers in [1, ${SCORE_NET_WIDTH_MAX}]`);
  }
  if (n.activation !== 'relu' && n.activation !== 'tanh') {
    fail(`${field}.activation`, "must be 'relu' or 'tanh'");
  }
  const d = n.inputSize as number;
  finiteList(n.inputMean, d, `${field}.inputMean`);
  const std = finiteList(n.inputStd, d, `${field}.inputStd`);
  // The trainer's own floor (model.ts STD_FLOOR): a smaller scale overflows the normalised
  // input (1 / 5e-324 is Infinity, and a feature at its mean then scores NaN in the simulator).
  if (!std.every((s) => s >= INPUT_STD_MIN))
    fail(`${field}.inputStd`, `must be at least ${INPUT_STD_MIN}`);
  finiteList(n.skip, d, `${field}.skip`);
  const sizes = [d, ...hidden, 1];
  const layers = sizes.length - 1;
  if (!Array.isArray(n.shapes) || n.shapes.length !== 2 * layers) {
    fail(`${field}.shapes`, `must list ${2 * layers} tensors`);
  }
  if (!Array.isArray(n.weights) || n.weights.length !== 2 * layers) {
    fail(`${field}.weights`, `must list ${2 * layers} tensors`);
  }
  for (let i = 0; i < layers; i++) {
    const [a, b] = [sizes[i] as number, sizes[i + 1] as number];
    const want = [[a, b], [b]];
    for (let j = 0; j < 2; j++) {
      const k = 2 * i + j;
      const shape = n.shapes[k];
      if (!Array.isArray(shape) || shape.join('x') !== (want[j] as number[]).join('x')) {
        fail(`${field}.shapes[${k}]`, `must be ${(want[j] as number[]).join('x')}`);
      }
      finiteList(n.weights[k], a ** (1 - j) * b, `${field}.weights[${k}]`);
    }
  }
  return n as ScoreNet;
}

/**
 * Compiles a checked net into a row scorer with its buffers allocated once. Not re-entrant:
 * a scorer must not be called from inside itself (ScoredPolicy never does).
 */
export function compileScoreNet(raw: ScoreNet): RowScorer {
  const net = checkScoreNet(raw);
  const d = net.inputSize;
  const mean = Float64Array.from(net.inputMean);
  const invStd = Float64Array.from(net.inputStd, (s) => 1 / s);
  const skip = Float64Array.from(net.skip);
  const sizes = [d, ...net.hiddenSizes, 1];
  const layers = sizes.length - 1;
  const W = net.weights.filter((_, k) => k % 2 === 0).map((w) => Float64Array.from(w));
  const B = net.weights.filter((_, k) => k % 2 === 1).map((b) => Float64Array.from(b));
  const bufs = sizes.map((s) => new Float64Array(s));
  const relu = net.activation === 'relu';
  // An output layer of zeros (the search's answer, or a net with its MLP switched off) makes
  // the MLP its output bias: skip it (a linear policy then scores ~10x faster). The same
  // operations in the same order as below, so the scores are bit for bit the same.
  if ((W[layers - 1] as Float64Array).every((v) => v === 0)) {
    const bias = (B[layers - 1] as Float64Array)[0] as number;
    return (x, offset = 0) => {
      let linear = 0;
      for (let i = 0; i < d; i++) {
        linear += skip[i]! * (((x[offset + i] as number) - mean[i]!) * invStd[i]!);
      }
      return linear + bias;
    };
  }
  return (x, offset = 0) => {
    const x0 = bufs[0] as Float64Array;
    let linear = 0;
    for (let i = 0; i < d; i++) {
      x0[i] = ((x[offset + i] as number) - mean[i]!) * invStd[i]!;
      linear += skip[i]! * x0[i]!;
    }
    for (let l = 0; l < layers; l++) {
      const [a, b] = [sizes[l] as number, sizes[l + 1] as number];
      const src = bufs[l] as Float64Array;
      const dst = bufs[l + 1] as Float64Array;
      const w = W[l] as Float64Array;
      dst.set(B[l] as Float64Array);
      // Row-major [a, b]: input i feeds output j through w[i * b + j], as TF.js's matMul(x, W).
      for (let i = 0; i < a; i++) {
        const xi = src[i] as number;
        if (xi === 0) continue;
        const row = i * b;
        for (let j = 0; j < b; j++) dst[j] = dst[j]! + xi * w[row + j]!;
      }
      if (l + 1 < layers) {
        for (let j = 0; j < b; j++) {
          const v = dst[j] as number;
          dst[j] = relu ? (v > 0 ? v : 0) : Math.tanh(v);
        }
      }
    }
    return linear + ((bufs[layers] as Float64Array)[0] as number);
  };
}

/** A copy that shares no arrays with `net` (artifacts are handed around). */
export function cloneScoreNet(net: ScoreNet): ScoreNet {
  return {
    inputSize: net.inputSize,
    hiddenSizes: [...net.hiddenSizes],
    activation: net.activation,
    inputMean: [...net.inputMean],
    inputStd: [...net.inputStd],
    skip: [...net.skip],
    shapes: net.shapes.map((s) => [...s]),
    weights: net.weights.map((w) => [...w]),
  };
}
