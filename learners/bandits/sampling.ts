// Draws Thompson sampling needs beyond the Rng's own: Gamma (Marsaglia and Tsang 2000) and
// Beta (a ratio of Gammas).
import type { Rng } from '../../envs/core/index.ts';

/** Gamma with the given shape and rate (mean shape / rate). */
export function sampleGamma(rng: Rng, shape: number, rate: number): number {
  if (shape < 1) {
    // Boost: Gamma(a) = Gamma(a + 1) · U^(1/a).
    const u = 1 - rng.next(); // in (0, 1]
    return sampleGamma(rng, shape + 1, rate) * Math.pow(u, 1 / shape);
  }
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  // Acceptance is above 95% for every shape >= 1; the bound only guards a broken generator.
  for (let attempt = 0; attempt < 1000; attempt++) {
    let x: number;
    let v: number;
    do {
      x = rng.normal();
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = 1 - rng.next();
    if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return (d * v) / rate;
  }
  return shape / rate;
}

/**
 * The log of a Gamma(shape, 1) draw, the same draw sampleGamma makes: kept in logs through the
 * boost, where U^(1/a) of a tiny shape underflows to 0 (about half the time at a = 0.001).
 */
function logSampleGamma(rng: Rng, shape: number): number {
  if (shape < 1) {
    const u = 1 - rng.next(); // in (0, 1]
    return logSampleGamma(rng, shape + 1) + Math.log(u) / shape;
  }
  return Math.log(sampleGamma(rng, shape, 1));
}

/**
 * Beta(a, b) as X / (X + Y) of two Gamma draws, computed from their logs: with tiny shapes both
 * draws underflow to 0 together, and 0 / 0 was NaN (a quarter of the draws at a = b = 0.001).
 */
export function sampleBeta(rng: Rng, a: number, b: number): number {
  const lx = logSampleGamma(rng, a);
  const ly = logSampleGamma(rng, b);
  return 1 / (1 + Math.exp(ly - lx));
}
