// Hyperparameters by maximising the log marginal likelihood (plus a log prior, if one is
// given: MAP) over log-parameters, with iRprop- (sign-based steps that adapt per parameter:
// robust to the very different scales of the gradient components and needs no line search),
// from a few starts. The work is bounded: restarts × iterations evaluations of an O(n³)
// likelihood.
import type { Rng } from '../../envs/core/index.ts';
import { GaussianProcess, logMarginalLikelihood, standardise } from './gp.ts';
import type { DimKind, GpHyper } from './kernel.ts';

export interface GpBounds {
  /** [min, max] of every length scale, in input units. */
  lengthScale: [number, number];
  /** [min, max] of s², in standardised output units. */
  signalVariance: [number, number];
  /** [min, max] of σ_n², in standardised output units. */
  noiseVariance: [number, number];
}

export const DEFAULT_GP_BOUNDS: GpBounds = {
  lengthScale: [0.01, 10],
  signalVariance: [0.05, 20],
  noiseVariance: [1e-6, 1],
};

export interface GpFitOptions {
  kinds: readonly DimKind[];
  /** Optimiser starts: `init`, the default start, then log-uniform ones in the bounds. */
  restarts: number;
  /** Rprop iterations per start. */
  iterations: number;
  bounds?: GpBounds;
  /** The first start (a warm start from the previous fit); defaults to mid-range values. */
  init?: GpHyper;
  /**
   * A Gamma(shape, rate) prior on the length scales of continuous dimensions: the fit maximises
   * the posterior (MAP) instead of the likelihood alone. Absent: plain maximum likelihood.
   * Categorical dimensions keep the likelihood alone: their distance is 0 or 1 (same category
   * or not), not a distance in the unit cube, so a unit-cube prior says nothing about them, and
   * it would tie how much categories share to a fixed value (in the scheduler study a prior
   * there kept BO on the first good policy it met instead of trying the others).
   */
  lengthScalePrior?: GammaPrior;
}

export interface GammaPrior {
  shape: number;
  rate: number;
}

/**
 * Gamma(3, 6) on length scales in the unit cube (mode 1/3, mean 1/2): BoTorch's long-standing
 * default. With a few dozen points in several dimensions the likelihood alone swings length
 * scales between their bounds from one step to the next (a dimension "irrelevant" at 10, then
 * decisive at 0.1); the prior keeps them where a unit-cube problem usually has them unless the
 * data insist.
 */
export const DEFAULT_LENGTH_SCALE_PRIOR: GammaPrior = { shape: 3, rate: 6 };

/**
 * log p(log ℓ) of a Gamma(k, β) prior on ℓ, with the Jacobian of θ = log ℓ, up to a constant:
 * k θ - β e^θ; its derivative in θ is k - β ℓ.
 */
function logPriorTheta(theta: number, p: GammaPrior): { value: number; grad: number } {
  const l = Math.exp(theta);
  return { value: p.shape * theta - p.rate * l, grad: p.shape - p.rate * l };
}

const toTheta = (h: GpHyper): number[] => [
  ...h.lengthScales.map(Math.log),
  Math.log(h.signalVariance),
  Math.log(h.noiseVariance),
];

function fromTheta(theta: readonly number[], d: number): GpHyper {
  return {
    lengthScales: theta.slice(0, d).map(Math.exp),
    signalVariance: Math.exp(theta[d] as number),
    noiseVariance: Math.exp(theta[d + 1] as number),
  };
}

function logBounds(b: GpBounds, d: number): Array<[number, number]> {
  const lg = (r: [number, number]): [number, number] => [Math.log(r[0]), Math.log(r[1])];
  return [
    ...new Array<[number, number]>(d).fill(lg(b.lengthScale)),
    lg(b.signalVariance),
    lg(b.noiseVariance),
  ];
}

/** Iterations without a meaningful gain after which a start counts as converged. */
const STALL_ITERATIONS = 6;
const MIN_GAIN = 1e-4;

/**
 * Maximises `f` (value and gradient) from `start` with iRprop-; returns the best point seen.
 * Stops early once the best value has not grown by MIN_GAIN for STALL_ITERATIONS iterations
 * (warm starts usually converge in a few).
 */
