// The scheduler as a KnobObjective for tuners: run a workload under values of the scheduler
// knobs and report the run's metrics (objective: mean job completion time, lower is better).
// The simulated world has the troubles the knobs exist for: stragglers (speculation and its
// threshold), transient failures (retry limit and backoff) and a dispatcher with a round-trip
// cost (dispatch batch: small batches pay the round trip often, large ones make every task of
// the batch wait for the whole batch to be written).
import { CATALOG, validateValue, type KnobSpec, type KnobValues } from '../../knobs/index.ts';
import { createSchedulingPolicy } from '../../policies/scheduling/index.ts';
import type { KnobObjective, Metrics } from '../core/index.ts';
import type { SimConfig } from './config.ts';
import { syntheticWorkload } from './generator.ts';
import { simulate } from './run.ts';
import { uniformWorkers, type Workload, type WorkerSpec } from './types.ts';

export const SCHEDULER_KNOB_NAMES = [
  'scheduler.policy',
  'scheduler.straggler_threshold',
  'scheduler.speculative_execution',
  'scheduler.retry_limit',
  'scheduler.retry_backoff_ms',
  'scheduler.dispatch_batch',
] as const;

/** The world the objective simulates by default (what the knobs cannot change). */
export const DEFAULT_OBJECTIVE_WORLD: Partial<SimConfig> = {
  stragglerProb: 0.05,
  stragglerAlpha: 1.5,
  stragglerMaxSlowdown: 10,
  failureProb: 0.02,
  failureTransientMs: 2_000,
  refailProb: 0.8,
  dispatchRttMs: 10,
  dispatchPerTaskMs: 1,
};

export interface SchedulerObjectiveOptions {
  /** The workload and cluster for an evaluation seed (default: 300 synthetic jobs on 16 workers). */
  scenario?: (seed: number) => { workload: Workload; workers: readonly WorkerSpec[] };
  world?: Partial<SimConfig>;
}

function defaultScenario(seed: number): { workload: Workload; workers: WorkerSpec[] } {
  const workers = uniformWorkers(16, { cpu: 4, memMb: 16_384, gpu: 0 });
  return { workload: syntheticWorkload({ jobs: 300, workers, seed, load: 0.8 }), workers };
}

export function schedulerObjective(opts: SchedulerObjectiveOptions = {}): KnobObjective {
  const knobs: KnobSpec[] = SCHEDULER_KNOB_NAMES.map((name) => {
    const spec = CATALOG.find((k) => k.name === name);
    if (!spec) throw new Error(`knob ${name} is missing from the catalog`);
    return spec;
  });
  const world = { ...DEFAULT_OBJECTIVE_WORLD, ...opts.world };
  const scenario = opts.scenario ?? defaultScenario;
  return {
    id: 'scheduler-knobs-v1',
    knobs,
    objective: { metric: 'mean_jct_s', direction: 'min' },
    async evaluate(values: KnobValues, seed: number): Promise<Metrics> {
      const v = resolve(knobs, values);
      const { workload, workers } = scenario(seed);
      const config: Partial<SimConfig> = {
        ...world,
        seed,
        retryLimit: v['scheduler.retry_limit'] as number,
        retryBackoffMs: v['scheduler.retry_backoff_ms'] as number,
        speculative: v['scheduler.speculative_execution'] as boolean,
        stragglerThreshold: v['scheduler.straggler_threshold'] as number,
        dispatchBatch: v['scheduler.dispatch_batch'] as number,
      };
      const policy = createSchedulingPolicy(v['scheduler.policy'] as string);
      return simulate(workload, policy, { workers, config });
    },
  };
}

/** Defaults overlaid with `values`, each checked against its knob; unknown names are errors. */
function resolve(knobs: readonly KnobSpec[], values: KnobValues): KnobValues {
  const out: KnobValues = {};
  for (const name of Object.keys(values)) {
    if (!knobs.some((k) => k.name === name)) {
      throw new RangeError(
        `scheduler objective: unknown knob ${name} (knobs: ${SCHEDULER_KNOB_NAMES.join(', ')})`,
      );
    }
  }
  for (const k of knobs) {
    const value = values[k.name] ?? k.default;
    const bad = validateValue(k, value);
    if (bad) throw new RangeError(bad.message);
    out[k.name] = value;
  }
  return out;
}
