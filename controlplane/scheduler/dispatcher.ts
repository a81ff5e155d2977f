// The dispatch loop. Each round trip claims what the policy chose last round and brings back
// the next snapshot (dispatch-12.lua), so a busy dispatcher makes one call per batch. The
// policy is the one the `scheduler.policy` knob names, read from the knob client every round,
// so a change applies on the next round; so do the batch size, lease time and retry knobs.
// When nothing can be dispatched it blocks on the shard's doorbell, which submissions,
// completions, requeues and new workers ring.
import { modelAccepted, typeAccepted } from '../../policies/gpu/fit.ts';
import {
  createSchedulingPolicy,
  type Assignment,
  type Demand,
  type SchedulingPolicy,
  type TaskView,
  type WorkerView,
} from '../../policies/scheduling/index.ts';
import type { KnobClient } from '../knobs/client.ts';
import type { Logger } from '../log.ts';
import type { Telemetry } from '../telemetry/metrics.ts';
import type { TraceWriter } from '../telemetry/traces.ts';
import type { ShadowDecisions } from './shadow.ts';
import type { RegistryPolicies } from './registry-policies.ts';
import type { Clock } from './clock.ts';
import { BlockingList } from './doorbell.ts';
import type { AssignmentArg, DispatchReply, FreeWorker, SchedShard } from './shard.ts';
import { taskViews, type KnownTask } from './views.ts';

export interface DispatcherOptions {
  shard: SchedShard;
  knobs: KnobClient;
  clock: Clock;
  telemetry: Telemetry;
  decisions: TraceWriter;
  /** Learned policy versions from the registry (scheduler.policy_version). */
  registry?: RegistryPolicies;
  /** Shadow mode: a policy asked beside the live one on every round, never acting. */
  shadow?: ShadowDecisions;
  log: Logger;
  /** Most runnable tasks (oldest first) the policy chooses among per round. */
  windowMax: number;
  /** Most workers the policy sees per round. */
  workersMax: number;
  /** Runnable tasks the policy sees per free slot at most (the window shrinks to it) ... */
  windowPerSlot: number;
  /** ... but never fewer than this (or all runnable tasks, when fewer). */
  windowMin: number;
  /** Longest wait on the doorbell before looking again anyway. */
  idleWaitMs: number;
}

/** Task ids recorded per decision trace entry, so one entry stays small. */
const TRACE_TASKS_MAX = 64;

/** An assignment to claim next round, with the task's ready time (for dispatch latency). */
export interface Pending extends AssignmentArg {
  readyAt: number;
}

/**
 * Keeps the policy's assignments in its order, at most `batch`, within each worker's slots, and
 * only the first of a task's: claims travel grouped by worker, so a later duplicate on another
 * worker could otherwise win the task.
 */
export function capAssignments(
  picked: readonly Assignment[],
  workers: readonly FreeWorker[],
  batch: number,
  known: ReadonlyMap<string, { readyAt: number }>,
): Pending[] {
  const slots = new Map(workers.map((w) => [w.view.id, w.freeSlots]));
  const taken = new Set<string>();
  const out: Pending[] = [];
  for (const a of picked) {
    if (out.length >= batch) break;
    const left = slots.get(a.workerId) ?? 0;
    if (left <= 0 || taken.has(a.taskId)) continue;
    taken.add(a.taskId);
    slots.set(a.workerId, left - 1);
    const p: Pending = {
      taskId: a.taskId,
      workerId: a.workerId,
      readyAt: known.get(a.taskId)?.readyAt ?? 0,
    };
    if (a.gpus) p.gpus = a.gpus;
    out.push(p);
  }
  return out;
}

/** Whether the worker runs tasks of this demand's kind at all: its type and GPU model. */
function runsKind(d: Demand, w: WorkerView): boolean {
  return typeAccepted(d, w) && (d.gpu <= 0 || modelAccepted(d, w));
}

/** The kinds of free worker: task types (or every type) and GPU model. */
function kindsOf(workers: readonly WorkerView[]): Set<string> {
  return new Set(workers.map((w) => `${w.types?.join(',') ?? '*'}|${w.gpuModel ?? ''}`));
}

