// A fixed-length numeric description of a task, for learned scorers and for the simulator's
// observations: the same function runs in both, so a network trained in simulation reads the
// live service's tasks the same way. Durations are squashed with log1p of seconds.
import type { TaskView } from './types.ts';

export const TASK_FEATURE_NAMES = [
  'estimate_log_s',
  'estimate_known',
  'job_remaining_work_log_s',
  'critical_path_log_s',
  'job_age_log_s',
  'wait_log_s',
  'attempts_frac',
  'stage_depth_frac',
  'tenant_running_log',
  'priority_squashed',
  'cpu_log',
  'gpu',
  'job_free_workers_log',
] as const;

export const TASK_FEATURES = TASK_FEATURE_NAMES.length;
/** Every feature lies in [TASK_FEATURE_LOW, Infinity). */
export const TASK_FEATURE_LOW = -1;

const logS = (ms: number): number => Math.log1p(Math.max(0, ms) / 1000);
const MAX_ATTEMPTS_FEATURE = 10;
const MAX_DEPTH_FEATURE = 32;

/** Writes the features of `t` at time `now` into `out` from `offset`; returns `out`. */
export function taskFeatures(
  t: TaskView,
  now: number,
  out: Float64Array = new Float64Array(TASK_FEATURES),
  offset = 0,
): Float64Array {
  const est = t.estimateMs;
  out[offset] = est === undefined ? 0 : logS(est);
  out[offset + 1] = est === undefined ? 0 : 1;
  out[offset + 2] = logS(t.jobRemainingWorkMs);
  out[offset + 3] = logS(t.criticalPathMs);
  out[offset + 4] = logS(now - t.submittedAt);
  out[offset + 5] = logS(now - t.readyAt);
  out[offset + 6] = Math.min(t.attempts, MAX_ATTEMPTS_FEATURE) / MAX_ATTEMPTS_FEATURE;
  out[offset + 7] = Math.min(t.stageDepth, MAX_DEPTH_FEATURE) / MAX_DEPTH_FEATURE;
  out[offset + 8] = Math.log1p(Math.max(0, t.tenantRunning));
  out[offset + 9] = t.priority / (1 + Math.abs(t.priority));
  out[offset + 10] = Math.log1p(Math.max(0, t.demand.cpu));
  out[offset + 11] = (t.demand.gpu * (t.demand.gpuMilli ?? 1000)) / 1000;
  out[offset + 12] = Math.log1p(Math.max(0, t.jobFreeWorkers ?? 0));
  return out;
}
