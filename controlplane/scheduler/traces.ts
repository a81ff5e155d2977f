// The scheduler's sampled trace kinds, in the shape the scheduling simulator replays
// (envs/scheduler: jobs of stages with demands, arrival times and task durations):
//   arrivals   at, id, job, stage, type, tenant, priority, cpu, mem_mb, gpu, gpu_milli,
//              estimate_ms (-1 = none), parents (csv)
//   durations  at, id, job, stage, tenant, worker, attempt, started_at, duration_ms, outcome
//   decisions  at, policy, window, queued, free_workers, assigned, tasks (csv), workers (csv)
//              (kind = 'speculate' for speculative copies)
//   jobs       at, job, tenant, completion_ms, failed
//   shadow     at, live, shadow, divergence, window, live_tasks (csv), shadow_tasks (csv)
export const SCHEDULER_SERVICE = 'scheduler';

export const SCHEDULER_TRACE_KINDS = [
  'arrivals',
  'durations',
  'decisions',
  'jobs',
  'shadow',
] as const;
export type TraceKind = (typeof SCHEDULER_TRACE_KINDS)[number];
