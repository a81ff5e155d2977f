// Bursty arrivals: a two-state Markov-modulated Poisson process (calm, burst), the simplest
// model that reproduces what real request traces show and Poisson does not: short spells
// where the rate jumps by an order of magnitude. Sojourn times in each state are exponential.
import type { Rng } from '../core/rng.ts';
import { requireNonNegative, requirePositive } from './config.ts';
import { DEFAULT_MAX_ARRIVALS, collectArrivals } from './poisson.ts';

export interface BurstyArrivalsConfig {
  calmRatePerS: number;
  burstRatePerS: number;
  /** Mean length of a calm spell. */
  meanCalmMs: number;
  /** Mean length of a burst. */
  meanBurstMs: number;
  durationMs: number;
  maxArrivals?: number;
}

/** The long-run mean rate of the process, for sizing a run or comparing with Poisson. */
export function burstyMeanRatePerS(cfg: BurstyArrivalsConfig): number {
  const total = cfg.meanCalmMs + cfg.meanBurstMs;
  return (cfg.calmRatePerS * cfg.meanCalmMs + cfg.burstRatePerS * cfg.meanBurstMs) / total;
}

/** Arrival times (ms, increasing) over [0, durationMs); the process starts calm. */
export function burstyArrivals(rng: Rng, cfg: BurstyArrivalsConfig): Float64Array {
  requirePositive('calmRatePerS', cfg.calmRatePerS);
  requirePositive('burstRatePerS', cfg.burstRatePerS);
  requirePositive('meanCalmMs', cfg.meanCalmMs);
  requirePositive('meanBurstMs', cfg.meanBurstMs);
  requireNonNegative('durationMs', cfg.durationMs);
  let burst = false;
  let switchAtMs = rng.exponential(1 / cfg.meanCalmMs);
  // The exponential is memoryless, so on a state switch the next gap is drawn afresh from the
  // new state's rate starting at the switch time: exact, no thinning needed.
  return collectArrivals(cfg.durationMs, cfg.maxArrivals ?? DEFAULT_MAX_ARRIVALS, (nowMs) => {
    let t = nowMs;
    for (;;) {
      const ratePerMs = (burst ? cfg.burstRatePerS : cfg.calmRatePerS) / 1000;
      const candidate = t + rng.exponential(ratePerMs);
      if (candidate < switchAtMs) return candidate - nowMs;
      t = switchAtMs;
      burst = !burst;
      switchAtMs = t + rng.exponential(1 / (burst ? cfg.meanBurstMs : cfg.meanCalmMs));
      // Ends: every switch moves t forward by a positive exponential; past durationMs the
      // caller stops asking, so returning the gap to a far time is enough.
      if (t >= cfg.durationMs) return t - nowMs + 1;
    }
  });
}
