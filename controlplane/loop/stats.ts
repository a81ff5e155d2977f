// Small statistics for the gates: mean, sample standard deviation, and Student's t quantiles
// for two-sided intervals (t975 from a table for df <= 30, else computed; tQuantile at any
// level, for the gate's adjusted looks).

import { mean } from '../../envs/core/stats.ts';

export { mean };

export function sampleStd(xs: readonly number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1));
}

// ln Γ(x), Lanczos (g = 7, n = 9): about 15 significant digits for x > 0.
const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
  -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6,
  1.5056327351493116e-7,
];
function logGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const z = x - 1;
  let a = LANCZOS[0] as number;
  const t = z + 7.5;
  for (let i = 1; i < 9; i++) a += (LANCZOS[i] as number) / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

// The regularized incomplete beta I_x(a, b), by its continued fraction (Lentz).
function betaInc(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  // The fraction converges fast only below the mean; use the symmetry above it.
  if (x > (a + 1) / (a + b + 2)) return 1 - betaInc(1 - x, b, a);
  const front = Math.exp(
    logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x),
  );
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  d = 1 / (Math.abs(d) < tiny ? tiny : d);
  let f = d;
  for (let m = 1; m <= 300; m++) {
    for (const num of [
      (m * (b - m) * x) / ((a + 2 * m - 1) * (a + 2 * m)),
      -((a + m) * (a + b + m) * x) / ((a + 2 * m) * (a + 2 * m + 1)),
    ]) {
      d = 1 + num * d;
      d = 1 / (Math.abs(d) < tiny ? tiny : d);
      c = 1 + num / c;
      if (Math.abs(c) < tiny) c = tiny;
      f *= c * d;
    }
    if (Math.abs(c * d - 1) < 1e-15) break;
  }
  return (front * f) / a;
}

/** P(T <= t) for Student's t with df degrees of freedom. */
export function tCdf(t: number, df: number): number {
  const tail = 0.5 * betaInc(df / (df + t * t), df / 2, 0.5);
  return t >= 0 ? 1 - tail : tail;
}

/** The p quantile of Student's t with df degrees of freedom (0.5 < p < 1), by bisection. */
export function tQuantile(p: number, df: number): number {
  if (!(df > 0)) throw new Error(`tQuantile: df must be > 0, got ${df}`);
  if (!(p > 0.5 && p < 1)) throw new Error(`tQuantile: p must be in (0.5, 1), got ${p}`);
  let lo = 0;
  let hi = 1;
  while (tCdf(hi, df) < p) hi *= 2;
  for (let i = 0; i < 200 && hi - lo > 1e-12 * hi; i++) {
    const mid = (lo + hi) / 2;
    if (tCdf(mid, df) < p) lo = mid;
    else hi = mid;
  }
  return hi;
}

// t_{0.975, df} for df = 1..30.
const T975 = [
  12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145,
  2.131, 2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048,
  2.045, 2.042,
];

/** The 0.975 quantile of Student's t with df degrees of freedom. */
export function t975(df: number): number {
  if (!(df >= 1)) throw new Error(`t975: df must be >= 1, got ${df}`);
  if (df <= 30) return T975[Math.floor(df) - 1] as number;
  // Exact to the printed digits (a band's top df understated the quantile of the rest).
  if (df <= 120) return Math.round(tQuantile(0.975, Math.floor(df)) * 1000) / 1000;
  // The normal quantile: at most 1% low from df 121 on.
  return 1.96;
}

/** Two-sided confidence interval of the mean at `level` (0.95 by default). */
export function ciMean(xs: readonly number[], level = 0.95): [number, number] {
  const m = mean(xs);
  if (xs.length < 2) return [m, m];
  const df = xs.length - 1;
  const t = level === 0.95 ? t975(df) : tQuantile(1 - (1 - level) / 2, df);
  const half = (t * sampleStd(xs)) / Math.sqrt(xs.length);
  return [m - half, m + half];
}

/** Two-sided 95% confidence interval of the mean. */
export function ci95(xs: readonly number[]): [number, number] {
  return ciMean(xs, 0.95);
}
