// A run's metrics, named with their units last (`mean_jct_s`). Completion-time statistics
// cover the jobs that finished (censored ones excluded) and the jobs given up after their retry
// limit, which are charged until the end of the run: a lost job is not a fast one.
import type { Metrics } from '../core/index.ts';
import { summariseJobs, type JobOutcome } from './metrics.ts';
import type { ClusterSim } from './sim.ts';

export function summarise(sim: ClusterSim): Metrics {
  const endMs = sim.now; // the time of the last live event (dead ones never move the clock)
  const outcomes: JobOutcome[] = [...sim.outcomes];
  let unfinished = 0;
  let censored = 0;
  for (const job of sim.jobs) {
    if (job.spec.censored) censored++;
    if (job.endMs < 0) unfinished++;
    const givenUp = job.failed || job.endMs < 0;
    if (givenUp && !job.spec.censored) {
      outcomes.push({
        tenant: job.tenant,
        jctMs: endMs - job.spec.arrivalMs,
        idealMs: job.idealMs,
      });
    }
  }
  const span = sim.firstArrivalMs === Infinity ? 0 : endMs - sim.firstArrivalMs;
  const cpuCap = sim.cpuCapacityMilli;
  const gpuCap = sim.gpuCapacityMilli;
  const cpuUtil = span > 0 && cpuCap > 0 ? sim.cpuBusyMilliMs / (cpuCap * span) : 0;
  const gpuUtil = span > 0 && gpuCap > 0 ? sim.gpuBusyMilliMs / (gpuCap * span) : 0;
  const usesGpu = gpuCap > 0 && sim.gpuBusyMilliMs > 0;
  const m: Metrics = {
    jobs: sim.jobs.length,
    jobs_completed: sim.jobs.length - sim.failedJobs.length - unfinished,
    jobs_failed: sim.failedJobs.length,
    jobs_unfinished: unfinished,
    jobs_censored: censored,
    ...summariseJobs(outcomes, sim.tenants.length),
    utilization: usesGpu ? gpuUtil : cpuUtil,
    cpu_utilization: cpuUtil,
    makespan_s: sim.firstArrivalMs === Infinity ? 0 : (sim.lastEndMs - sim.firstArrivalMs) / 1000,
    tenants: sim.tenants.length,
    attempts: sim.attempts,
    retries: sim.retries,
    speculative_copies: sim.copies,
    speculative_wins: sim.copyWins,
    decisions: sim.decisions,
    events: sim.events,
    truncated: sim.truncated ? 1 : 0,
  };
  if (gpuCap > 0) m['gpu_utilization'] = gpuUtil;
  if (sim.tracksFragmentation && span > 0)
    m['gpu_stranded_frac'] = sim.fragMilliMs / (gpuCap * span);
  return m;
}
