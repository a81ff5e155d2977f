// Summaries of message latencies: nearest-rank percentiles (no interpolation, so a hand
// computation on a few messages gives exactly the reported number).

/** Nearest-rank percentile of unsorted values: the ceil(q/100 * n)-th smallest; 0 when empty. */
export function percentile(values: readonly number[] | Float64Array, q: number): number {
  if (values.length === 0) return 0;
  const sorted = Float64Array.from(values).sort();
  const rank = Math.max(1, Math.ceil((q / 100) * sorted.length));
  return sorted[rank - 1] as number;
}

export function mean(values: readonly number[]): number {
  return values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length;
}
