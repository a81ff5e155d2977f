// The submit side: checks tasks, submits a batch in one atomic step (submit-12.lua), counts
// submissions and records sampled arrival traces. Producers use it without running a
// dispatcher; the scheduler service has one too.
import { randomBytes } from 'node:crypto';
import type { Telemetry } from '../telemetry/metrics.ts';
import type { TraceWriter } from '../telemetry/traces.ts';
import { systemClock, type Clock } from './clock.ts';
import { StateError } from '../store/errors.ts';
import { SchedulerInputError, UnknownTaskError } from './errors.ts';
import { readMigration, TenantMovingError } from './migration-row.ts';
import { decodeAttrs, decodeTaskRow, type TaskRow } from './schema.ts';
import { DEFAULT_JOB_TTL_MS, type SchedShard } from './shard.ts';
import { checkName, normalizeBatch, type NormalTask } from './tasks.ts';
import { recordJobCompletion } from './traces.ts';
import { ENDED_STATES, type SubmitResult, type TaskJobEnded, type TaskSpec } from './types.ts';

/** What `cancel` did: `changed` false when the task was cancelled already. */
export interface CancelResult {
  id: string;
  changed: boolean;
  /** Tasks downstream marked upstream_failed now (the reaper marks any past the bound). */
  dependents: number;
}

/** What `cancelJob` did. */
export interface CancelJobResult {
  job: string;
  /** The job's tasks this call cancelled. */
  cancelled: string[];
  /** Tasks downstream of those marked upstream_failed by their cancels. */
  dependents: number;
  /**
   * The job's tasks that had ended when their turn came (done, dead, upstream_failed,
   * cancelled; also those an earlier cancel of this call made upstream_failed, which its
   * `dependents` count too) or that retention had removed.
   */
  ended: number;
}

/** Task states read per pipeline while a job's cancel looks for the tasks still open. */
const JOB_CANCEL_PAGE = 500;

const ACTOR_MAX = 200;
const REASON_MAX = 500;

/** A cancel's actor and reason, checked as `cancel` checks them (SchedulerInputError). */
export function checkCancelInput(o: { actor: unknown; reason?: unknown }): void {
  checkText(o.actor, 'actor', ACTOR_MAX, true);
  checkText(o.reason ?? '', 'reason', REASON_MAX, false);
}

/** A cancel's actor or reason: a string of at most `max` characters (the actor not empty). */
function checkText(v: unknown, field: string, max: number, required: boolean): void {
  if (typeof v !== 'string')
    throw new SchedulerInputError(`${field} must be a string`, field, 'type');
  if (required && v === '')
    throw new SchedulerInputError(`${field} must not be empty`, field, 'min');
  // Characters as JSON schemas count them (code points), as the API's checks do.
  if ([...v].length > max)
    throw new SchedulerInputError(`${field} must be at most ${max} characters`, field, 'max');
}

export interface SchedulerClientOptions {
  shard: SchedShard;
  clock?: Clock;
  telemetry?: Telemetry;
  arrivals?: TraceWriter;
  /** `jobs` traces of jobs a submit finished (all its tasks upstream_failed at once). */
  jobs?: TraceWriter;
  /** A finished job row's time to live (as the reaper's and the settle's `jobTtlMs`). */
  jobTtlMs?: number;
  /** Id generator for tasks submitted without one. */
  newId?: () => string;
  payloadBytesMax?: number;
}

/** Ids unique across processes: a random prefix per client and a counter. */
export function idGenerator(prefix = randomBytes(5).toString('hex')): () => string {
  let n = 0;
  return () => `${prefix}-${(n++).toString(36)}`;
}

export class SchedulerClient {
  readonly shard: SchedShard;
  private readonly clock: Clock;
  private readonly newId: () => string;
  private readonly payloadBytesMax: number;

  constructor(private readonly o: SchedulerClientOptions) {
    this.shard = o.shard;
    this.clock = o.clock ?? systemClock;
    this.newId = o.newId ?? idGenerator();
    this.payloadBytesMax = o.payloadBytesMax ?? 64 * 1024;
  }

  async submit(task: TaskSpec): Promise<SubmitResult> {
    const [r] = await this.submitMany([task]);
    return r as SubmitResult;
  }

  /** Submits a batch atomically: all of it or (on an error) none of it. */
  async submitMany(tasks: readonly TaskSpec[]): Promise<SubmitResult[]> {
    return this.submitPrepared(this.prepare(tasks));
  }

  /** Checks a batch and fills its defaults (ids included) without sending it. */
  prepare(tasks: readonly TaskSpec[]): NormalTask[] {
    return normalizeBatch(tasks, this.newId, { payloadBytesMax: this.payloadBytesMax });
  }

  /** Submits a batch `prepare` returned, atomically. */
  async submitPrepared(normal: readonly NormalTask[]): Promise<SubmitResult[]> {
    const now = this.clock.now();
    const { results, jobsEnded } = await this.shard.submitBatch(
      normal,
      now,
      this.o.jobTtlMs ?? DEFAULT_JOB_TTL_MS,
    );
    let created = 0;
    results.forEach((r, i) => {
      if (!r.created) return;
      created++;
      this.trace(normal[i] as NormalTask, now);
    });
    this.o.telemetry?.inc('tasks_submitted', created);
    this.reportJobsEnded(
      jobsEnded.map((j) => ({ ...j, taskId: '' })),
      now,
    );
    return results;
  }

