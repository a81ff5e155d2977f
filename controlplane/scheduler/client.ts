// The submit side: checks tasks, submits a batch in one atomic step (submit-12.lua), counts
// submissions and records sampled arrival traces. Producers use it without running a
// dispatcher; the scheduler service has one too.
import { randomBytes } from 'node:crypto';
import type { Telemetry } from '../telemetry/metrics.ts';
import type { TraceWriter } from '../telemetry/traces.ts';
import { systemClock, type Clock } from './clock.ts';
import { UnknownTaskError } from './errors.ts';
import { decodeTaskRow, type TaskRow } from './schema.ts';
import { DEFAULT_JOB_TTL_MS, type SchedShard } from './shard.ts';
import { normalizeBatch, type NormalTask } from './tasks.ts';
import { recordJobCompletion } from './traces.ts';
import type { SubmitResult, TaskSpec } from './types.ts';

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
    // Reported as a settle or the reaper reports the jobs they end (failed: its tasks did).
    const t = this.o.telemetry;
    for (const j of jobsEnded) {
      if (!t) break;
      if (!this.o.jobs) t.observe('job_completion_ms', j.completionMs);
      else
        recordJobCompletion(t, this.o.jobs, {
          at: now,
          taskId: '',
          jobId: j.jobId,
          tenant: j.tenant,
          ms: j.completionMs,
          failed: true,
        });
    }
    return results;
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
      estimate_ms: t.estimateMs ?? -1,
      parents: t.parents.join(','),
    });
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
