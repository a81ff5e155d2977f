// Offered load: the work a workload brings per unit of time, as a share of the cluster's
// capacity, on its busiest resource. `--load X` rescales arrival times (not the work) so that
// share is X, the way Decima sets its Poisson arrival rate from a target load.
import type { JobSpec, Workload, WorkerSpec } from './types.ts';

function work(jobs: readonly JobSpec[]): { cpu: number; memMb: number; gpu: number } {
  const w = { cpu: 0, memMb: 0, gpu: 0 };
  for (const job of jobs) {
    for (const st of job.stages) {
      let ms = 0;
      for (let i = 0; i < st.durationsMs.length; i++) ms += st.durationsMs[i] as number;
      w.cpu += st.demand.cpu * ms;
      w.memMb += st.demand.memMb * ms;
      w.gpu += ((st.demand.gpu * (st.demand.gpuMilli ?? 1000)) / 1000) * ms;
    }
  }
  return w;
}

/** The arrival span of n jobs: n mean interarrival times (so one more gap than observed). */
function arrivalSpanMs(jobs: readonly JobSpec[]): number {
  let lo = Infinity;
  let hi = -Infinity;
  for (const j of jobs) {
    lo = Math.min(lo, j.arrivalMs);
    hi = Math.max(hi, j.arrivalMs);
  }
  return jobs.length > 1 ? ((hi - lo) * jobs.length) / (jobs.length - 1) : 0;
}

/** Offered load on the busiest resource (cores, memory or GPU); Infinity if all arrive at once. */
export function offeredLoad(jobs: readonly JobSpec[], workers: readonly WorkerSpec[]): number {
  const span = arrivalSpanMs(jobs);
  const w = work(jobs);
  const cap = { cpu: 0, memMb: 0, gpu: 0 };
  for (const x of workers) {
    cap.cpu += x.capacity.cpu;
    cap.memMb += x.capacity.memMb;
    cap.gpu += x.capacity.gpu;
  }
  let load = 0;
  for (const r of ['cpu', 'memMb', 'gpu'] as const) {
    if (w[r] > 0) load = Math.max(load, cap[r] > 0 ? w[r] / (cap[r] * span) : Infinity);
  }
  return load;
}

/**
 * What `jobs` lack to be replayed at an offered load on `workers` (what they need, then what
 * they have); null when they can be.
 */
export function notRescalable(
  jobs: readonly JobSpec[],
  workers: readonly WorkerSpec[],
): string | null {
  if (new Set(jobs.map((j) => j.arrivalMs)).size < 2) {
    const got =
      jobs.length === 1 ? 'it has one job' : `all ${jobs.length} of its jobs arrive at once`;
    return `jobs arriving at two or more different times; ${got}`;
  }
  const load = offeredLoad(jobs, workers);
  if (load === 0) return "work: every job's duration is 0";
  if (!Number.isFinite(load))
    return 'a cluster with each resource its jobs ask for (cpu, memory, gpu)';
  return null;
}

/** The workload with arrivals stretched or squeezed (about the first) to offered load `target`. */
export function rescaleToLoad(
  workload: Workload,
  workers: readonly WorkerSpec[],
  target: number,
): Workload {
  if (!(target > 0) || !Number.isFinite(target)) {
    throw new RangeError(`load must be a finite number > 0, got ${target}`);
  }
  const why = notRescalable(workload.jobs, workers);
  if (why !== null) throw new RangeError(`load: cannot rescale ${workload.name}: it needs ${why}`);
  const now = offeredLoad(workload.jobs, workers);
  const first = workload.jobs.reduce((m, j) => Math.min(m, j.arrivalMs), Infinity);
  const factor = now / target;
  return {
    ...workload,
    jobs: workload.jobs.map((j) => ({
      ...j,
      arrivalMs: first + Math.round((j.arrivalMs - first) * factor),
    })),
  };
}