/** Tasks whose attrs the dispatcher holds at most; past it the oldest are forgotten. */
const KNOWN_MAX = 50_000;
/**
 * How deep into the runnable queue the dispatcher looks for work when the window holds only
 * tasks no free worker runs (their type or GPU model): windows further down are read until one
 * gives an assignment, up to this rank. Each deeper window is a round trip reading its tasks'
 * attrs, so work deeper than this behind such a head waits for the head to move.
 */
export const DEEP_SCAN_MAX = 10_000;
/** Deeper windows read per wake-up at most; a longer look goes on at the next one. */
export const DEEP_ROUNDS_PER_WAKE = 8;
/** Tenants and jobs of the window whose numbers are asked for each round, at most. */
const STATS_MAX = 64;

export class Dispatcher {
  private policy: SchedulingPolicy | undefined;
  /** What never changes of the runnable tasks seen, so a window is not sent twice. */
  private readonly known = new Map<string, KnownTask>();
  private marker: { readyAt: number; id: string } | undefined;
  /** The next window's first rank: past 0 while looking past tasks no free worker runs. */
  private offset = 0;
  /**
   * Where the next look past the head starts (0: right after the head window): where a deeper
   * window last gave work or held work that only waits for room, where a look paused, or the
   * queue's end when a look found nothing. Valid while the free workers' kinds (`kinds`) stay
   * what they were: the ranks before it hold only tasks none of them runs.
   */
  private resumeAt = 0;
  private kinds = new Set<string>();
  private blockedWarnedAt = -Infinity;
  /** Deeper rounds since the loop last waited (at most DEEP_ROUNDS_PER_WAKE). */
  private deepRounds = 0;
  /** Set by a round that looks deeper next: the loop goes on without waiting on the doorbell. */
  private again = false;
  private tenants: string[] = [];
  private jobs: string[] = [];
  private readonly bell: BlockingList;
  private stopped = false;
  private loop: Promise<void> | undefined;

  constructor(private readonly o: DispatcherOptions) {
    this.bell = new BlockingList(o.shard.redis, o.shard.k.doorbell());
  }

  /**
   * The policy of the current knob values: version N of the registry's scheduler policy when
   * scheduler.policy_version is N > 0 and it is loaded, else the heuristic scheduler.policy
   * names (a new object when a knob changed).
   */
  currentPolicy(): SchedulingPolicy {
    const version = this.o.knobs.get<number>('scheduler.policy_version');
    const learned = version > 0 ? this.o.registry?.policy(version) : undefined;
    const next =
      learned ??
      (this.policy?.name === this.o.knobs.get<string>('scheduler.policy')
        ? this.policy
        : undefined);
    if (next && next === this.policy) return next;
    const previous = this.policy?.name;
    this.policy = next ?? createSchedulingPolicy(this.o.knobs.get<string>('scheduler.policy'));
    if (previous)
      this.o.log.info({ from: previous, to: this.policy.name }, 'scheduling policy changed');
    return this.policy;
  }

  start(): this {
    this.loop ??= this.run();
    return this;
  }

  private async run(): Promise<void> {
    let pending: Pending[] = [];
    let failures = 0;
    while (!this.stopped) {
      try {
        pending = await this.round(pending);
        failures = 0;
        if (pending.length === 0 && !this.again && !this.stopped) {
          this.deepRounds = 0;
          await this.bell.pop(1, this.o.idleWaitMs).catch(() => []);
        }
      } catch (err) {
        // Redis away or a script error: what was pending is dropped (the tasks stay runnable
        // in Redis), and the loop backs off, bounded, before it looks again.
        pending = [];
        this.offset = 0;
        this.deepRounds = 0;
        failures++;
        if (!this.stopped) {
          this.o.log.warn({ err: (err as Error).message }, 'dispatch round failed');
          // Ended by stop(), which closes the doorbell.
          await this.bell.wait(Math.min(2_000, 50 * 2 ** Math.min(failures, 6)));
        }
      }
    }
  }

