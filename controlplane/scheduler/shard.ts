// One scheduler shard's state transitions: a typed call per Lua script (one round trip each),
// and the shard's tables for reads. Everything else in the scheduler goes through here.
import { randomUUID } from 'node:crypto';
import type { WorkerView } from '../../policies/scheduling/index.ts';
import type { RedisClient } from '../redis/connect.ts';
import type { Keys } from '../store/keys.ts';
import { Table } from '../store/table.ts';
import { schedulerErrorFromReply } from './errors.ts';
import { SchedKeys } from './keys.ts';
import { decodeAttrs, tableSpecs, typesOf, type TaskAttrs } from './schema.ts';
import { schedulerScripts, type SchedulerScript } from './scripts.ts';
import { encodeTask, type NormalTask } from './tasks.ts';
import type {
  SettleItem,
  SettleResult,
  SettleStatus,
  SubmitResult,
  TaskJobEnded,
  WorkerCapacity,
} from './types.ts';

export type ClaimStatus = 'ok' | 'gone' | 'noworker' | 'full' | 'unhandled';

export interface AssignmentArg {
  taskId: string;
  workerId: string;
  gpus?: readonly number[];
}

/** A runnable task as the dispatch script returns it (see views.ts for the policy's view). */
export interface RawTask {
  id: string;
  readyAt: number;
  /** Absent for entries up to the caller's marker (it holds them already). */
  attempts?: number;
  attrs?: TaskAttrs;
}

/** A live worker with free capacity, as the policy sees it, plus its free slots. */
export interface FreeWorker {
  view: WorkerView;
  freeSlots: number;
}

export interface DispatchReply {
  /** The outcome of each assignment sent, in order. */
  claims: ClaimStatus[];
  /** Runnable tasks in the shard (not just the window). */
  queued: number;
  /** The rank of the window's first entry in the runnable index. */
  start: number;
  /** Tasks made runnable in the shard so far (a counter the scripts that make them keep). */
  arrived: number;
  tasks: RawTask[];
  tenants: Map<string, { running: number; servedMs: number }>;
  jobRemainingWorkMs: Map<string, number>;
  workers: FreeWorker[];
}

export interface DispatchArgs {
  leaseMs: number;
  retryLimit: number;
  backoffMs: number;
  window: number;
  workersMax: number;
  windowPerSlot: number;
  windowMin: number;
  /** The last window entry whose attrs the caller holds, or undefined. */
  marker?: { readyAt: number; id: string };
  /** Tenants and jobs whose numbers the caller wants besides those of new entries. */
  tenants?: readonly string[];
  jobs?: readonly string[];
  assignments: readonly AssignmentArg[];
  /** Start the window after this entry (or its ready time, if it is gone); default: the head. */
  after?: { readyAt: number; id: string };
}

/** The positions of `assignments` grouped by worker (first seen first), each group in order. */
export function byWorker(assignments: readonly AssignmentArg[]): number[] {
  const groups = new Map<string, number[]>();
  assignments.forEach((x, k) => {
    const g = groups.get(x.workerId);
    if (g) g.push(k);
    else groups.set(x.workerId, [k]);
  });
  return [...groups.values()].flat();
}

export interface SettleArgs {
  durationsKept: number;
  usageBucketMs: number;
  usageTtlMs: number;
  jobTtlMs: number;
}

export interface ReapReply {
  expired: number;
  retried: number;
  dead: number;
  dropped: number;
  promoted: number;
  workersRemoved: number;
  expiredTasks: { id: string; attempt: number }[];
  /** Jobs ended by a task dead-lettered in this pass (lease expired, attempts spent). */
  jobsEnded: TaskJobEnded[];
}

/** `n` jobs-ended entries of a script's reply from `at` (4 fields each). */
function jobsEndedOf(r: readonly unknown[], n: number, at: number): TaskJobEnded[] {
  const out: TaskJobEnded[] = [];
  for (let j = 0, i = at; j < n; j++, i += 4)
    out.push({
      taskId: String(r[i]),
      jobId: String(r[i + 1]),
      tenant: String(r[i + 2]),
      completionMs: Number(r[i + 3]),
    });
  return out;
}

/** (job, tenant, completion ms) triples after a settle item's fields: jobs its cascade ended. */
function othersEndedOf(taskId: string, f: readonly string[]): TaskJobEnded[] {
  const out: TaskJobEnded[] = [];
  for (let i = 0; i + 2 < f.length; i += 3)
    out.push({
      taskId,
      jobId: f[i] as string,
      tenant: f[i + 1] as string,
      completionMs: Number(f[i + 2]),
    });
  return out;
}