  /**
   * Cancels a task that has not ended (cancel-12.lua): it leaves its queue, or its running
   * copies are stopped (their handlers' signals abort; a completion that still comes is
   * ignored); the row says `cancelled`, `cancelled_by` and, in `error`, who and why; its job
   * counts it failed, and tasks downstream become upstream_failed. Cancelling a cancelled task
   * changes nothing (`changed: false`). Refused: an ended task (StateError, 409), a task this
   * shard does not have or gave to another shard, or of another tenant than `tenant` when given
   * (UnknownTaskError), and, while its tenant moves between shards, a task whose row the move
   * may copy or has copied (TenantMovingError, 503: the cancel would be lost with the copy; try
   * again): on the old shard any task but a running one (the script checks the shard's
   * moving-tenants set), on the new shard before the switch, on the old one after it (the
   * migration row, read first: a move's later phase only comes after the switch).
   */
  async cancel(
    id: string,
    o: { actor: string; reason?: string; tenant?: string },
  ): Promise<CancelResult> {
    checkCancelInput(o);
    const tenant = await this.tenantOf(id);
    // Another tenant's task is missing to a caller that names its tenant.
    if (tenant !== null && o.tenant !== undefined && tenant !== o.tenant)
      throw new UnknownTaskError(
        `task ${id} of tenant ${o.tenant} does not exist in shard ${this.shard.shard}`,
        { task: id, tenant: o.tenant },
      );
    if (tenant !== null) await this.refuseMoving(id, tenant);
    return this.cancelChecked(id, o);
  }

  /** `cancel` once the task's tenant and its move are checked: the script and its outcome. */
  private async cancelChecked(
    id: string,
    o: { actor: string; reason?: string },
  ): Promise<CancelResult> {
    const reason = o.reason ?? '';
    const where = `shard ${this.shard.shard}`;
    const now = this.clock.now();
    const r = await this.shard.cancel(
      id,
      { actor: o.actor, reason, jobTtlMs: this.o.jobTtlMs ?? DEFAULT_JOB_TTL_MS },
      now,
    );
    switch (r.status) {
      case 'unknown':
        throw new UnknownTaskError(`task ${id} does not exist in ${where}`, { task: id });
      case 'moved':
        throw new UnknownTaskError(`task ${id} moved from ${where} to another shard`, {
          task: id,
          rule: 'moved',
        });
      case 'refused':
        if (r.state === 'moving')
          throw new TenantMovingError(
            `task ${id}: tenant ${r.tenant} is moving off ${where} (only a running task can be cancelled meanwhile); try again`,
            { task: id, tenant: r.tenant },
          );
        throw new StateError(
          `task ${id} has ended (${r.state}); only a task not ended can be cancelled`,
          {
            field: 'state',
            rule: 'not_ended',
            task: id,
            state: r.state,
          },
        );
      case 'already':
        return { id, changed: false, dependents: 0 };
      case 'cancelled':
        this.o.telemetry?.inc('tasks_user_cancelled');
        this.reportJobsEnded(r.jobsEnded, now);
        return { id, changed: true, dependents: r.dependents };
    }
  }

  /**
   * Cancels every task of a job that has not ended (as `cancel` does each, so their
   * dependents become upstream_failed, in this job or another). A job of one task, its own
   * job (no job row), is named by the task's id. Tasks submitted to the job after the call
   * read its tasks are not cancelled. A tenant-scoped caller (`tenant`) sees only its own
   * jobs (another's is reported missing). Stops at the first task that cannot be cancelled
   * now (TenantMovingError while the tenant moves): what it cancelled stays cancelled, and
   * a repeated call goes on from there.
   */
  async cancelJob(
    job: string,
    o: { actor: string; reason?: string; tenant?: string },
  ): Promise<CancelJobResult> {
    checkName(job, 'job', 'cancel');
    checkCancelInput(o);
    const where = `shard ${this.shard.shard}`;
    const missing = () =>
      new UnknownTaskError(`job ${job} does not exist in ${where}`, { job, field: 'job' });
    const redis = this.shard.redis;
    const owner = await this.jobTenant(job);
    if (owner === null || (o.tenant !== undefined && owner.tenant !== o.tenant)) throw missing();
    let ids = [job];
    if (owner.row) {
      // A job row made before the sets existed: cancelling what its set names would leave the
      // rest running and say it was done.
      if ((await redis.hget(this.shard.k.job(job), 'tasks_indexed')) !== '1')
        throw new StateError(
          `job ${job}: its tasks are not indexed in ${where} (submitted before job cancel existed); cancel its tasks one by one`,
          { field: 'job', rule: 'indexed', job },
        );
      ids = (await redis.smembers(this.shard.k.jobTasks(job))).sort();
    }
    const out: CancelJobResult = { job, cancelled: [], dependents: 0, ended: 0 };
    for (let i = 0; i < ids.length; i += JOB_CANCEL_PAGE) {
      const page = ids.slice(i, i + JOB_CANCEL_PAGE);
      const p = redis.pipeline();
      for (const id of page) p.hmget(this.shard.k.task(id), 'state', 'attrs');
      const rows = (await p.exec()) ?? [];
      // The tenant's move, once per page (its tasks' rows were just read with their tenant).
      if (page[0] !== undefined) await this.refuseMoving(page[0], owner.tenant);
      for (const [k, id] of page.entries()) {
        const [state, attrs] = (rows[k]?.[1] ?? []) as (string | null)[];
        const a = attrs ? decodeAttrs(attrs) : null;
        // An id retention removed (its task had ended), or that another task took since; or
        // another tenant's task submitted under the job's id, which is not the job's.
        if (a === null || a.job !== job) {
          out.ended++;
          continue;
        }
        if (a.tenant !== owner.tenant) continue;
        if (typeof state !== 'string' || ENDED_STATES.has(state)) {
          out.ended++;
          continue;
        }
        try {
          const r = await this.cancelChecked(id, o);
          if (r.changed) out.cancelled.push(id);
          else out.ended++;
          out.dependents += r.dependents;
        } catch (err) {
          // Ended since the read (it finished, or an earlier cancel here failed it upstream),
          // or removed by retention.
          if (err instanceof UnknownTaskError) out.ended++;
          else if (err instanceof StateError && err.details['rule'] === 'not_ended') out.ended++;
          else throw err;
        }
      }
    }
    return out;
  }

