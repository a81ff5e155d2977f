// Summary statistics the envs report. Percentiles are nearest-rank (no interpolation), so a
// hand computation on a few values gives exactly the reported number; an empty sample has
// percentile and mean 0, so a window with nothing in it reports zeros rather than NaN.

/**
 * Nearest-rank percentile of values sorted ascending: the ceil(q/100 * n)-th smallest, clamped
 * to the first and the last; 0 when empty. For several percentiles of one sample, sort once.
 */
export function percentileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return 0;
  const rank = Math.min(n, Math.max(1, Math.ceil((q / 100) * n)));
  return sorted[rank - 1] as number;
}

/** As percentileSorted, of values in any order (sorted on a copy). */
export function percentile(values: ArrayLike<number>, q: number): number {
  return percentileSorted(Float64Array.from(values).sort(), q);
}

/** Arithmetic mean, summed in order; 0 when empty. */
export function mean(values: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i] as number;
  return values.length === 0 ? 0 : sum / values.length;
}
