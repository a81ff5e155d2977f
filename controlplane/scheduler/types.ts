// What callers of the scheduler see: task descriptions, task states, results of submit and
// settle, and the worker's description of itself.

/** A task to submit. Only `type` is required. */
export interface TaskSpec {
  /** Generated when absent. Letters, digits and `_ . : @ -`, at most 128. */
  id?: string;
  /** Which handler runs it. */
  type: string;
  /** The group whose durations set the straggler median; defaults to `type`. */
  stage?: string;
  tenant?: string;
  /** Tasks of one job form its DAG; defaults to the task's own id. */
  jobId?: string;
  /** Larger runs first under the priority policy. */
  priority?: number;
  /** Resources the task needs; defaults to one core. */
  demand?: { cpu?: number; memMb?: number; gpu?: number; gpuMilli?: number; gpuModels?: string[] };
  estimateMs?: number;
  /** Any JSON value, handed to the handler. */
  payload?: unknown;
  /**
   * A resubmission with the same key (and the same task: else IdempotencyConflictError) returns
   * the existing task instead of a new one. Keys are per shard (a tenant's).
   */
  idempotencyKey?: string;
  /** Ids of tasks that must complete first: existing tasks, or tasks earlier in the batch. */
  parents?: string[];
  /** Remaining critical path from this task (ms); computed from the batch's estimates if absent. */
  criticalPathMs?: number;
}

export interface SubmitResult {
  id: string;
  /** False when the idempotency key (or id) named a task that already existed. */
  created: boolean;
}

export const TASK_STATES = [
  'pending',
  'runnable',
  'leased',
  'delayed',
  'done',
  'dead',
  'upstream_failed',
  'cancelled',
] as const;
export type TaskState = (typeof TASK_STATES)[number];
/** The states a task does not leave. */
export const ENDED_STATES: ReadonlySet<string> = new Set<TaskState>([
  'done',
  'dead',
  'upstream_failed',
  'cancelled',
]);

export type SettleOutcome = 'ok' | 'fail' | 'final';

export interface SettleItem {
  taskId: string;
  token: string;
  outcome: SettleOutcome;
  /** The result (ok) or the error message (fail). */
  detail?: unknown;
  /**
   * The result as JSON, made when the handler returned (ok): sent as it is. Serialized again
   * at the settle call, a result the handler changed since was sent changed, and one made
   * unserializable (a cycle) threw there on every retry, holding the worker's settles.
   */
  resultJson?: string;
  /** The retry settings the copy was handed (LeasedTask); a failure uses them. */
  retryLimit?: number;
  backoffMs?: number;
}

export type SettleStatus = 'ok' | 'again' | 'stale' | 'unknown' | 'retry' | 'dead' | 'dropped';

export interface SettleResult {
  taskId: string;
  status: SettleStatus;
  /** Run time of the copy (ok, dead, dropped), or the backoff before the retry (retry). */
  ms: number;
  attempts: number;
  /** The job's completion time when this settled its last task, else undefined. */
  jobCompletionMs?: number;
  /** The task's job, stage and tenant ('' for an unknown task), for traces. */
  jobId: string;
  stage: string;
  tenant: string;
  /**
   * Other jobs this task's death ended: their last open tasks depended on it and became
   * upstream_failed (failed jobs; taskId is this task's).
   */
  othersEnded?: TaskJobEnded[];
}

/** A job a step ended, with the task whose end (or cascade) ended it. */
export interface TaskJobEnded {
  taskId: string;
  jobId: string;
  tenant: string;
  completionMs: number;
}

/** What a worker offers. */
export interface WorkerCapacity {
  cpu: number;
  memMb: number;
  gpu?: number;
  gpuModel?: string;
}

/** A copy of a task handed to a worker (from its inbox). */
export interface LeasedTask {
  id: string;
  token: string;
  type: string;
  attempt: number;
  /** The lease time and retry settings (knob values) it was claimed with. */
  leaseMs: number;
  retryLimit: number;
  backoffMs: number;
  payload: unknown;
}
