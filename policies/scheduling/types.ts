// The scheduling decision point, shared verbatim by the cluster simulator (envs/scheduler) and
// the live scheduler service: both fill these views from their task and worker rows, call
// `pick`, and apply the assignments. Views are plain data so a Redis row maps onto one directly.

/** Amounts of each resource: cores (fractional), memory in MB, GPUs. */
export interface Resources {
  cpu: number;
  memMb: number;
  /** GPU-equivalents: whole GPUs plus fractions of shared ones. */
  gpu: number;
}

/** What one task needs. GPU demand is `gpu` devices, each at `gpuMilli` thousandths of a device. */
export interface Demand {
  cpu: number;
  memMb: number;
  /** Number of GPU devices; 0 for a CPU-only task. */
  gpu: number;
  /** Share of each device in 1..1000 (1000, the default, means a whole GPU). */
  gpuMilli?: number;
  /** GPU models the task accepts; empty or absent means any. */
  gpuModels?: readonly string[];
  /**
   * The task's type, where workers run only some types (a worker with `types` runs only
   * those); absent where every worker runs every task (the simulator).
   */
  type?: string;
}

/** A runnable task as a policy sees it. Times are ms on the caller's clock. */
export interface TaskView {
  id: string;
  jobId: string;
  tenant: string;
  /** Larger runs first under the priority policy. */
  priority: number;
  demand: Demand;
  /** Expected run time of this task, when known. */
  estimateMs?: number;
  /** Estimated work (task-ms) still to do in the task's job, this task included. */
  jobRemainingWorkMs: number;
  /** Remaining critical path of the job's DAG from this task's stage (estimated work, ms). */
  criticalPathMs: number;
  /** When the task's job was submitted. */
  submittedAt: number;
  /** When this task became runnable (parents done, or retry backoff over). */
  readyAt: number;
  /** Attempts already made (0 for a fresh task). */
  attempts: number;
  /** Longest chain of stages above this one in its DAG (0 for a root stage). */
  stageDepth: number;
  /** Tasks of this tenant running now; fair share reads it. */
  tenantRunning: number;
  /** Service this tenant received so far (task-ms); breaks fair-share ties. */
  tenantServedMs: number;
  /**
   * Free workers whose last task was of this task's job, so they run it without moving to
   * another job (where moving has a cost, as in the simulator's `moveDelayMs` world). Absent
   * where the caller does not track it (the live service: a worker runs many jobs at once).
   */
  jobFreeWorkers?: number;
}

/** A worker with some free capacity. */
export interface WorkerView {
  id: string;
  free: Resources;
  capacity: Resources;
  /** Free thousandths of each GPU device, for GPU-sharing placement; absent without GPUs. */
  gpuFreeMilli?: readonly number[];
  gpuModel?: string;
  /** Task types it runs (the handlers it has); absent means every type. */
  types?: readonly string[];
}

/** Start task `taskId` on worker `workerId`; `gpus` are device indices on that worker. */
export interface Assignment {
  taskId: string;
  workerId: string;
  gpus?: readonly number[];
}

/**
 * Picks tasks for free workers. Pure: the result depends only on the arguments, so the
 * simulator and the live service get the same answer from the same views. Assignments are in
 * the policy's preference order; a caller that dispatches in batches keeps a prefix.
 */
export interface SchedulingPolicy {
  readonly name: string;
  pick(runnable: readonly TaskView[], free: readonly WorkerView[], now: number): Assignment[];
}
