// The scheduler's tables as the store declares them, for the read side (Table.get, getMany,
// range, count). Writes go through the scheduler's own Lua scripts (hot transitions), which
// keep the same encoding (numbers as decimal strings) and a `_v` version on every row (a task's
// claim and completion leave it as it is: see scripts/includes/shard.lua).
import type { Fields, RowOf } from '../store/schema.ts';
import type { TableSpec } from '../store/table.ts';
import { DEAD_TABLE, JOBS_TABLE, TASKS_TABLE, WORKERS_TABLE } from './keys.ts';

const str = { type: 'string' } as const;
const num = { type: 'number' } as const;
const optStr = { type: 'string', optional: true } as const;
const optNum = { type: 'number', optional: true } as const;

/** A task row as stored: what never changes packed in `attrs` (see scripts/includes/shard.lua). */
export const STORED_TASK_FIELDS = {
  /** The key carries the id; the hash does not (decodeTaskRow puts it back). */
  id: optStr,
  /** type, stage, tenant, job, priority, cpu_m, mem_mb, gpu, gpu_milli, gpu_models,
   * estimate_ms, critical_ms, submitted_at, depth, tab-separated. */
  attrs: str,
  payload: str,
  parents: optStr,
  idempotency_key: optStr,
  /** pending | runnable | leased | delayed | done | dead | upstream_failed | cancelled */
  state: str,
  /** Parents not yet completed (absent = 0). */
  pending: optNum,
  /** Attempts made (absent = 0). */
  attempts: optNum,
  ready_at: optNum,
  /** The current copy (the winning one, once done): token, worker, leased_at, GPU devices,
   * the worker's incarnation, the attempt. */
  lease: optStr,
  /** A speculative copy, packed the same way. */
  spec_lease: optStr,
  /** 1 once another task depends on this one. */
  has_children: optNum,
  finished_at: optNum,
  result: optStr,
  error: optStr,
  /** Who cancelled the task (state cancelled; `error` says who and why). */
  cancelled_by: optStr,
} satisfies Fields;

export type StoredTaskRow = RowOf<typeof STORED_TASK_FIELDS>;

/** What `attrs` holds, decoded. */
export interface TaskAttrs {
  type: string;
  stage: string;
  tenant: string;
  job: string;
  priority: number;
  cpu_m: number;
  mem_mb: number;
  gpu: number;
  gpu_milli: number;
  /** csv; '' for any */
  gpu_models: string;
  estimate_ms?: number;
  critical_ms: number;
  submitted_at: number;
  depth: number;
}

/** A copy's lease, unpacked. */
export interface LeaseFields {
  /** The lease token (of the winning copy, once done). */
  lease?: string;
  /** The worker of the lease (that ran it, once done). */
  worker?: string;
  leased_at?: number;
  gpus?: string;
  spec_lease?: string;
  spec_worker?: string;
  spec_at?: number;
  spec_gpus?: string;
  /** finished_at - leased_at, once done. */
  duration_ms?: number;
}

/** A task row with its packed fields decoded: what queries and clients see. */
export type TaskRow = Omit<
  StoredTaskRow,
  'id' | 'attrs' | 'pending' | 'attempts' | 'lease' | 'spec_lease'
> & { id: string } & TaskAttrs &
  LeaseFields & { pending: number; attempts: number };

export function decodeAttrs(attrs: string): TaskAttrs {
  const f = attrs.split('\t');
  const out: TaskAttrs = {
    type: f[0] ?? '',
    stage: f[1] ?? '',
    tenant: f[2] ?? '',
    job: f[3] ?? '',
    priority: Number(f[4]),
    cpu_m: Number(f[5]),
    mem_mb: Number(f[6]),
    gpu: Number(f[7]),
    gpu_milli: Number(f[8]),
    gpu_models: f[9] ?? '',
    critical_ms: Number(f[11]),
    submitted_at: Number(f[12]),
    depth: Number(f[13]),
  };
  if (f[10] !== undefined && f[10] !== '') out.estimate_ms = Number(f[10]);
  return out;
}

function unpackLease(packed: string | undefined, prefix: '' | 'spec_'): LeaseFields {
  if (packed === undefined) return {};
  // token, worker, leased_at, GPU devices, worker incarnation, attempt (scripts/includes/shard.lua)
  const [token = '', worker = '', at = '', gpus = ''] = packed.split('\t');
  return prefix === ''
    ? { lease: token, worker, leased_at: Number(at), gpus }
    : { spec_lease: token, spec_worker: worker, spec_at: Number(at), spec_gpus: gpus };
}

/** The attempt a lease was granted for (0 without one). */
function leaseAttempt(packed: string | undefined): number {
  return packed === undefined ? 0 : Number(packed.split('\t')[5] ?? 0) || 0;
}

/** The row as clients see it; `id` is the row's id (the key carries it, the hash does not). */
export function decodeTaskRow(id: string, stored: StoredTaskRow): TaskRow {
  const { attrs, pending, attempts, lease, spec_lease, ...rest } = stored;
  const row: TaskRow = {
    ...rest,
    id,
    ...decodeAttrs(attrs),
    ...unpackLease(lease, ''),
    ...unpackLease(spec_lease, 'spec_'),
    pending: pending ?? 0,
    // A running or completed copy carries its attempt in its lease; past ones are on the row.
    attempts: Math.max(attempts ?? 0, leaseAttempt(lease)),
  };
  // finished_at is the worker's clock, leased_at the dispatcher's: a skew never goes below 0
  // (as settle-12.lua counts it).
  if (row.state === 'done' && row.finished_at !== undefined && row.leased_at !== undefined)
    row.duration_ms = Math.max(0, row.finished_at - row.leased_at);
  // A task runnable from the start was ready when it was submitted.
  if (row.ready_at === undefined && row.state !== 'pending') row.ready_at = row.submitted_at;
  if (row.state === 'done' && row.result === undefined) row.result = 'null';
  return row;
}

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
  /** Changes each time the row is created: copies of an older incarnation are void. */
  inc: str,
  heartbeat_at: num,
  heartbeat_ms: num,
  heartbeat_deadline: num,
  started_at: num,
  host: optStr,
  pid: optNum,
  /** Task types it runs (csv); '*' or absent: every type. */
  types: optStr,
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
  /** '1': its set of tasks (SchedKeys.jobTasks) holds every task of it (a job's cancel reads it). */
  tasks_indexed: optStr,
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

export type WorkerRow = RowOf<typeof WORKER_FIELDS>;

/** The task types a worker runs from their csv; undefined ('*' or none stored): every type. */
export function typesOf(csv: string | undefined): string[] | undefined {
  if (csv === undefined || csv === '*') return undefined;
  return csv === '' ? [] : csv.split(',');
}
export type JobRow = RowOf<typeof JOB_FIELDS>;
export type DeadLetterRow = RowOf<typeof DEAD_FIELDS>;

/** Table specs of one shard's family. Index scores are what the scripts write. */
export function tableSpecs(family: string) {
  const fam = () => family;
  const tasks: TableSpec<typeof STORED_TASK_FIELDS> = {
    name: TASKS_TABLE,
    fields: STORED_TASK_FIELDS,
    id: (r) => r.id ?? '',
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
