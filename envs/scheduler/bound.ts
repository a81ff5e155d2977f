// A lower bound on the mean job completion time that any policy can reach on a workload: the
// oracle of the clean-world policy study. No schedule beats it, so a policy's gap to it caps
// what any better policy could still gain there (with or without learning).
//
// Two bounds on the same mean; the larger is reported:
//  - per job: its critical path with unlimited workers (the simulator's ideal time), and its
//    work over the whole cluster's capacity;
//  - all jobs together: the cluster as one machine as fast as all its workers together, run
//    preemptively by SRPT. SRPT is optimal for mean flow time on one machine, and any schedule on
//    the workers does no more work by any time than that machine, so it finishes no job sooner.
//    One such machine per resource (cores, memory-time, GPUs); each is a bound.
// Censored jobs are left out: dropping work only makes the bound smaller, so it stays a bound.
// It bounds runs in which every job finishes (the clean world, where the policy studies use it):
// the simulator charges a job it gives up after its retry limit until the end of the run (the
// last live event), which can be sooner than the job could have finished.
import { SimJob, SimTenant, buildJob } from './state.ts';
import type { JobSpec, WorkerSpec, Workload } from './types.ts';

const RESOURCES = ['cpu', 'memMb', 'gpu'] as const;

/** Cores as the simulator counts them: whole thousandths. */
const millis = (cores: number): number => Math.round(cores * 1000) / 1000;

interface BoundJob {
  arrivalMs: number;
  idealMs: number;
  /** Resource-ms of each of RESOURCES. */
  work: number[];
}

function boundJob(spec: JobSpec): BoundJob {
  const sim = new SimJob(0, spec, 0, new SimTenant());
  buildJob(sim, 1); // checks the DAG; fills idealMs and each stage's demand as the sim counts it
  const work = RESOURCES.map(() => 0);
  for (const st of sim.stages) {
    let ms = 0;
    for (let k = 0; k < st.total; k++) ms += st.spec.durationsMs[k] as number;
    const per = [
      st.cpuMilli / 1000,
      st.spec.demand.memMb,
      (st.spec.demand.gpu * st.gpuMilli) / 1000,
    ];
    per.forEach((d, r) => (work[r] = (work[r] as number) + d * ms));
  }
  return { arrivalMs: spec.arrivalMs, idealMs: sim.idealMs, work };
}

export interface FluidJob {
  arrivalMs: number;
  work: number;
}

/** Mean flow time (ms) of preemptive SRPT on one machine of speed `rate` (work per ms). */
export function fluidSrptMeanFlowMs(jobs: readonly FluidJob[], rate: number): number {
  if (jobs.length === 0) return 0;
  const byArrival = [...jobs].sort((a, b) => a.arrivalMs - b.arrivalMs);
  // Jobs in the system, kept sorted by remaining work, largest first (the smallest pops).
  const open: { arrivalMs: number; left: number }[] = [];
  let t = -Infinity; // jobs may arrive before 0
  let next = 0;
  let flow = 0;
  while (next < byArrival.length || open.length > 0) {
    if (open.length === 0) t = Math.max(t, (byArrival[next] as FluidJob).arrivalMs);
    while (next < byArrival.length && (byArrival[next] as FluidJob).arrivalMs <= t) {
      const j = byArrival[next++] as FluidJob;
      const at = open.findIndex((o) => o.left <= j.work);
      open.splice(at < 0 ? open.length : at, 0, { arrivalMs: j.arrivalMs, left: j.work });
    }
    const cur = open[open.length - 1] as { arrivalMs: number; left: number };
    const arrival = next < byArrival.length ? (byArrival[next] as FluidJob).arrivalMs : Infinity;
    const done = t + cur.left / rate;
    if (done <= arrival) {
      t = done;
      flow += t - cur.arrivalMs;
      open.pop();
    } else {
      cur.left -= (arrival - t) * rate;
      t = arrival;
      // Only the running job's work shrank, and it was already the smallest: order holds.
    }
  }
  return flow / jobs.length;
}

/** The bound on `mean_jct_s` for `workload` on `workers` (the workload's own when it has them). */
export function meanJctLowerBound(workload: Workload, workers?: readonly WorkerSpec[]): number {
  const cluster = workers ?? workload.workers;
  if (!cluster || cluster.length === 0)
    throw new RangeError('meanJctLowerBound: the workload has no workers and none were given');
  const capacity = RESOURCES.map((r) =>
    cluster.reduce((s, w) => s + (r === 'cpu' ? millis(w.capacity.cpu) : w.capacity[r]), 0),
  );
  const jobs = workload.jobs.filter((j) => !j.censored).map(boundJob);
  if (jobs.length === 0) return 0;
  let perJob = 0;
  for (const j of jobs) {
    let b = j.idealMs;
    j.work.forEach((w, r) => {
      const c = capacity[r] as number;
      if (c > 0) b = Math.max(b, w / c);
    });
    perJob += b;
  }
  let best = perJob / jobs.length;
  capacity.forEach((c, r) => {
    if (c <= 0) return;
    const fluid = jobs.map((j) => ({ arrivalMs: j.arrivalMs, work: j.work[r] as number }));
    best = Math.max(best, fluidSrptMeanFlowMs(fluid, c));
  });
  return best / 1000;
}
