// Scores scheduling policies on workload seeds: mean job completion time of each policy on each
// seed's workload, in one of three simulated worlds:
//   'clean'     the work as the trace gives it (no stragglers, failures or dispatch cost): the
//               world the env trains in, where only the order of tasks differs between policies;
//   'moving'    the clean world where a worker moving to another job first spends Decima's
//               simulator's moving delay (MOVE_DELAY_MS), so where tasks run matters too;
//   'objective' the scheduler knob objective's world at default knobs (stragglers, transient
//               failures, a dispatcher with a round-trip cost): what the experiment runner's
//               heuristic entries are scored in, so a learned entry scored here is comparable.
import { CATALOG, defaultValues } from '../../knobs/index.ts';
import { DEFAULT_OBJECTIVE_WORLD, simulate, type SimConfig } from '../../envs/scheduler/index.ts';
import type { Metrics } from '../../envs/core/index.ts';
import { createSchedulingPolicy, type SchedulingPolicy } from '../../policies/scheduling/index.ts';
import type { Scenario } from './scenario.ts';

export const WORLDS = ['clean', 'moving', 'objective'] as const;
export type World = (typeof WORLDS)[number];

/**
 * Held-out workloads (seeds 1..N) the scripts evaluate on by default, per world. In the moving
 * world 50: policies there differ by workload so much that workloads 1-10 ranked a learned
 * policy and the move-aware one-liner the other way round from 40 other workloads.
 */
export const EVAL_SEEDS: Record<World, number> = { clean: 10, moving: 50, objective: 10 };

/** Decima's simulator's executor `moving_delay` (its default, ms), the 'moving' world's. */
export const MOVE_DELAY_MS = 2_000;

/** The sim config of a world for a seed (the objective's: its world plus the knob defaults). */
export function worldConfig(world: World, seed: number): Partial<SimConfig> {
  if (world === 'clean') return { seed };
  if (world === 'moving') return { seed, moveDelayMs: MOVE_DELAY_MS };
  const k = defaultValues(CATALOG);
  return {
    ...DEFAULT_OBJECTIVE_WORLD,
    seed,
    retryLimit: k['scheduler.retry_limit'] as number,
    retryBackoffMs: k['scheduler.retry_backoff_ms'] as number,
    speculative: k['scheduler.speculative_execution'] as boolean,
    stragglerThreshold: k['scheduler.straggler_threshold'] as number,
    dispatchBatch: k['scheduler.dispatch_batch'] as number,
  };
}

/** One run of `policy` on the workload of `seed`: the simulator's metrics. */
export function runPolicy(
  policy: SchedulingPolicy,
  scenario: Scenario,
  seed: number,
  world: World = 'clean',
): Metrics {
  const { workload, workers } = scenario(seed);
  return simulate(workload, policy, { workers, config: worldConfig(world, seed) });
}

export interface Summary {
  mean: number;
  /** Sample standard deviation (0 for one value). */
  std: number;
  min: number;
  max: number;
}

export function summarise(xs: readonly number[]): Summary {
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / Math.max(1, n);
  const v = n > 1 ? xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1) : 0;
  return { mean, std: Math.sqrt(v), min: Math.min(...xs), max: Math.max(...xs) };
}

/** Per-seed differences `values - ref`: their mean, its standard error, and the seeds below. */
export function pairedVs(
  values: readonly number[],
  ref: readonly number[],
): { mean: number; stdErr: number; wins: number } {
  const d = values.map((v, i) => v - (ref[i] as number));
  const s = summarise(d);
  return {
    mean: s.mean,
    stdErr: s.std / Math.sqrt(Math.max(1, d.length)),
    wins: d.filter((x) => x < 0).length,
  };
}

export interface PolicyScores extends Summary {
  name: string;
  /** mean_jct_s per seed, in the order of the seeds. */
  values: number[];
  /** Mean over the seeds of the jobs given up after their retry limit (0 in the clean world). */
  jobsFailed: number;
}

/** Policies by name: a heuristic's name, or a factory for any other (a learned one). */
export type PolicyMaker = string | (() => SchedulingPolicy);

export function makePolicy(maker: PolicyMaker): SchedulingPolicy {
  return typeof maker === 'string' ? createSchedulingPolicy(maker) : maker();
}

/** mean_jct_s of each policy on each seed; `onRun` reports progress. */
export function comparePolicies(
  makers: Record<string, PolicyMaker>,
  scenario: Scenario,
  seeds: readonly number[],
  world: World = 'clean',
  onRun?: (name: string, seed: number, jctS: number) => void,
): PolicyScores[] {
  return Object.entries(makers).map(([name, maker]) => {
    let failed = 0;
    const values = seeds.map((seed) => {
      const m = runPolicy(makePolicy(maker), scenario, seed, world);
      const jct = m['mean_jct_s'] as number;
      failed += (m['jobs_failed'] as number) / seeds.length;
      onRun?.(name, seed, jct);
      return jct;
    });
    return { name, values, ...summarise(values), jobsFailed: failed };
  });
}
