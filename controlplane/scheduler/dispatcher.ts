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

/**
 * Whether the worker could run a task of this demand when idle: its type, GPU model, and a
 * size within the worker's whole capacity.
 */
function runsKind(d: Demand, w: WorkerView): boolean {
  if (!typeAccepted(d, w) || d.cpu > w.capacity.cpu + 1e-9 || d.memMb > w.capacity.memMb)
    return false;
  return d.gpu <= 0 || (modelAccepted(d, w) && d.gpu <= devicesOf(w));
}

function devicesOf(w: WorkerView): number {
  return w.gpuFreeMilli?.length ?? Math.floor(w.capacity.gpu + 1e-9);
}

/** The set of free workers' kinds (task types, GPU model, whole capacity) as one string. */
function kindsKey(workers: readonly WorkerView[]): string {
  const kinds = new Set(
    workers.map(
      (w) =>
        `${w.types?.join(',') ?? '*'}|${w.gpuModel ?? ''}|${w.capacity.cpu}|${w.capacity.memMb}|${devicesOf(w)}`,
    ),
  );
  return [...kinds].sort().join('\n');
}

/** Tasks whose attrs the dispatcher holds at most; past it the oldest are forgotten. */
const KNOWN_MAX = 50_000;
/** Deeper windows that give nothing read per wake-up at most; a longer look goes on at the next. */
export const DEEP_ROUNDS_PER_WAKE = 32;
/**
 * How long a finished look's place (`Cursor`) is trusted: after it, the next look starts right
 * after the head again, reading anything that was put into the skipped stretch meanwhile (a
 * task with an earlier ready time: a producer's or worker's clock behind).
 */
export const CURSOR_TTL_MS = 10_000;
/** Cursors kept at most (one per set of free workers' kinds seen). */
const CURSORS_MAX = 64;

/** Where looks past the head resume (see Dispatcher.lookDeeper). */
interface Cursor {
  /** The entry to start after (or, once it is gone, its ready time). */
  readyAt: number;
  id: string;
  /** When the look that read that stretch started. */
  since: number;
  /** Trusted until then once the look ended (CURSOR_TTL_MS, or 4 times the look's length). */
  until: number;
  /** The look paused here (per wake-up bound) rather than ended. */
  paused: boolean;
}
/** Tenants and jobs of the window whose numbers are asked for each round, at most. */
const STATS_MAX = 64;