  /** One round: claims `pending`, and returns what to claim next (empty: wait). */
  async round(pending: readonly Pending[]): Promise<Pending[]> {
    const k = this.o.knobs;
    const batch = k.get<number>('scheduler.dispatch_batch');
    const startedNs = process.hrtime.bigint();
    const now = this.o.clock.now();
    const reply = await this.o.shard.dispatch(
      {
        leaseMs: k.get<number>('scheduler.lease_ms'),
        retryLimit: k.get<number>('scheduler.retry_limit'),
        backoffMs: k.get<number>('scheduler.retry_backoff_ms'),
        window: Math.max(batch, this.o.windowMax),
        workersMax: this.o.workersMax,
        windowPerSlot: this.o.windowPerSlot,
        windowMin: this.o.windowMin,
        // A deeper window is read whole: the marker and the numbers asked for are the head's.
        ...(this.marker && this.offset === 0 ? { marker: this.marker } : {}),
        tenants: this.tenants,
        jobs: this.jobs,
        assignments: pending,
        offset: this.offset,
      },
      now,
    );
    this.record(pending, reply, now, startedNs);
    this.forgetClaimed(pending, reply);
    // Claimed tasks left the queue: ranks past them moved up (cancels and moves do too, more
    // rarely; a look may then skip a few tasks until the free workers' kinds change).
    const claimed = reply.claims.filter((c) => c === 'ok').length;
    this.resumeAt = Math.max(0, this.resumeAt - claimed);
    const offset = this.offset;
    this.offset = 0;
    this.again = false;
    if (reply.tasks.length === 0 || reply.workers.length === 0) return [];
    const policy = this.currentPolicy();
    const { views, unresolved } = taskViews(reply, this.known);
    // A deeper window changes neither the head's marker nor the tenants and jobs asked for.
    if (offset === 0) this.remember(reply, unresolved);
    const picked = policy.pick(
      views,
      reply.workers.map((w) => w.view),
      now,
    );
    const next = capAssignments(picked, reply.workers, batch, this.known);
    this.lookDeeper(offset, reply, views, unresolved, next.length);
    // Shadow rounds compare choices from the head (a deeper window is the dispatcher's own
    // search, which a shadow policy would make too).
    if (offset === 0)
      this.o.shadow?.observe(
        policy.name,
        views,
        reply.workers.map((w) => w.view),
        now,
        next,
        (p) => capAssignments(p, reply.workers, batch, this.known),
      );
    if (next.length > 0) {
      this.o.decisions.record({
        at: now,
        policy: policy.name,
        window: views.length,
        ...(offset > 0 ? { offset } : {}),
        queued: reply.queued,
        free_workers: reply.workers.length,
        assigned: next.length,
        tasks: next
          .slice(0, TRACE_TASKS_MAX)
          .map((a) => a.taskId)
          .join(','),
        workers: next
          .slice(0, TRACE_TASKS_MAX)
          .map((a) => a.workerId)
          .join(','),
      });
    }
    return next;
  }