function rprop(
  f: (theta: number[]) => { value: number; grad?: number[] },
  start: number[],
  bounds: ReadonlyArray<[number, number]>,
  iterations: number,
): { theta: number[]; value: number } {
  const theta = start.map((t, i) => clampTo(t, bounds[i] as [number, number]));
  const step = new Array<number>(theta.length).fill(0.1);
  let prevGrad = new Array<number>(theta.length).fill(0);
  let best = { theta: [...theta], value: -Infinity };
  let lastGainAt = 0;
  for (let it = 0; it < iterations && it - lastGainAt <= STALL_ITERATIONS; it++) {
    const { value, grad } = f(theta);
    if (!grad || !Number.isFinite(value)) break;
    if (value > best.value + MIN_GAIN) lastGainAt = it;
    if (value > best.value) best = { theta: [...theta], value };
    const g = grad.map((gi, i) => {
      const s = gi * (prevGrad[i] as number);
      if (s > 0) step[i] = Math.min((step[i] as number) * 1.2, 1);
      else if (s < 0) step[i] = Math.max((step[i] as number) * 0.5, 1e-6);
      return s < 0 ? 0 : gi; // iRprop-: after a sign change, skip this parameter once
    });
    g.forEach((gi, i) => {
      const b = bounds[i] as [number, number];
      theta[i] = clampTo((theta[i] as number) + Math.sign(gi) * (step[i] as number), b);
    });
    prevGrad = g;
  }
  return best;
}

const clampTo = (v: number, [lo, hi]: [number, number]): number => Math.min(hi, Math.max(lo, v));

/** The default first start: mid-range length scales, unit signal, small noise. */
export function defaultHyper(
  kinds: readonly DimKind[],
  bounds: GpBounds = DEFAULT_GP_BOUNDS,
): GpHyper {
  return {
    lengthScales: kinds.map((k) => clampTo(k === 'categorical' ? 1 : 0.3, bounds.lengthScale)),
    signalVariance: clampTo(1, bounds.signalVariance),
    noiseVariance: clampTo(1e-3, bounds.noiseVariance),
  };
}

/** A GP on (x, y) with hyperparameters fitted by maximum marginal likelihood. */
export function fitGp(
  x: readonly (readonly number[])[],
  y: readonly number[],
  opts: GpFitOptions,
  rng: Rng,
): GaussianProcess {
  const d = opts.kinds.length;
  const bounds = opts.bounds ?? DEFAULT_GP_BOUNDS;
  const lb = logBounds(bounds, d);
  const xs = x.map((r) => [...r]);
  const { z } = standardise(y);
  const prior = opts.lengthScalePrior;
  const f = (theta: number[]): { value: number; grad?: number[] } => {
    const r = logMarginalLikelihood(xs, z, opts.kinds, fromTheta(theta, d), true);
    if (!r.grad) return { value: r.lml };
    const grad = [...r.grad];
    let value = r.lml;
    for (let i = 0; prior && i < d; i++) {
      if (opts.kinds[i] === 'categorical') continue;
      const p = logPriorTheta(theta[i] as number, prior);
      value += p.value;
      grad[i] = (grad[i] as number) + p.grad;
    }
    return { value, grad };
  };
  // A warm start can sit in the all-noise basin of an early fit on a handful of points, which
  // the likelihood of later data no longer favours; the default start is always tried too.
  const starts = [toTheta(opts.init ?? defaultHyper(opts.kinds, bounds))];
  if (opts.init && opts.restarts > 1) starts.push(toTheta(defaultHyper(opts.kinds, bounds)));
  while (starts.length < opts.restarts) starts.push(lb.map(([lo, hi]) => rng.uniform(lo, hi)));
  let best = { theta: starts[0] as number[], value: -Infinity };
  for (const start of starts) {
    const r = rprop(f, start, lb, opts.iterations);
    if (r.value > best.value) best = r;
  }
  return GaussianProcess.condition(xs, y, opts.kinds, fromTheta(best.theta, d));
}
