// Percentiles and summaries for benchmark samples.

export { percentile } from '../../envs/core/stats.ts';

export function round(x: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
