// The scheduler's typed errors. Expected failures (bad input, an unknown parent or task) are
// typed with a stable code and an HTTP status; scripts return coded failures and ONE function
// (schedulerErrorFromReply) maps them. Per-task outcomes that are not failures of the call (a
// stale completion, a task someone else claimed first) are results, not errors.
import { errorFromCode, FieldError, KnobosError } from '../store/errors.ts';

/** A task or worker description breaks a rule; names the field and the rule. */
export class SchedulerInputError extends FieldError {
  readonly code = 'KNOBOS_SCHEDULER_INVALID';
  readonly status = 400;
}

/** A submitted task depends on a task the shard does not know. */
export class UnknownParentError extends KnobosError {
  readonly code = 'KNOBOS_SCHEDULER_UNKNOWN_PARENT';
  readonly status = 422;
}

/**
 * A submitted task depends on a task that moved to another shard (a live placement migration
 * left a tombstone here): the submit reached the tenant's old shard. Same code and status as
 * an unknown parent (the parent is not on this shard), rule `parent_moved`; nothing was written.
 */
export class ParentMovedError extends UnknownParentError {}

/**
 * A submitted task of one tenant depends on an open task of another tenant that is moving off
 * this shard (a live placement migration, from its freeze until it is done or refused): the edge
 * would stay on this shard while the parent moves. Rule `parent_moving`; nothing was written.
 * After the move the parent is on another shard, where an edge from here cannot reach it.
 */
export class ParentMovingError extends KnobosError {
  readonly code = 'KNOBOS_SCHEDULER_PARENT_MOVING';
  readonly status = 409;
}

/**
 * A submitted task's idempotency key (or its id) names a task submitted with other content
 * (`differs`: the first field that differs): a retry must send the same task, a new task needs
 * a new key. Nothing of the batch was written on that shard (a router's batch is atomic per
 * shard: its parts on other shards may have been).
 */
export class IdempotencyConflictError extends FieldError {
  readonly code = 'KNOBOS_SCHEDULER_IDEMPOTENCY_CONFLICT';
  readonly status = 409;
}

export class UnknownTaskError extends KnobosError {
  readonly code = 'KNOBOS_SCHEDULER_UNKNOWN_TASK';
  readonly status = 404;
}

/**
 * Script codes of the scheduler; keep in step with scripts/includes/shard.lua (-101) and
 * scripts/submit-12.lua (-102 to -105).
 */
export const SCHED_CODES = {
  UNKNOWN_PARENT: -101,
  PARENT_MOVED: -102,
  JOB_IS_TASK: -103,
  PARENT_MOVING: -104,
  IDEMPOTENCY_CONFLICT: -105,
} as const;

export const SCHEDULER_ERROR_CODES = [
  'KNOBOS_SCHEDULER_INVALID',
  'KNOBOS_SCHEDULER_UNKNOWN_PARENT',
  'KNOBOS_SCHEDULER_PARENT_MOVING',
  'KNOBOS_SCHEDULER_UNKNOWN_TASK',
  'KNOBOS_SCHEDULER_IDEMPOTENCY_CONFLICT',
] as const;

/**
 * Maps a scheduler script's `{ code, ... }` reply to a typed error (null when OK); the store's
 * codes go through the store's mapping.
 */
export function schedulerErrorFromReply(reply: readonly unknown[], target: string): Error | null {
  const code = Number(reply[0]);
  if (code === SCHED_CODES.UNKNOWN_PARENT) {
    const task = String(reply[1]);
    const parent = String(reply[2]);
    return new UnknownParentError(`task ${task}: parent ${parent} does not exist in ${target}`, {
      field: 'parents',
      rule: 'exists',
      task,
      parent,
    });
  }
  if (code === SCHED_CODES.PARENT_MOVED) {
    const task = String(reply[1]);
    const parent = String(reply[2]);
    return new ParentMovedError(
      `task ${task}: parent ${parent} moved from ${target} to another shard (tenant migrated)`,
      { field: 'parents', rule: 'parent_moved', task, parent },
    );
  }
  if (code === SCHED_CODES.PARENT_MOVING) {
    const task = String(reply[1]);
    const parent = String(reply[2]);
    const parentTenant = String(reply[3]);
    return new ParentMovingError(
      `task ${task}: parent ${parent} is a task of tenant ${parentTenant}, which is moving off ${target}; a task of another tenant cannot depend on it while it moves (the edge would stay behind)`,
      { field: 'parents', rule: 'parent_moving', task, parent, parentTenant },
    );
  }
  if (code === SCHED_CODES.JOB_IS_TASK) {
    const task = String(reply[1]);
    const job = String(reply[2]);
    return new SchedulerInputError(
      `task ${task}: jobId ${job} is the id of a task in ${target} (a job of several tasks needs an id no task has)`,
      'jobId',
      'not_task_id',
    );
  }
  if (code === SCHED_CODES.IDEMPOTENCY_CONFLICT) {
    const task = String(reply[1]);
    const existing = String(reply[2]);
    const differs = String(reply[3]);
    const key = String(reply[4] ?? '');
    // '' when the id matched (a task sent with a new key and a known id).
    const by = key === '' ? `id ${task}` : `idempotency key ${key}`;
    return new IdempotencyConflictError(
      `task ${task}: ${by} names task ${existing} in ${target}, submitted with another ${differs}; a retry must send the same task (a new task needs a new ${key === '' ? 'id' : 'key'})`,
      key === '' ? 'id' : 'idempotencyKey',
      'same_content',
      { task, existing, differs },
    );
  }
  return errorFromCode(reply, { target });
}
