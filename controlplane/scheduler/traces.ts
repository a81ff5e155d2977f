// The scheduler's sampled trace kinds, in the shape the scheduling simulator replays
// (envs/scheduler: jobs of stages with demands, arrival times and task durations):
//   arrivals   at, id, job, stage, type, tenant, priority, cpu, mem_mb, gpu, gpu_milli,
//              gpu_models (csv), estimate_ms (-1 = none), parents (csv)
//   durations  at, id, job, stage, tenant, worker, attempt, started_at, duration_ms, outcome
//   decisions  at, policy, window, offset (a window read past the head only), queued,
//              free_workers, assigned, tasks (csv), workers (csv)
//              (kind = 'speculate' for speculative copies)
//   jobs       at, job, tenant, completion_ms, failed
//   shadow     at, live, shadow, divergence, window, live_tasks (csv), shadow_tasks (csv)
import type { Telemetry } from '../telemetry/metrics.ts';
import type { TraceWriter } from '../telemetry/traces.ts';

export const SCHEDULER_SERVICE = 'scheduler';

export const SCHEDULER_TRACE_KINDS = [
  'arrivals',
  'durations',
  'decisions',
  'jobs',
  'shadow',
] as const;
export type TraceKind = (typeof SCHEDULER_TRACE_KINDS)[number];

/**
 * A job ended (its last open task completed, died or became upstream_failed): the
 * `job_completion_ms` metric, and a `jobs` trace record for a multi-task job (a task that is
 * its own job is traced by its arrival and duration already). Used by the worker's settle and
 * by the reaper (a task dead of lease expiry), so both report a job the same way.
 */
export function recordJobCompletion(
  telemetry: Telemetry,
  jobs: TraceWriter,
  e: { at: number; taskId: string; jobId: string; tenant: string; ms: number; failed: boolean },
): void {
  telemetry.observe('job_completion_ms', e.ms);
  if (e.jobId !== e.taskId)
    jobs.record({
      at: e.at,
      job: e.jobId,
      tenant: e.tenant,
      completion_ms: e.ms,
      failed: e.failed,
    });
}
