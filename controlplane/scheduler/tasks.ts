// Checks submitted task descriptions and encodes them as the submit script's arguments. Bad
// input fails before anything is sent, naming the task, the field and the rule.
import { PLAIN_NAME_RE } from '../../knobs/index.ts';
import { SchedulerInputError } from './errors.ts';
import type { TaskSpec } from './types.ts';

/** Ids, types, stages, tenants and jobs become key parts and separators: keep them plain. */
const NAME_RE = PLAIN_NAME_RE;
export const SUBMIT_BATCH_MAX = 5_000;
export const PARENTS_MAX = 1_000;
const IDEM_KEY_MAX = 256;
const GPU_MILLI = 1000;
const NO_MODELS: string[] = [];

export interface SubmitLimits {
  payloadBytesMax: number;
}

export function checkName(value: unknown, field: string, where: string): string {
  if (typeof value !== 'string' || !NAME_RE.test(value)) {
    throw new SchedulerInputError(
      `${where}: ${field} must be 1-128 letters, digits or _ . : @ -, got ${JSON.stringify(value)}`,
      field,
      'name',
    );
  }
  return value;
}

function badNumber(value: unknown, field: string, where: string, rule: string, what: string) {
  return new SchedulerInputError(`${where}: ${field} ${what}, got ${String(value)}`, field, rule);
}

// Submit checks every field of every task: no closures or option objects per call here.
export function checkNumber(
  value: unknown,
  field: string,
  where: string,
  min: number,
  max: number,
): number {
  if (typeof value !== 'number' || !Number.isFinite(value))
    throw badNumber(value, field, where, 'type', 'must be a finite number');
  if (value < min) throw badNumber(value, field, where, 'min', `must be >= ${min}`);
  if (value > max) throw badNumber(value, field, where, 'max', `must be <= ${max}`);
  return value;
}

export function checkInteger(
  value: unknown,
  field: string,
  where: string,
  min: number,
  max: number,
): number {
  const v = checkNumber(value, field, where, min, max);
  if (!Number.isInteger(v)) throw badNumber(value, field, where, 'integer', 'must be an integer');
  return v;
}

export interface NormalTask {
  id: string;
  idempotencyKey: string;
  type: string;
  stage: string;
  tenant: string;
  jobId: string;
  priority: number;
  cpuMilli: number;
  memMb: number;
  gpu: number;
  gpuMilli: number;
  gpuModels: string[];
  estimateMs: number | undefined;
  payload: string;
  parents: string[];
  criticalPathMs: number;
}

/** Checks one task and fills its defaults. */
export function normalizeTask(
  spec: TaskSpec,
  index: number,
  newId: () => string,
  limits: SubmitLimits,
): NormalTask {
  const id = spec.id === undefined ? newId() : checkName(spec.id, 'id', `task #${index}`);
  const where = `task ${id}`;
  const type = checkName(spec.type, 'type', where);
  const d = spec.demand ?? {};
  const cpu = checkNumber(d.cpu ?? 1, 'demand.cpu', where, 0, 1e6);
  const memMb = checkNumber(d.memMb ?? 0, 'demand.memMb', where, 0, 1e9);
  const gpu = checkInteger(d.gpu ?? 0, 'demand.gpu', where, 0, 64);
  const gpuMilli = checkInteger(d.gpuMilli ?? GPU_MILLI, 'demand.gpuMilli', where, 1, GPU_MILLI);
  const gpuModels = d.gpuModels ?? NO_MODELS;
  if (!Array.isArray(gpuModels))
    throw new SchedulerInputError(
      `${where}: demand.gpuModels must be an array of model names`,
      'demand.gpuModels',
      'type',
    );
  for (const m of gpuModels) checkName(m, 'demand.gpuModels', where);
  let parents = spec.parents ?? [];
  if (!Array.isArray(parents) || parents.length > PARENTS_MAX)
    throw new SchedulerInputError(
      `${where}: parents must be an array of at most ${PARENTS_MAX} ids`,
      'parents',
      'max',
    );
  for (const p of parents) checkName(p, 'parents', where);
  // A parent listed twice is one edge: the script counts each open parent once (a count per
  // listing would leave the child pending for ever). Only tasks with 2+ parents pay for it.
  if (parents.length > 1) {
    const distinct = new Set(parents);
    if (distinct.size < parents.length) parents = [...distinct];
  }
  if (spec.idempotencyKey !== undefined) {
    const k = spec.idempotencyKey;
    if (typeof k !== 'string' || k.length === 0 || k.length > IDEM_KEY_MAX || /[\t\n]/.test(k))
      throw new SchedulerInputError(
        `${where}: idempotencyKey must be 1-${IDEM_KEY_MAX} characters without tabs or newlines`,
        'idempotencyKey',
        'length',
      );
  }
  let payload: string | undefined;
  try {
    payload = JSON.stringify(spec.payload ?? null) as string | undefined;
  } catch (err) {
    throw new SchedulerInputError(
      `${where}: payload must be JSON-serializable: ${(err as Error).message}`,
      'payload',
      'json',
    );
  }
  // A function or a symbol stringifies to nothing rather than throwing.
  if (payload === undefined)
    throw new SchedulerInputError(`${where}: payload must be JSON-serializable`, 'payload', 'json');
  if (Buffer.byteLength(payload) > limits.payloadBytesMax)
    throw new SchedulerInputError(
      `${where}: payload must be at most ${limits.payloadBytesMax} bytes as JSON`,
      'payload',
      'max_bytes',
    );
  const estimateMs =
    spec.estimateMs === undefined
      ? undefined
      : checkNumber(spec.estimateMs, 'estimateMs', where, 0, 1e12);
  return {
    id,
    idempotencyKey: spec.idempotencyKey ?? '',
    type,
    stage: spec.stage === undefined ? type : checkName(spec.stage, 'stage', where),
    tenant: spec.tenant === undefined ? 'default' : checkName(spec.tenant, 'tenant', where),
    jobId: spec.jobId === undefined ? id : checkName(spec.jobId, 'jobId', where),
    priority: checkNumber(spec.priority ?? 0, 'priority', where, -1e9, 1e9),
    cpuMilli: Math.round(cpu * 1000),
    memMb: Math.ceil(memMb),
    gpu,
    gpuMilli,
    gpuModels,
    estimateMs,
    payload,
    parents,
    criticalPathMs:
      spec.criticalPathMs === undefined
        ? -1
        : checkNumber(spec.criticalPathMs, 'criticalPathMs', where, 0, 1e12),
  };
}

