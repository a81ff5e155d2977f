// Advantages without a critic, after Decima (Mao et al. 2019) and its input-driven baseline
// (Mao et al., "Variance reduction for RL in input-driven environments", ICLR 2019): several
// rollouts replay the same job arrivals, and a decision's baseline is what the *other* rollouts
// still had to pay at the same simulated time. The job arrivals, which dominate the return, are
// then common to the decision and its baseline and cancel out. A critic would have to predict
// returns of thousands of job-seconds from a window of tasks; this needs no training at all.

/** One rollout's steps: the simulated time of each decision and the reward that followed it. */
export interface EpisodeTrace {
  timesMs: Float64Array;
  rewards: Float64Array;
}

/**
 * Return-to-go of every step, discounted in simulated time:
 *   G_k = r_k + exp(-(t_{k+1} - t_k) / horizonMs) * G_{k+1}
 * `horizonMs` null means no discount (Decima's choice: the sum of all future job time).
 */
export function returnsToGo(trace: EpisodeTrace, horizonMs: number | null): Float64Array {
  const { timesMs: t, rewards: r } = trace;
  const n = r.length;
  const g = new Float64Array(n);
  let next = 0;
  for (let k = n - 1; k >= 0; k--) {
    const decay =
      horizonMs === null || k === n - 1
        ? 1
        : Math.exp(-((t[k + 1] as number) - (t[k] as number)) / horizonMs);
    next = (r[k] as number) + decay * next;
    g[k] = next;
  }
  return g;
}

/** The return-to-go of a rollout at time `t`, linear between its decision times. */
export function returnAt(trace: EpisodeTrace, g: Float64Array, t: number): number {
  const times = trace.timesMs;
  const n = times.length;
  if (n === 0) return 0;
  if (t <= (times[0] as number)) return g[0] as number;
  // The last step at or before t (binary search: times are nondecreasing).
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if ((times[mid] as number) <= t) lo = mid;
    else hi = mid - 1;
  }
  if (lo === n - 1) return g[lo] as number;
  const [t0, t1] = [times[lo] as number, times[lo + 1] as number];
  const [g0, g1] = [g[lo] as number, g[lo + 1] as number];
  return t1 > t0 ? g0 + ((g1 - g0) * (t - t0)) / (t1 - t0) : g1;
}

/**
 * Advantages of the steps `steps[m]` of each rollout m (all on the same input): their return
 * to go minus the mean return to go of the other rollouts at the same time. With one rollout,
 * the baseline is the mean return over that rollout's own steps (plain REINFORCE with a
 * constant baseline).
 */
export function inputDrivenAdvantages(
  traces: readonly EpisodeTrace[],
  steps: readonly (readonly number[])[],
  horizonMs: number | null,
): Float32Array[] {
  const gs = traces.map((tr) => returnsToGo(tr, horizonMs));
  return traces.map((tr, m) => {
    const g = gs[m] as Float64Array;
    const mine = steps[m] ?? [];
    if (traces.length === 1) {
      const mean = g.reduce((a, b) => a + b, 0) / Math.max(1, g.length);
      return Float32Array.from(mine, (k) => (g[k] as number) - mean);
    }
    return Float32Array.from(mine, (k) => {
      const t = tr.timesMs[k] as number;
      let sum = 0;
      traces.forEach((other, o) => {
        if (o !== m) sum += returnAt(other, gs[o] as Float64Array, t);
      });
      return (g[k] as number) - sum / (traces.length - 1);
    });
  });
}
