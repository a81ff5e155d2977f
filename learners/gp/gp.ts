// A Gaussian process regressor: constant mean (the data's mean), Matérn 5/2 ARD kernel,
// Gaussian observation noise. Outputs are standardised (zero mean, unit variance) before the
// kernel sees them, so hyperparameter bounds mean the same whatever the metric's units.
import {
  cholesky,
  dot,
  inverseFromCholesky,
  solveCholesky,
  solveLower,
  type Lower,
} from './linalg.ts';
import { correlation, type DimKind, type GpHyper } from './kernel.ts';

export interface GpPrediction {
  mean: number[];
  /** Variance of the latent function (observation noise excluded), in output units². */
  variance: number[];
}

export interface LmlResult {
  /** Log marginal likelihood of the standardised outputs; -Infinity if K is not factorisable. */
  lml: number;
  /** ∂lml/∂θ for θ = [log ℓ_1..log ℓ_d, log s², log σ_n²], when asked for. */
  grad?: number[];
}

interface Factor {
  l: Lower;
  alpha: number[];
  lml: number;
}

function signalMatrix(x: readonly number[][], kinds: readonly DimKind[], h: GpHyper): number[][] {
  const n = x.length;
  const k = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  for (let i = 0; i < n; i++) {
    (k[i] as number[])[i] = h.signalVariance;
    for (let j = 0; j < i; j++) {
      const v =
        h.signalVariance * correlation(x[i] as number[], x[j] as number[], kinds, h.lengthScales);
      (k[i] as number[])[j] = v;
      (k[j] as number[])[i] = v;
    }
  }
  return k;
}

function factorise(y: readonly number[], h: GpHyper, ksig: number[][]): Factor | undefined {
  const n = y.length;
  const kmat = ksig.map((row, i) => row.map((v, j) => (i === j ? v + h.noiseVariance : v)));
  const c = cholesky(kmat);
  if (!c) return undefined;
  const alpha = solveCholesky(c.l, y);
  let logDet = 0;
  for (let i = 0; i < n; i++) logDet += Math.log((c.l[i] as number[])[i] as number);
  const lml = -0.5 * dot(y, alpha) - logDet - 0.5 * n * Math.log(2 * Math.PI);
  return { l: c.l, alpha, lml };
}

/** The log marginal likelihood of standardised outputs `y`, and its gradient if asked. */
export function logMarginalLikelihood(
  x: readonly number[][],
  y: readonly number[],
  kinds: readonly DimKind[],
  h: GpHyper,
  withGradient: boolean,
): LmlResult {
  const ksig = signalMatrix(x, kinds, h);
  const f = factorise(y, h, ksig);
  if (!f) return { lml: -Infinity };
  if (!withGradient) return { lml: f.lml };
  const n = x.length;
  const d = kinds.length;
  const kinv = inverseFromCholesky(f.l);
  const grad = new Array<number>(d + 2).fill(0);
  const sq = new Array<number>(d).fill(0);
  let gSignal = 0;
  let gNoise = 0;
  for (let i = 0; i < n; i++) {
    const ai = f.alpha[i] as number;
    const kinvRow = kinv[i] as number[];
    const wii = ai * ai - (kinvRow[i] as number);
    gSignal += 0.5 * wii * h.signalVariance;
    gNoise += 0.5 * wii * h.noiseVariance;
    for (let j = 0; j < i; j++) {
      // Off-diagonal pairs appear twice in the trace: ½ · 2 · W_ij · ∂K_ij.
      const w = ai * (f.alpha[j] as number) - (kinvRow[j] as number);
      gSignal += w * ((ksig[i] as number[])[j] as number);
      correlation(x[i] as number[], x[j] as number[], kinds, h.lengthScales, sq);
      const common = w * h.signalVariance;
      for (let k = 0; k < d; k++) grad[k] = (grad[k] as number) + common * (sq[k] as number);
    }
  }
  grad[d] = gSignal;
  grad[d + 1] = gNoise;
  return { lml: f.lml, grad };
}