/**
 * Checks a batch: sizes, in-batch parents before their children, and fills each task's
 * critical path (its estimate plus the longest path below it among the batch's tasks) where
 * the caller gave none.
 */
export function normalizeBatch(
  specs: readonly TaskSpec[],
  newId: () => string,
  limits: SubmitLimits,
): NormalTask[] {
  if (specs.length > SUBMIT_BATCH_MAX)
    throw new SchedulerInputError(
      `submit: at most ${SUBMIT_BATCH_MAX} tasks per call, got ${specs.length}`,
      'tasks',
      'max',
    );
  const tasks = specs.map((s, i) => normalizeTask(s, i, newId, limits));
  // One id names one task of a batch: with an id twice, which one a parent or an idempotency
  // match meant is ambiguous (the second could be dropped as "exists" though nothing was made).
  const position = new Map<string, number>();
  tasks.forEach((t, i) => {
    if (position.has(t.id))
      throw new SchedulerInputError(
        `task ${t.id}: id appears twice in one batch (#${position.get(t.id)} and #${i})`,
        'id',
        'unique',
      );
    position.set(t.id, i);
  });
  tasks.forEach((t, i) => {
    // A job named after one of its tasks is ambiguous: the scripts take job == id to mean "a
    // job of this one task, no job row", so that task would leave the job uncounted and report
    // it finished on its own. A job of several tasks needs an id no task of the batch has.
    if (t.jobId !== t.id && position.has(t.jobId))
      throw new SchedulerInputError(
        `task ${t.id}: jobId ${t.jobId} is the id of a task of the batch (a job of several tasks needs an id no task has; a task's own id is a job of that task alone)`,
        'jobId',
        'not_task_id',
      );
    for (const p of t.parents) {
      const at = position.get(p);
      if (p === t.id || (at !== undefined && at > i))
        throw new SchedulerInputError(
          `task ${t.id}: parent ${p} must come earlier in the batch (a DAG, listed parents first)`,
          'parents',
          'order',
        );
    }
  });
  // Critical paths, children before parents (children come later in the batch).
  const below = new Float64Array(tasks.length);
  for (let i = tasks.length - 1; i >= 0; i--) {
    const t = tasks[i] as NormalTask;
    if (t.criticalPathMs < 0) t.criticalPathMs = (t.estimateMs ?? 0) + (below[i] as number);
    for (const p of t.parents) {
      const at = position.get(p);
      if (at !== undefined) below[at] = Math.max(below[at] as number, t.criticalPathMs);
    }
  }
  return tasks;
}

/**
 * One packed submit entry (submit-12.lua): id, idempotency key, parents, job, tenant, estimate
 * (the last three empty for a task that is its own job: only a job row uses them, and the
 * script scans fewer bytes), then the byte lengths of the attrs block (the first 12 attrs
 * fields, tab-separated) and of the JSON payload, then the two blocks back to back. The script
 * cuts the blocks by their lengths instead of scanning them with a pattern (~50 Redis
 * instructions per byte: a payload of 1 KB cost ~49k per task).
 */
export function encodeTask(t: NormalTask): string {
  const estimate = t.estimateMs === undefined ? '' : t.estimateMs;
  const parents = t.parents.length === 0 ? '' : t.parents.join(',');
  const models = t.gpuModels.length === 0 ? '' : t.gpuModels.join(',');
  const attrs =
    `${t.type}\t${t.stage}\t${t.tenant}\t${t.jobId}\t${t.priority}\t${t.cpuMilli}\t${t.memMb}\t` +
    `${t.gpu}\t${t.gpuMilli}\t${models}\t${estimate}\t${t.criticalPathMs}`;
  const job = t.jobId === t.id ? '\t\t' : `${t.jobId}\t${t.tenant}\t${estimate}`;
  return (
    `${t.id}\t${t.idempotencyKey}\t${parents}\t${job}\t` +
    `${Buffer.byteLength(attrs)}\t${Buffer.byteLength(t.payload)}\t${attrs}${t.payload}`
  );
}