  /**
   * Throws TenantMovingError where `tenant`'s move has rows of it that are not the live ones:
   * on its new shard before the switch (copies, frozen), on its old one after it (to become
   * tombstones). The old shard before the switch is cancel-12.lua's to refuse, atomically.
   */
  private async refuseMoving(id: string, tenant: string): Promise<void> {
    const m = await readMigration(this.shard.redis, this.shard.k.keys, tenant);
    const here = this.shard.shard;
    if (!m || m.from === m.to) return;
    const copying = (m.phase === 'freeze' || m.phase === 'copy') && m.to === here;
    const leaving = (m.phase === 'switched' || m.phase === 'clean') && m.from === here;
    if (copying || leaving)
      throw new TenantMovingError(
        `task ${id}: tenant ${tenant} is moving from shard ${m.from} to ${m.to} (${m.phase}); try again`,
        { task: id, tenant, phase: m.phase },
      );
  }

  /** Jobs a step of this client ended, reported as a settle or the reaper reports theirs (failed). */
  private reportJobsEnded(jobs: readonly TaskJobEnded[], now: number): void {
    const t = this.o.telemetry;
    if (!t) return;
    for (const j of jobs) {
      if (!this.o.jobs) t.observe('job_completion_ms', j.completionMs);
      else
        recordJobCompletion(t, this.o.jobs, {
          at: now,
          taskId: j.taskId,
          jobId: j.jobId,
          tenant: j.tenant,
          ms: j.completionMs,
          failed: true,
        });
    }
  }

  private trace(t: NormalTask, now: number): void {
    this.o.arrivals?.record({
      at: now,
      id: t.id,
      job: t.jobId,
      stage: t.stage,
      type: t.type,
      tenant: t.tenant,
      priority: t.priority,
      cpu: t.cpuMilli / 1000,
      mem_mb: t.memMb,
      gpu: t.gpu,
      gpu_milli: t.gpuMilli,
      gpu_models: t.gpuModels.join(','),
      estimate_ms: t.estimateMs ?? -1,
      parents: t.parents.join(','),
    });
  }

  /** A task's tenant (one field of its row), null when this shard has no such task. */
  /**
   * The tenant of a job: from its row (`row` true), or, for a job that is its own task (no
   * row), from that task's. Null when the shard has neither.
   */
  async jobTenant(job: string): Promise<{ tenant: string; row: boolean } | null> {
    // Before any read: '<job>#tasks' names another job's task set (a WRONGTYPE, a 500 that
    // told any token that job existed).
    checkName(job, 'job', 'job');
    const tenant = await this.shard.redis.hget(this.shard.k.job(job), 'tenant');
    if (tenant !== null) return { tenant, row: true };
    const attrs = await this.shard.redis.hget(this.shard.k.task(job), 'attrs');
    const a = attrs === null ? null : decodeAttrs(attrs);
    return a !== null && a.job === job ? { tenant: a.tenant, row: false } : null;
  }

  async tenantOf(id: string): Promise<string | null> {
    const attrs = await this.shard.redis.hget(this.shard.k.task(id), 'attrs');
    return attrs === null ? null : decodeAttrs(attrs).tenant;
  }

  async get(id: string): Promise<TaskRow | null> {
    const got = await this.shard.tables.tasks.get(this.shard.k.family, id);
    return got ? decodeTaskRow(id, got.row) : null;
  }

  async mustGet(id: string): Promise<TaskRow> {
    const row = await this.get(id);
    if (!row)
      throw new UnknownTaskError(`task ${id} does not exist in shard ${this.shard.shard}`, {
        task: id,
      });
    return row;
  }
}
