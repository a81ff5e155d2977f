// The statistics the claims are judged with: a paired 95% confidence interval (Student's t)
// where seeds are workload draws shared by both entries, and an exact rank test (Mann-Whitney
// U, the permutation distribution of U with ties) where seeds are independent runs of a tuner
// on one fixed objective, which pairing by seed number would not make comparable. Everything
// here is deterministic (no resampling), so a result file's claims do not change on a re-run.
import { tQuantile } from '../envs/core/student-t.ts';
import { normalCdf } from '../learners/gp/acquisition.ts';
import { mean } from './results.ts';

/** Two-sided level of every interval and test here. */
export const CONFIDENCE = 0.95;

export interface Interval {
  mean: number;
  lo: number;
  hi: number;
  n: number;
}

/**
 * The 95% confidence interval of the mean of `xs` (Student's t, n - 1 degrees of freedom).
 * With one value the interval is unbounded; with no spread it is the mean itself.
 */
export function meanInterval(xs: readonly number[], confidence = CONFIDENCE): Interval {
  checkFinite('meanInterval', 'xs', xs);
  const n = xs.length;
  const m = mean(xs);
  if (n < 2) return { mean: m, lo: -Infinity, hi: Infinity, n };
  const sd = Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (n - 1));
  const half = sd === 0 ? 0 : (tQuantile(0.5 + confidence / 2, n - 1) * sd) / Math.sqrt(n);
  return { mean: m, lo: m - half, hi: m + half, n };
}

/** Values must be finite numbers: a NaN drops out of every comparison and reads as a result. */
function checkFinite(fn: string, field: string, xs: readonly number[]): void {
  const bad = xs.findIndex((v) => typeof v !== 'number' || !Number.isFinite(v));
  if (bad >= 0)
    throw new RangeError(`${fn}: ${field}[${bad}] must be a finite number, got ${String(xs[bad])}`);
}

/** Most group assignments the exact rank test enumerates; beyond, the normal approximation. */
const MAX_EXACT_SPLITS = 200_000;

function binomial(n: number, k: number): number {
  let r = 1;
  for (let i = 1; i <= k; i++) r = (r * (n - k + i)) / i;
  return r;
}

/** U of group x against y: pairs where x is larger, ties counting one half. */
function uStatistic(x: readonly number[], y: readonly number[]): number {
  let u = 0;
  for (const a of x) for (const b of y) u += a > b ? 1 : a === b ? 0.5 : 0;
  return u;
}

export interface RankTest {
  /** Pairs (x_i, y_j) with x_i > y_j, ties counting one half; out of `pairs`. */
  u: number;
  pairs: number;
  /** Two-sided p-value of "x and y come from the same distribution". */
  p: number;
  exact: boolean;
}

/**
 * The Mann-Whitney U test of x against y, two-sided. Exact (the permutation distribution of
 * U over every split of the pooled values, ties included) while the splits are few enough,
 * else the normal approximation with the tie correction.
 */
export function mannWhitney(x: readonly number[], y: readonly number[]): RankTest {
  checkFinite('mannWhitney', 'x', x);
  checkFinite('mannWhitney', 'y', y);
  const [n, m] = [x.length, y.length];
  const pairs = n * m;
  const u = uStatistic(x, y);
  if (n === 0 || m === 0) return { u, pairs, p: 1, exact: true };
  const centre = pairs / 2;
  const observed = Math.abs(u - centre);
  const pooled = [...x, ...y];
  const total = pooled.length;
  if (binomial(total, n) <= MAX_EXACT_SPLITS) {
    let extreme = 0;
    let splits = 0;
    const pick: number[] = [];
    const walk = (from: number): void => {
      if (pick.length === n) {
        const inX = new Set(pick);
        const gx = pick.map((i) => pooled[i] as number);
        const gy = pooled.filter((_, i) => !inX.has(i));
        splits++;
        if (Math.abs(uStatistic(gx, gy) - centre) >= observed - 1e-9) extreme++;
        return;
      }
      for (let i = from; i <= total - (n - pick.length); i++) {
        pick.push(i);
        walk(i + 1);
        pick.pop();
      }
    };
    walk(0);
    return { u, pairs, p: extreme / splits, exact: true };
  }
  const counts = new Map<number, number>();
  for (const v of pooled) counts.set(v, (counts.get(v) ?? 0) + 1);
  let tieTerm = 0;
  for (const c of counts.values()) tieTerm += c ** 3 - c;
  const variance = ((n * m) / 12) * (total + 1 - tieTerm / (total * (total - 1)));
  if (variance <= 0) return { u, pairs, p: 1, exact: false };
  const z = Math.max(0, observed - 0.5) / Math.sqrt(variance);
  return { u, pairs, p: Math.min(1, 2 * (1 - normalCdf(z))), exact: false };
}