/** What a cancel did (cancel-12.lua). */
export interface CancelReply {
  /**
   * `cancelled` now; `already` cancelled before (nothing written); `refused`: `state` says why
   * (ended: done, dead, upstream_failed; or `moving`: frozen by a placement move, or not leased
   * while its tenant moves off this shard); `moved`: a tombstone, the task is on another shard;
   * `unknown`: no such task.
   */
  status: 'cancelled' | 'already' | 'refused' | 'moved' | 'unknown';
  /** The task's tenant ('' for moved and unknown). */
  tenant: string;
  state?: string;
  /** Tasks downstream marked upstream_failed by this call (past the cascade's bound, the
   * reaper marks the rest). */
  dependents: number;
  jobsEnded: TaskJobEnded[];
}

export interface HeartbeatArgs {
  workerId: string;
  heartbeatMs: number;
  capacity: WorkerCapacity;
  slots: number;
  host: string;
  pid: number;
  /** Task types the worker runs (its handlers); absent: every type. */
  types?: readonly string[];
  /** Copies whose lease renewal is due. */
  renew: readonly { taskId: string; token: string; leaseMs: number }[];
}

const str = (v: unknown): string => (v === null || v === undefined ? '' : String(v));

/** A finished job row's time to live when the caller gives none (the reaper's default). */
export const DEFAULT_JOB_TTL_MS = 24 * 3_600_000;

/** A job of several tasks that a submit finished (every task of it upstream_failed at once). */
export interface JobEnded {
  jobId: string;
  tenant: string;
  completionMs: number;
}

export class SchedShard {
  readonly k: SchedKeys;
  readonly tables;
  private readonly head: string[];
  /** The shard's fixed keys, built once (every script call takes them). */
  private readonly shardKeys: string[];

  constructor(
    readonly redis: RedisClient,
    keys: Keys,
    readonly shard = '0',
  ) {
    this.k = new SchedKeys(keys, shard);
    const specs = tableSpecs(this.k.family);
    this.tables = {
      tasks: new Table(redis, keys, specs.tasks),
      workers: new Table(redis, keys, specs.workers),
      jobs: new Table(redis, keys, specs.jobs),
      dead: new Table(redis, keys, specs.dead),
    };
    this.head = this.k.prefixes();
    this.shardKeys = this.k.shardKeys();
  }

  private run(name: SchedulerScript, now: number, args: (string | number)[]): Promise<unknown[]> {
    return schedulerScripts.run(this.redis, name, this.shardKeys, [now, ...this.head, ...args]);
  }

  async submit(tasks: readonly NormalTask[], now: number): Promise<SubmitResult[]> {
    return (await this.submitBatch(tasks, now)).results;
  }

  /** `submit`, also returning the jobs the batch finished (they need reporting). */
  async submitBatch(
    tasks: readonly NormalTask[],
    now: number,
    jobTtlMs = DEFAULT_JOB_TTL_MS,
  ): Promise<{ results: SubmitResult[]; jobsEnded: JobEnded[] }> {
    if (tasks.length === 0) return { results: [], jobsEnded: [] };
    // One argument for the whole batch, each entry ended by a newline (submit-12.lua).
    const entries: string[] = [];
    for (const t of tasks) entries.push(encodeTask(t), '\n');
    const reply = await this.run('submit', now, [
      tasks.length,
      entries.join(''),
      jobTtlMs,
      this.k.movingTenants(),
    ]);
    const err = schedulerErrorFromReply(reply, `scheduler shard ${this.shard}`);
    if (err) throw err;
    // The reply lists only the tasks that existed already (batch position, their id), then
    // the jobs the batch finished.
    const results: SubmitResult[] = tasks.map((t) => ({ id: t.id, created: true }));
    const k = Number(reply[1]);
    let i = 2;
    for (; i < 2 + 2 * k; i += 2)
      results[Number(reply[i]) - 1] = { id: String(reply[i + 1]), created: false };
    const jobsEnded: JobEnded[] = [];
    for (; i + 2 < reply.length; i += 3)
      jobsEnded.push({
        jobId: String(reply[i]),
        tenant: String(reply[i + 1]),
        completionMs: Number(reply[i + 2]),
      });
    return { results, jobsEnded };
  }

