// Runs a workload under a policy and returns the metrics: what the CLI, the benchmark and the
// knob objective call.
import { workloadClasses } from '../../policies/gpu/index.ts';
import type { SchedulingPolicy } from '../../policies/scheduling/index.ts';
import type { Metrics } from '../core/index.ts';
import type { SimConfig } from './config.ts';
import { ClusterSim } from './sim.ts';
import { WorkloadError } from './state.ts';
import { summarise } from './summary.ts';
import type { Workload, WorkerSpec } from './types.ts';

export interface SimulateOptions {
  /** The cluster; default the workload's own workers. */
  workers?: readonly WorkerSpec[];
  config?: Partial<SimConfig>;
  /** Measure GPU fragmentation (default: when workers have GPUs and tasks ask for them). */
  measureFragmentation?: boolean;
}

export function workersFor(workload: Workload, opts: SimulateOptions): readonly WorkerSpec[] {
  const workers = opts.workers ?? workload.workers;
  if (!workers)
    throw new WorkloadError(workload.name, 'workers', 'must be given (the workload has none)');
  return workers;
}

/** Every task's demand, once per task (the weights of the workload's classes). */
export function* taskDemands(workload: Workload) {
  for (const job of workload.jobs) {
    for (const st of job.stages) for (let i = 0; i < st.numTasks; i++) yield st.demand;
  }
}

export function createSim(workload: Workload, opts: SimulateOptions = {}): ClusterSim {
  const workers = workersFor(workload, opts);
  const hasGpus = workers.some((w) => w.capacity.gpu > 0);
  const wantsGpus = workload.jobs.some((j) => j.stages.some((s) => s.demand.gpu > 0));
  const measure = opts.measureFragmentation ?? (hasGpus && wantsGpus);
  return new ClusterSim(workload, workers, opts.config ?? {}, {
    ...(measure ? { gpuClasses: workloadClasses(taskDemands(workload)) } : {}),
  });
}

export function simulate(
  workload: Workload,
  policy: SchedulingPolicy,
  opts: SimulateOptions = {},
): Metrics {
  const sim = createSim(workload, opts);
  sim.run((r, f, now) => policy.pick(r, f, now));
  return summarise(sim);
}
