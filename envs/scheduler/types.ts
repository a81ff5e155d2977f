// What the cluster simulator runs: a workload (jobs as DAGs of stages, and optionally the
// workers) and a configuration (stragglers, failures, retries, speculation, dispatch). Times are
// ms; each task's run time without slowdown is fixed by the workload, so two policies run on the
// very same work.
import type { Demand, Resources } from '../../policies/scheduling/index.ts';

export interface StageSpec {
  numTasks: number;
  /** Indices into the job's `stages` that must finish before this stage runs. */
  parents: readonly number[];
  demand: Demand;
  /** Each task's run time without slowdown, ms; length `numTasks`. */
  durationsMs: ArrayLike<number>;
  /** What policies are told one task takes; the mean of `durationsMs` when omitted. */
  estimateMs?: number;
}

export interface JobSpec {
  id: string;
  arrivalMs: number;
  tenant: string;
  priority: number;
  stages: readonly StageSpec[];
  /**
   * The job's run time is only a lower bound (it was still running when its trace ended): it is
   * simulated, so it takes capacity, but left out of completion-time statistics.
   */
  censored?: boolean;
}

export interface WorkerSpec {
  id: string;
  /** Cores, memory in MB, whole GPU devices. */
  capacity: Resources;
  gpuModel?: string;
}

export interface Workload {
  /** Where it came from, for reports. */
  name: string;
  /** In any order; the simulator orders arrivals. */
  jobs: readonly JobSpec[];
  /** The cluster, when the trace has one (the Alibaba nodes); else the caller supplies it. */
  workers?: readonly WorkerSpec[];
  /** Loader facts worth reporting (rows dropped, censored, ...). */
  notes?: Record<string, number>;
}

export function uniformWorkers(n: number, capacity: Resources, gpuModel?: string): WorkerSpec[] {
  if (!Number.isInteger(n) || n < 1)
    throw new RangeError(`workers must be an integer >= 1, got ${n}`);
  return Array.from({ length: n }, (_, i) => ({
    id: `w${i}`,
    capacity: { ...capacity },
    ...(gpuModel === undefined ? {} : { gpuModel }),
  }));
}