  async dispatch(a: DispatchArgs, now: number): Promise<DispatchReply> {
    const args: (string | number)[] = [
      a.leaseMs,
      a.retryLimit,
      a.backoffMs,
      a.window,
      a.workersMax,
      a.windowPerSlot,
      a.windowMin,
      a.marker ? `${a.marker.readyAt}\t${a.marker.id}` : '',
      (a.tenants ?? []).join(','),
      (a.jobs ?? []).join(','),
      a.assignments.length,
    ];
    // One argument for all assignments, grouped by worker (dispatch-12.lua): a line
    // `\t<worker id>` starts a group, then one line `<task id>\t<GPU devices>` per task, so a
    // worker id is scanned once per group, not once per task. Claims on different workers do
    // not compete for capacity, and within a worker the policy's order is kept.
    const order = byWorker(a.assignments);
    let entries = '';
    let group: string | undefined;
    for (const k of order) {
      const x = a.assignments[k] as AssignmentArg;
      if (x.workerId !== group) entries += `\t${(group = x.workerId)}\n`;
      entries += `${x.taskId}\t${x.gpus ? x.gpus.join(',') : ''}\n`;
    }
    args.push(entries, a.after ? `${a.after.readyAt}\t${a.after.id}` : '');
    const r = await this.run('dispatch', now, args);
    let i = 0;
    const next = (): unknown => r[i++];
    const n = Number(next());
    // The statuses come in the order sent: each goes back to its assignment's place.
    const claims: ClaimStatus[] = new Array<ClaimStatus>(n);
    for (let c = 0; c < n; c++) claims[order[c] as number] = String(next()) as ClaimStatus;
    const queued = Number(next());
    // The window (id, ready time, ...); entries past the first `held` bring attempts and attrs.
    const window = next() as string[];
    const held = Number(next());
    const start = Number(next());
    const arrived = Number(next());
    const tasks: RawTask[] = [];
    for (let t = 0; t < window.length; t += 2) {
      const id = String(window[t]);
      const readyAt = Number(window[t + 1]);
      if (t < 2 * held) tasks.push({ id, readyAt });
      else
        tasks.push({
          id,
          readyAt,
          attempts: Number(next()),
          attrs: decodeAttrs(String(next())),
        });
    }
    const tenants = new Map<string, { running: number; servedMs: number }>();
    const nm = Number(next());
    for (let t = 0; t < nm; t++)
      tenants.set(String(next()), { running: Number(next()), servedMs: Number(next()) });
    const jobRemainingWorkMs = new Map<string, number>();
    const nj = Number(next());
    for (let t = 0; t < nj; t++) jobRemainingWorkMs.set(String(next()), Number(next()));
    const workers: FreeWorker[] = [];
    const nw = Number(next());
    for (let t = 0; t < nw; t++) {
      const id = String(next());
      const cpuM = Number(next());
      const mem = Number(next());
      const gpu = Number(next());
      const freeCpuM = Number(next());
      const freeMem = Number(next());
      const gpuFree = str(next());
      const freeSlots = Number(next());
      const model = str(next());
      const types = typesOf(str(next()));
      const devices = gpuFree === '' ? [] : gpuFree.split(',').map(Number);
      const view: WorkerView = {
        id,
        capacity: { cpu: cpuM / 1000, memMb: mem, gpu },
        free: {
          cpu: freeCpuM / 1000,
          memMb: freeMem,
          gpu: devices.reduce((s, d) => s + d, 0) / 1000,
        },
      };
      if (devices.length > 0) view.gpuFreeMilli = devices;
      if (model !== '') view.gpuModel = model;
      if (types) view.types = types;
      workers.push({ view, freeSlots });
    }
    return { claims, queued, start, arrived, tasks, tenants, jobRemainingWorkMs, workers };
  }

  async settle(items: readonly SettleItem[], a: SettleArgs, now: number): Promise<SettleResult[]> {
    if (items.length === 0) return [];
    const args: (string | number)[] = [
      a.durationsKept,
      a.usageBucketMs,
      a.usageTtlMs,
      a.jobTtlMs,
      items.length,
    ];
    // One argument for all items, each ended by a newline (settle-12.lua). The detail (a
    // result is JSON; an error message may hold anything) is sent with its length in bytes.
    let entries = '';
    for (const it of items) {
      const detail =
        it.outcome === 'ok'
          ? (it.resultJson ?? JSON.stringify(it.detail ?? null))
          : String(it.detail ?? 'failed');
      // Only a failure uses the retry settings (fewer bytes for the script to scan).
      const retry = it.outcome === 'ok' ? '\t' : `${it.retryLimit ?? 0}\t${it.backoffMs ?? 0}`;
      entries += `${it.taskId}\t${it.token}\t${it.outcome}\t${retry}\t${Buffer.byteLength(detail)}\t${detail}\n`;
    }
    args.push(entries);
    const r = await this.run('settle', now, args);
    return items.map((it, j) => {
      const f = String(r[j]).split('\t');
      // '@<submitted_at>': a task that is its own job, ended now (settle-12.lua).
      const j3 = f[3] ?? '-1';
      const jobMs = j3.startsWith('@') ? Math.max(0, now - Number(j3.slice(1))) : Number(j3);
      return {
        taskId: it.taskId,
        status: f[0] as SettleStatus,
        ms: Number(f[1]),
        attempts: Number(f[2]),
        ...(jobMs >= 0 ? { jobCompletionMs: jobMs } : {}),
        jobId: f[4] ?? '',
        stage: f[5] ?? '',
        tenant: f[6] ?? '',
        ...(f.length > 7 ? { othersEnded: othersEndedOf(it.taskId, f.slice(7)) } : {}),
      };
    });
  }