  /**
   * Head-of-line blocking: a window of tasks that no free worker runs, whatever its load (a
   * type none of them has a handler for, a GPU model none of them has), would hold back every
   * task behind it while those workers sit idle. When a window gave nothing and every task in
   * it is of that kind, the next round reads a window further down, at once (at most
   * DEEP_ROUNDS_PER_WAKE per wake-up; a longer look goes on at the next), until one gives
   * work, or holds a task a free worker runs but has no room for now (FIFO: it waits for
   * room, and nothing behind it is taken first), or the queue or DEEP_SCAN_MAX ends. A window
   * short of room alone is never looked past. Later looks resume where the last one stopped
   * (`resumeAt`): the ranks before hold only tasks none of the free workers' kinds it was read
   * against runs (`kinds`); a free worker of another kind starts the next look right after
   * the head. A round from the head comes first after every wait, so older tasks keep their
   * turn.
   */
  private lookDeeper(
    offset: number,
    reply: DispatchReply,
    views: readonly TaskView[],
    unresolved: number,
    assigned: number,
  ): void {
    const workers = reply.workers.map((w) => w.view);
    const current = kindsOf(workers);
    // A free worker of a kind the ranks before `resumeAt` were not read against: read them again.
    if (this.resumeAt > 0 && ![...current].every((k) => this.kinds.has(k))) this.resumeAt = 0;
    /** The ranks before `rank` hold no task a free worker runs (as read now and before). */
    const readTo = (rank: number) => {
      this.kinds =
        this.resumeAt > 0 ? new Set([...current].filter((k) => this.kinds.has(k))) : current;
      this.resumeAt = rank;
    };
    const end = offset + reply.tasks.length;
    if (unresolved > 0 && assigned === 0) {
      // Entries the dispatcher no longer holds were left out (the marker is cleared): read the
      // window whole at once rather than after a wait.
      this.again = true;
      return;
    }
    // Work here, or work a free worker runs waiting for room here (FIFO: nothing behind it
    // goes first): looks resume here.
    if (assigned > 0 || views.some((v) => workers.some((w) => runsKind(v.demand, w)))) {
      if (offset > 0) readTo(offset);
      return;
    }
    const from = offset === 0 ? Math.max(this.resumeAt, end) : end;
    if (from >= reply.queued || from >= DEEP_SCAN_MAX) {
      // The end of the queue (or the bound): the next look reads only what arrives after it.
      if (offset > 0) {
        readTo(Math.min(end, DEEP_SCAN_MAX));
        this.warnBlocked(views, reply.queued);
      }
      return;
    }
    if (this.deepRounds >= DEEP_ROUNDS_PER_WAKE) {
      readTo(from);
      return;
    }
    if (offset > 0) readTo(from);
    this.deepRounds++;
    this.offset = from;
    this.again = true;
    this.o.telemetry.inc('dispatch_deep_rounds');
  }

  /** Says (at most once a minute) that runnable tasks wait for a worker of their kind. */
  private warnBlocked(views: readonly TaskView[], queued: number): void {
    const now = Date.now();
    if (now < this.blockedWarnedAt + 60_000) return;
    this.blockedWarnedAt = now;
    const types = [...new Set(views.map((v) => v.demand.type ?? '?'))].slice(0, 10);
    this.o.log.warn(
      { queued, types },
      'runnable tasks wait for a worker that runs their type or GPU model (see GET /api/services/scheduler/types)',
    );
  }

  /** Claimed (or vanished) tasks leave the window for good. */
  private forgetClaimed(pending: readonly Pending[], reply: DispatchReply): void {
    reply.claims.forEach((status, i) => {
      const a = pending[i];
      if (a && (status === 'ok' || status === 'gone')) this.known.delete(a.taskId);
    });
    while (this.known.size > KNOWN_MAX) {
      const first = this.known.keys().next();
      if (first.done) break;
      this.known.delete(first.value);
    }
  }

  /** The marker, tenants and jobs for the next round, from this round's window. */
  private remember(reply: DispatchReply, unresolved: number): void {
    const last = reply.tasks[reply.tasks.length - 1];
    this.marker = unresolved === 0 && last ? { readyAt: last.readyAt, id: last.id } : undefined;
    const tenants = new Set<string>();
    const jobs = new Set<string>();
    for (const t of reply.tasks) {
      const k = this.known.get(t.id);
      if (!k) continue;
      if (tenants.size < STATS_MAX) tenants.add(k.attrs.tenant);
      if (jobs.size < STATS_MAX && k.attrs.job !== t.id) jobs.add(k.attrs.job);
    }
    this.tenants = [...tenants];
    this.jobs = [...jobs];
  }

  private record(
    pending: readonly Pending[],
    reply: DispatchReply,
    now: number,
    startedNs: bigint,
  ): void {
    const t = this.o.telemetry;
    t.gauge('queue_length', reply.queued);
    t.observe('dispatch_round_ms', Number(process.hrtime.bigint() - startedNs) / 1e6);
    reply.claims.forEach((status, i) => {
      if (status === 'ok') {
        t.inc('tasks_started');
        // From ready (runnable) to claimed; the ready time came with last round's snapshot.
        const a = pending[i];
        if (a) t.observe('dispatch_latency_ms', now - a.readyAt);
      } else {
        t.inc(`claims_${status}`);
      }
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.bell.close();
    await this.loop;
  }
}