export class Dispatcher {
  private policy: SchedulingPolicy | undefined;
  /** What never changes of the runnable tasks seen, so a window is not sent twice. */
  private readonly known = new Map<string, KnownTask>();
  private marker: { readyAt: number; id: string } | undefined;
  /** Where the next round's window starts: after this entry (a look past the head), or the head. */
  private after: { readyAt: number; id: string } | undefined;
  /** Where looks past the head resume, per set of free workers' kinds (see lookDeeper). */
  private readonly cursors = new Map<string, Cursor>();
  private blockedWarnedAt = -Infinity;
  /** Deeper rounds that gave nothing since the loop last waited (DEEP_ROUNDS_PER_WAKE). */
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
        this.after = undefined;
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
        ...(this.marker && !this.after ? { marker: this.marker } : {}),
        tenants: this.tenants,
        jobs: this.jobs,
        assignments: pending,
        ...(this.after ? { after: this.after } : {}),
      },
      now,
    );
    this.record(pending, reply, now, startedNs);
    this.forgetClaimed(pending, reply);
    const after = this.after;
    this.after = undefined;
    this.again = false;
    if (reply.tasks.length === 0 || reply.workers.length === 0) return [];
    const policy = this.currentPolicy();
    const { views, unresolved } = taskViews(reply, this.known);
    // A deeper window changes neither the head's marker nor the tenants and jobs asked for.
    if (!after) this.remember(reply, unresolved);
    const picked = policy.pick(
      views,
      reply.workers.map((w) => w.view),
      now,
    );
    const next = capAssignments(picked, reply.workers, batch, this.known);
    this.lookDeeper(after, reply, views, unresolved, next.length, now);
    // Shadow rounds compare choices from the head (a deeper window is the dispatcher's own
    // search, which a shadow policy would make too).
    if (!after)
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
        ...(after ? { offset: reply.start } : {}),
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
   * type none of them has a handler for, a GPU model none of them has, a size beyond all of
   * them), would hold back every task behind it while those workers sit idle. When a window
   * gave nothing and every task in it is of that kind, the next round reads the window after
   * it, at once, until one gives work, or holds a task some free worker runs but has no room
   * for now (FIFO: it waits for room, and nothing behind it is taken first), or the queue
   * ends; at most DEEP_ROUNDS_PER_WAKE windows that give nothing per wake-up (the look goes on
   * at the next one). A window short of room alone is never looked past. Every wake-up starts
   * at the head, so older tasks keep their turn.
   *
   * Looks resume at a cursor, an entry (by id, or by ready time once it is gone, so tasks that
   * leave the queue move nothing): where work was found or waits for room, where a look paused
   * or ended (the queue's end: a blocked queue that nothing changes reads only what arrives).
   * The stretch before it holds only tasks the free workers it was read against do not run, so
   * each set of free workers' kinds has its own cursor (a new kind of free worker starts right
   * after the head; kinds that take turns each go on with their own look). A cursor whose look
   * ended is trusted for CURSOR_TTL_MS (or four times the look's length); then the next look
   * starts right after the head again, and reads what was put into the skipped stretch
   * meanwhile (a task with an earlier ready time: a producer's or worker's clock behind).
   */
  private lookDeeper(
    after: { readyAt: number; id: string } | undefined,
    reply: DispatchReply,
    views: readonly TaskView[],
    unresolved: number,
    assigned: number,
    now: number,
  ): void {
    if (!after && assigned > 0) return; // the usual round: nothing to look past
    if (unresolved > 0 && assigned === 0) {
      // Entries the dispatcher no longer holds were left out (the marker is cleared): read the
      // window whole at once rather than after a wait.
      this.again = true;
      return;
    }
    const workers = reply.workers.map((w) => w.view);
    // The stretch a cursor skips was read against one set of free workers' kinds: each set
    // has its own, so kinds that come and go between wake-ups each resume their own look.
    const key = kindsKey(workers);
    let cursor = this.cursors.get(key);
    if (cursor && !cursor.paused && now > cursor.until) {
      this.cursors.delete(key);
      cursor = undefined;
    }
    /** The stretch up to `entry` (inclusive) holds no task these free workers run. */
    const readTo = (entry: { readyAt: number; id: string }, paused: boolean) => {
      const prev = this.cursors.get(key);
      const since = prev?.since ?? now;
      this.cursors.delete(key); // re-inserted last: the map forgets the longest unused first
      this.cursors.set(key, {
        readyAt: entry.readyAt,
        id: entry.id,
        since,
        until: prev && !prev.paused ? prev.until : now + Math.max(CURSOR_TTL_MS, 4 * (now - since)),
        paused,
      });
      if (this.cursors.size > CURSORS_MAX) this.cursors.delete(this.cursors.keys().next().value!);
    };
    const last = reply.tasks[reply.tasks.length - 1] as { readyAt: number; id: string };
    // Work here, or work a free worker runs waiting for room here (FIFO: nothing behind it
    // goes first): looks resume before this window.
    if (assigned > 0 || views.some((v) => workers.some((w) => runsKind(v.demand, w)))) {
      if (after) readTo(after, false);
      return;
    }
    if (after) this.deepRounds++;
    // Where the next window starts: past this one, or, from the head, at the cursor.
    const from = !after && cursor ? cursor : last;
    const beyond = reply.queued > reply.start + reply.tasks.length;
    if (after && !beyond) {
      // The queue's end: the next look reads only what arrives after it.
      readTo(last, false);
      this.warnBlocked(views, reply.queued);
      return;
    }
    if (!after && !beyond) return;
    if (this.deepRounds >= DEEP_ROUNDS_PER_WAKE) {
      if (after) readTo(last, true);
      return;
    }
    if (after) readTo(last, true);
    this.after = { readyAt: from.readyAt, id: from.id };
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
