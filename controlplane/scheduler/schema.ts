// The scheduler's tables as the store declares them, for the read side (Table.get, getMany,
// range, count). Writes go through the scheduler's own Lua scripts (hot transitions), which
// keep the same encoding (numbers as decimal strings) and bump the same `_v` versions.
import type { Fields, RowOf } from '../store/schema.ts';
import type { TableSpec } from '../store/table.ts';
import { DEAD_TABLE, JOBS_TABLE, TASKS_TABLE, WORKERS_TABLE } from './keys.ts';

const str = { type: 'string' } as const;
const num = { type: 'number' } as const;
const optStr = { type: 'string', optional: true } as const;
const optNum = { type: 'number', optional: true } as const;

export const TASK_FIELDS = {
  id: str,
  type: str,
  stage: str,
  tenant: str,
  job: str,
  priority: num,
  cpu_m: num,
  mem_mb: num,
  gpu: num,
  gpu_milli: num,
  gpu_models: optStr,
  estimate_ms: optNum,
  payload: str,
  parents: optStr,
  idempotency_key: optStr,
  /** pending | runnable | leased | delayed | done | dead | upstream_failed */
  state: str,
  /** Parents not yet completed. */
  pending: num,
  depth: num,
  critical_ms: num,
  /** The static part of the policy's view, denormalized so dispatch reads one field. */
  view: str,
  attempts: num,
  submitted_at: num,
  ready_at: optNum,
  lease: optStr,
  worker: optStr,
  gpus: optStr,
  leased_at: optNum,
  lease_ms: optNum,
  retry_limit: optNum,
  backoff_ms: optNum,
  spec_lease: optStr,
  spec_worker: optStr,
  spec_gpus: optStr,
  spec_at: optNum,
  done_token: optStr,
  ran_on: optStr,
  finished_at: optNum,
  duration_ms: optNum,
  result: optStr,
  error: optStr,
} satisfies Fields;

export const WORKER_FIELDS = {
  id: str,
  cpu_m: num,
  mem_mb: num,
  gpu: num,
  gpu_model: optStr,
  slots: num,
  used_slots: num,
  used_cpu_m: num,
  used_mem_mb: num,
  used_gpu_m: num,
  gpu_free: optStr,
  heartbeat_at: num,
  heartbeat_ms: num,
  heartbeat_deadline: num,
  started_at: num,
  host: optStr,
  pid: optNum,
} satisfies Fields;

export const JOB_FIELDS = {
  id: str,
  tenant: str,
  total: num,
  remaining: num,
  dead: optNum,
  remaining_work_ms: optNum,
  submitted_at: num,
  finished_at: optNum,
} satisfies Fields;

export const DEAD_FIELDS = {
  id: str,
  type: str,
  stage: str,
  tenant: str,
  job: str,
  attempts: num,
  error: str,
  dead_at: num,
  payload: str,
} satisfies Fields;

export type TaskRow = RowOf<typeof TASK_FIELDS>;
export type WorkerRow = RowOf<typeof WORKER_FIELDS>;
export type JobRow = RowOf<typeof JOB_FIELDS>;
export type DeadLetterRow = RowOf<typeof DEAD_FIELDS>;

/** Table specs of one shard's family. Index scores are what the scripts write. */
export function tableSpecs(family: string) {
  const fam = () => family;
  const tasks: TableSpec<typeof TASK_FIELDS> = {
    name: TASKS_TABLE,
    fields: TASK_FIELDS,
    id: (r) => r.id,
    family: fam,
    indexes: {
      runnable: (r) => (r.state === 'runnable' ? r.ready_at : undefined),
      delayed: (r) => (r.state === 'delayed' ? r.ready_at : undefined),
      done: (r) => (r.state === 'done' ? r.finished_at : undefined),
    },
  };
  const workers: TableSpec<typeof WORKER_FIELDS> = {
    name: WORKERS_TABLE,
    fields: WORKER_FIELDS,
    id: (r) => r.id,
    family: fam,
    indexes: { deadline: (r) => r.heartbeat_deadline },
  };
  const jobs: TableSpec<typeof JOB_FIELDS> = {
    name: JOBS_TABLE,
    fields: JOB_FIELDS,
    id: (r) => r.id,
    family: fam,
  };
  const dead: TableSpec<typeof DEAD_FIELDS> = {
    name: DEAD_TABLE,
    fields: DEAD_FIELDS,
    id: (r) => r.id,
    family: fam,
    indexes: { dead_at: (r) => r.dead_at },
  };
  return { tasks, workers, jobs, dead };
}