  /**
   * Returns whether the worker's row was created by this beat, its incarnation, and the tokens
   * of the copies sent for renewal that it no longer holds.
   */
  async heartbeat(
    a: HeartbeatArgs,
    now: number,
  ): Promise<{ registered: boolean; incarnation: string; lost: string[] }> {
    const c = a.capacity;
    const args: (string | number)[] = [
      a.workerId,
      a.heartbeatMs,
      Math.round(c.cpu * 1000),
      Math.floor(c.memMb),
      c.gpu ?? 0,
      c.gpuModel ?? '',
      a.slots,
      a.host,
      a.pid,
      a.types ? a.types.join(',') : '*',
      // Names this call: a resend of it (ioredis, after a lost reply) is told what it did.
      randomUUID(),
      a.renew.length,
    ];
    for (const x of a.renew) args.push(x.taskId, x.token, x.leaseMs);
    const r = await this.run('heartbeat', now, args);
    return {
      registered: Number(r[0]) === 1,
      incarnation: String(r[1]),
      lost: r.slice(2).map(String),
    };
  }

  async deregister(workerId: string, now: number): Promise<boolean> {
    const r = await this.run('deregister', now, [workerId]);
    return Number(r[0]) === 1;
  }

  async reap(
    a: { max: number; jobTtlMs: number; retryLimit: number; backoffMs: number },
    now: number,
  ): Promise<ReapReply> {
    const r = (await this.run('reap', now, [a.max, a.jobTtlMs, a.retryLimit, a.backoffMs])).map(
      (x) => x as string | number,
    );
    const nj = Number(r[6]);
    const jobsEnded = jobsEndedOf(r, nj, 7);
    let i = 7 + 4 * nj;
    const expiredTasks: ReapReply['expiredTasks'] = [];
    for (; i + 1 < r.length; i += 2)
      expiredTasks.push({ id: String(r[i]), attempt: Number(r[i + 1]) });
    return {
      expired: Number(r[0]),
      retried: Number(r[1]),
      dead: Number(r[2]),
      dropped: Number(r[3]),
      promoted: Number(r[4]),
      workersRemoved: Number(r[5]),
      expiredTasks,
      jobsEnded,
    };
  }

  /** Cancels a task that has not ended (cancel-12.lua); `actor` and `reason` go on its row. */
  async cancel(
    id: string,
    a: { actor: string; reason: string; jobTtlMs: number },
    now: number,
  ): Promise<CancelReply> {
    const r = await this.run('cancel', now, [
      a.jobTtlMs,
      id,
      a.actor,
      a.reason,
      this.k.movingTenants(),
      randomUUID(), // names this call: a resend of it (ioredis) is told what it did
    ]);
    const n = Number(r[3]);
    return {
      status: String(r[0]) as CancelReply['status'],
      tenant: String(r[1]),
      ...(r[0] === 'refused' ? { state: String(r[4 + 4 * n]) } : {}),
      dependents: Number(r[2]),
      jobsEnded: jobsEndedOf(r, n, 4),
    };
  }

  async speculate(
    knobs: { leaseMs: number; retryLimit: number; backoffMs: number },
    items: readonly {
      taskId: string;
      seenToken: string;
      workerId: string;
      gpus?: readonly number[];
    }[],
    now: number,
  ): Promise<{ status: string; token: string }[]> {
    if (items.length === 0) return [];
    const args: (string | number)[] = [
      knobs.leaseMs,
      knobs.retryLimit,
      knobs.backoffMs,
      items.length,
    ];
    for (const it of items)
      args.push(it.taskId, it.seenToken, it.workerId, (it.gpus ?? []).join(','));
    const r = await this.run('speculate', now, args);
    return items.map((_, j) => ({ status: String(r[2 * j]), token: String(r[2 * j + 1]) }));
  }

  async prune(
    a: { doneBefore: number; doneMax: number; deadBefore: number; deadMax: number; budget: number },
    now: number,
  ): Promise<{ done: number; dead: number }> {
    const r = await this.run('prune', now, [
      a.doneBefore,
      a.doneMax,
      a.deadBefore,
      a.deadMax,
      a.budget,
    ]);
    return { done: Number(r[0]), dead: Number(r[1]) };
  }
}
