// Output warping for a GP: a monotone map of the observed outputs before the GP sees them.
// Objectives of systems are heavy-tailed in their bad regions (a p99 that explodes, jobs given
// up and charged until the end): standardised as they are, the few terrible points set the
// signal variance, the length scales bend to fit their cliffs, and the good region, where the
// optimum is, looks flat. A monotone warp keeps the order of every point, so the incumbent and
// the direction of improvement are unchanged; only the scale the GP models is.
//
// The warp is the Yeo-Johnson power transform of the standardised outputs with λ chosen by
// maximum likelihood (as HEBO does, Cowen-Rivers et al. 2022): λ < 1 compresses the long tail
// of bad values, and for outputs that are already Gaussian λ stays near 1 (nearly the identity).

import { meanAndStd } from './gp.ts';

/** Yeo-Johnson transform of one value. */
export function yeoJohnson(y: number, lambda: number): number {
  if (y >= 0) {
    return Math.abs(lambda) < 1e-9 ? Math.log1p(y) : (Math.pow(y + 1, lambda) - 1) / lambda;
  }
  const l2 = 2 - lambda;
  return Math.abs(l2) < 1e-9 ? -Math.log1p(-y) : -(Math.pow(1 - y, l2) - 1) / l2;
}

/** The λ search range and step: wide enough for any tail, coarse enough to be cheap. */
const LAMBDA_MIN = -2;
const LAMBDA_MAX = 3;
const LAMBDA_STEP = 0.05;

/**
 * Profile log-likelihood of λ for standardised outputs `z` (a Gaussian fitted to the transformed
 * values, plus the log-Jacobian of the transform, (λ - 1) · `logJac` with `logJac` the sum of
 * sign(z) log(1 + |z|), which does not depend on λ).
 */
function profileLikelihood(z: readonly number[], logJac: number, lambda: number): number {
  const t = z.map((v) => yeoJohnson(v, lambda));
  const n = t.length;
  const mean = t.reduce((s, v) => s + v, 0) / n;
  const variance = t.reduce((s, v) => s + (v - mean) ** 2, 0) / n;
  if (!(variance > 1e-24) || !Number.isFinite(variance)) return -Infinity;
  return -0.5 * n * Math.log(variance) + (lambda - 1) * logJac;
}

export interface OutputWarp {
  /** The fitted λ (1 leaves standardised outputs as they are, up to a shift). */
  lambda: number;
  /** The warped outputs, in the order given. */
  values: number[];
}

/**
 * Standardises `y`, then applies the Yeo-Johnson transform with the maximum-likelihood λ.
 * Constant or too few outputs (< 3) are returned standardised, with λ = 1.
 */
export function warpOutputs(y: readonly number[]): OutputWarp {
  const n = y.length;
  const { mean, std: sd } = meanAndStd(y);
  if (n < 3 || !(sd > 1e-12))
    return { lambda: 1, values: y.map((v) => (sd > 1e-12 ? (v - mean) / sd : 0)) };
  const z = y.map((v) => (v - mean) / sd);
  let logJac = 0;
  for (const v of z) logJac += Math.sign(v) * Math.log1p(Math.abs(v));
  let best = { lambda: 1, ll: profileLikelihood(z, logJac, 1) };
  for (let l = LAMBDA_MIN; l <= LAMBDA_MAX + 1e-9; l += LAMBDA_STEP) {
    const ll = profileLikelihood(z, logJac, l);
    if (ll > best.ll) best = { lambda: l, ll };
  }
  return { lambda: best.lambda, values: z.map((v) => yeoJohnson(v, best.lambda)) };
}
