// Summary statistics of a run: completion times, slowdowns, fairness.
import { percentileSorted } from '../core/stats.ts';

/** Jain's fairness index (sum x)^2 / (n sum x^2): 1 when all equal, 1/n when one takes all. */
export function jainIndex(xs: readonly number[]): number {
  if (xs.length === 0) return 1;
  let s = 0;
  let s2 = 0;
  for (const x of xs) {
    if (!Number.isFinite(x) || x < 0)
      throw new RangeError(`jainIndex: values must be finite and >= 0, got ${x}`);
    s += x;
    s2 += x * x;
  }
  return s2 === 0 ? 1 : (s * s) / (xs.length * s2);
}

export function medianOf(xs: number[]): number {
  const s = new Float64Array(xs).sort();
  const n = s.length;
  if (n === 0) return Number.NaN;
  return n % 2 === 1
    ? (s[(n - 1) >> 1] as number)
    : ((s[n / 2 - 1] as number) + (s[n / 2] as number)) / 2;
}

/** One finished (or given-up) job, as the summary counts it. */
export interface JobOutcome {
  tenant: number;
  jctMs: number;
  idealMs: number;
}

export interface JctSummary {
  mean_jct_s: number;
  p50_jct_s: number;
  p99_jct_s: number;
  mean_slowdown: number;
  /** Jain's index over tenants of 1 / (tenant's mean slowdown). */
  jain_fairness: number;
}

export function summariseJobs(outcomes: readonly JobOutcome[], tenants: number): JctSummary {
  if (outcomes.length === 0) {
    return { mean_jct_s: 0, p50_jct_s: 0, p99_jct_s: 0, mean_slowdown: 0, jain_fairness: 1 };
  }
  const jct = new Float64Array(outcomes.length);
  let sum = 0;
  let slowSum = 0;
  const slowByTenant = new Float64Array(tenants);
  const countByTenant = new Float64Array(tenants);
  outcomes.forEach((o, i) => {
    jct[i] = o.jctMs;
    sum += o.jctMs;
    // A job that takes no time at all would divide by zero; 1 ms is the clock's grain.
    const slow = Math.max(1, o.jctMs / Math.max(1, o.idealMs));
    slowSum += slow;
    slowByTenant[o.tenant] = (slowByTenant[o.tenant] as number) + slow;
    countByTenant[o.tenant] = (countByTenant[o.tenant] as number) + 1;
  });
  jct.sort();
  const perTenant: number[] = [];
  for (let t = 0; t < tenants; t++) {
    const c = countByTenant[t] as number;
    if (c > 0) perTenant.push(c / (slowByTenant[t] as number));
  }
  return {
    mean_jct_s: sum / outcomes.length / 1000,
    p50_jct_s: percentileSorted(jct, 50) / 1000,
    p99_jct_s: percentileSorted(jct, 99) / 1000,
    mean_slowdown: slowSum / outcomes.length,
    jain_fairness: jainIndex(perTenant),
  };
}