export class GaussianProcess {
  readonly hyper: GpHyper;
  readonly kinds: readonly DimKind[];
  /** Log marginal likelihood of the standardised data under `hyper`. */
  readonly lml: number;
  readonly yMean: number;
  /** Output scale: the standard deviation of the observed outputs (1 if they are constant). */
  readonly yStd: number;
  private readonly x: number[][];
  private readonly factor: Factor;

  private constructor(
    x: number[][],
    kinds: DimKind[],
    hyper: GpHyper,
    yMean: number,
    yStd: number,
    factor: Factor,
  ) {
    this.x = x;
    this.kinds = kinds;
    this.hyper = hyper;
    this.yMean = yMean;
    this.yStd = yStd;
    this.factor = factor;
    this.lml = factor.lml;
  }

  /**
   * Conditions a GP with fixed hyperparameters on the data. Throws if the kernel matrix cannot
   * be factorised even with jitter (duplicate points and zero noise, or NaN inputs).
   */
  static condition(
    x: readonly (readonly number[])[],
    y: readonly number[],
    kinds: readonly DimKind[],
    hyper: GpHyper,
  ): GaussianProcess {
    if (x.length === 0 || x.length !== y.length) {
      throw new Error(
        `GaussianProcess: need as many outputs as inputs (>0), got ${x.length}/${y.length}`,
      );
    }
    const { z, mean, std } = standardise(y);
    const xs = x.map((r) => [...r]);
    const f = factorise(z, hyper, signalMatrix(xs, kinds, hyper));
    if (!f) throw new Error('GaussianProcess: kernel matrix is not positive definite');
    return new GaussianProcess(
      xs,
      [...kinds],
      { ...hyper, lengthScales: [...hyper.lengthScales] },
      mean,
      std,
      f,
    );
  }

  /** Posterior mean and latent variance at each point, in output units. */
  predict(points: readonly (readonly number[])[]): GpPrediction {
    const mean: number[] = [];
    const variance: number[] = [];
    const h = this.hyper;
    for (const p of points) {
      const ks = this.x.map(
        (xi) => h.signalVariance * correlation(p, xi, this.kinds, h.lengthScales),
      );
      const v = solveLower(this.factor.l, ks);
      mean.push(this.yMean + this.yStd * dot(ks, this.factor.alpha));
      variance.push(this.yStd * this.yStd * Math.max(0, h.signalVariance - dot(v, v)));
    }
    return { mean, variance };
  }
}

/**
 * The mean and (population) standard deviation of `y`. Finite outputs whose squared deviations
 * overflow (near 1e155 and up) take a scaled path: there the std became Infinity, every
 * standardised output 0, and the GP lost their order. Other outputs are computed as before, so
 * seeded runs reproduce bit for bit.
 */
export function meanAndStd(y: readonly number[]): { mean: number; std: number; variance: number } {
  const n = Math.max(1, y.length);
  let mean = y.reduce((s, v) => s + v, 0) / n;
  if (!Number.isFinite(mean)) mean = y.reduce((s, v) => s + v / n, 0);
  const variance = y.reduce((s, v) => s + (v - mean) ** 2, 0) / n;
  if (Number.isFinite(variance)) return { mean, std: Math.sqrt(variance), variance };
  const scale = y.reduce((m, v) => Math.max(m, Math.abs(v - mean)), 0);
  const sumSq = y.reduce((s, v) => s + ((v - mean) / scale) ** 2, 0);
  return { mean, std: scale * Math.sqrt(sumSq / n), variance };
}

/** Outputs shifted to zero mean and scaled to unit variance (scale 1 if they are constant). */
export function standardise(y: readonly number[]): { z: number[]; mean: number; std: number } {
  const m = meanAndStd(y);
  // The same threshold as ever, on the variance (sqrt of the double above 1e-24 is 1e-12).
  const std = m.variance > 1e-24 ? m.std : 1;
  return { z: y.map((v) => (v - m.mean) / std), mean: m.mean, std };
}
