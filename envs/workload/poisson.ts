// Poisson arrivals: the memoryless baseline every queueing result is stated against. Times are
// in milliseconds from 0; the generators take a seeded Rng so a run replays from its seed.
import type { Rng } from '../core/rng.ts';
import { WorkloadConfigError, requireNonNegative, requirePositive } from './config.ts';

/** The most arrivals one generator call may produce unless the caller raises it. */
export const DEFAULT_MAX_ARRIVALS = 1_000_000;

export interface PoissonArrivalsConfig {
  ratePerS: number;
  durationMs: number;
  /** Bound on the arrivals produced; exceeding it is a configuration error, not a silent cut. */
  maxArrivals?: number;
}

/** Collects increasing times from `nextGapMs` until durationMs, bounded by maxArrivals. */
export function collectArrivals(
  durationMs: number,
  maxArrivals: number,
  nextGapMs: (nowMs: number) => number,
): Float64Array {
  const out: number[] = [];
  let t = nextGapMs(0);
  while (t < durationMs) {
    if (out.length >= maxArrivals) {
      throw new WorkloadConfigError('maxArrivals', `exceeded (${maxArrivals}) before durationMs`);
    }
    out.push(t);
    t += nextGapMs(t);
  }
  return Float64Array.from(out);
}

/** Arrival times (ms, increasing) of a Poisson process of rate ratePerS over [0, durationMs). */
export function poissonArrivals(rng: Rng, cfg: PoissonArrivalsConfig): Float64Array {
  requirePositive('ratePerS', cfg.ratePerS);
  requireNonNegative('durationMs', cfg.durationMs);
  const ratePerMs = cfg.ratePerS / 1000;
  return collectArrivals(cfg.durationMs, cfg.maxArrivals ?? DEFAULT_MAX_ARRIVALS, () =>
    rng.exponential(ratePerMs),
  );
}

/**
 * A Poisson-distributed count with the given mean: Knuth's product method for small means,
 * the normal approximation (rounded, clipped at 0) above 30 where Knuth's loop grows long and
 * the approximation's error is below what a per-step load needs.
 */
export function poissonCount(rng: Rng, mean: number): number {
  requireNonNegative('mean', mean);
  if (mean === 0) return 0;
  if (mean > 30) return Math.max(0, Math.round(rng.normal(mean, Math.sqrt(mean))));
  const limit = Math.exp(-mean);
  let k = 0;
  let p = rng.next();
  // Bounded: P(k > 200) at mean 30 is far below 1e-40.
  while (p > limit && k < 200) {
    k++;
    p *= rng.next();
  }
  return k;
}
