// Small statistics for the gates: mean, sample standard deviation, and Student's t quantiles
// for two-sided intervals (t975 from a table for df <= 30, else computed; tQuantile at any
// level, for the gate's adjusted looks).

import { mean } from '../../envs/core/stats.ts';
import { tCdf, tQuantile } from '../../envs/core/student-t.ts';

export { mean, tCdf, tQuantile };

export function sampleStd(xs: readonly number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1));
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
