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

/** Tasks whose attrs the dispatcher holds at most; past it the oldest are forgotten. */
const KNOWN_MAX = 50_000;
/**
 * Windows past the head that give nothing read per look at most (each of up to `windowMax`
 * tasks): work deeper than that behind a head no free worker runs waits for the head to move.
 */
export const DEEP_ROUNDS_PER_LOOK = 32;
/**
 * A look that found nothing is not repeated for the same starved workers (same free room)
 * while no task became runnable since (and, for a look cut short by DEEP_ROUNDS_PER_LOOK,
 * none left the queue), for at most DEEP_QUIET_MS; when tasks did arrive, not within
 * DEEP_RETRY_MS plus DEEP_RETRY_PER_ROUND_MS for each window it read (a look of 32 windows
 * once in 9 s at most: an idle worker of a type with no queued work, on a busy shard, would
 * otherwise cost 32 round trips every second).
 */
export const DEEP_RETRY_MS = 1_000;
export const DEEP_RETRY_PER_ROUND_MS = 250;
export const DEEP_QUIET_MS = 60_000;

/** A look past the head under way: the workers it is for and the windows it read. */
interface Look {
  /** The starved workers still looked for. */
  ids: Set<string>;
  rounds: number;
  /** The shard's runnable_in and queue length when the look started from the head. */
  arrived: number;
  queued: number;
  /** Workers that met a task they run, waiting for room there: their kind and room then. */
  met: Map<string, { kind: string; room: string }>;
}

/**
 * What a look that found nothing leaves for one kind of worker (kindOf), to suppress the same
 * look for workers of that kind while nothing changed.
 */
interface Fruitless {
  at: number;
  arrived: number;
  queued: number;
  /** It read to the queue's end and no worker of the kind met work: leaving tasks change nothing. */
  pure: boolean;
  /** The room of the kind's workers that met work (waiting for room there), when they met it. */
  metRooms: Set<string>;
  rounds: number;
}

/** What decides which tasks a worker can run at all: task types, GPU model, whole capacity. */
function kindOf(v: WorkerView): string {
  const cap = `${v.capacity.cpu}/${v.capacity.memMb}/${devicesOf(v)}`;
  return `${v.types?.join(',') ?? '*'}|${v.gpuModel ?? ''}|${cap}`;
}

function roomOf(v: WorkerView): string {
  return `${v.free.cpu}/${v.free.memMb}/${v.free.gpu}`;
}
/** Tenants and jobs of the window whose numbers are asked for each round, at most. */
const STATS_MAX = 64;

export class Dispatcher {
  private policy: SchedulingPolicy | undefined;
  /** The heuristic a failing registry policy falls back to (pickOrFallBack). */
  private fallback: SchedulingPolicy | undefined;
  private fallbackLoggedAt = -Infinity;
  /** What never changes of the runnable tasks seen, so a window is not sent twice. */
  private readonly known = new Map<string, KnownTask>();
  private marker: { readyAt: number; id: string } | undefined;
  /** Where the next round's window starts: after this entry (a look past the head), or the head. */
  private after: { readyAt: number; id: string } | undefined;
  /** The look past the head under way (see lookDeeper). */
  private deepFor: Look | undefined;
  /** Looks past the head that found nothing, by kind of worker. */
  private readonly fruitless = new Map<string, Fruitless>();
  private blockedWarnedAt = -Infinity;
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
   * The policy's picks; a registry version that throws (a learned scorer giving NaN on inputs
   * its evaluation never met) falls back to the heuristic scheduler.policy names for the round,
   * logged at most once a minute: it stopped every dispatch round while the knob named it.
   */
  private pickOrFallBack(
    policy: SchedulingPolicy,
    views: readonly TaskView[],
    workers: readonly WorkerView[],
    now: number,
  ): Assignment[] {
    try {
      return policy.pick(views, workers, now);
    } catch (err) {
      const name = this.o.knobs.get<string>('scheduler.policy');
      if (policy.name === name) throw err;
      if (this.fallback?.name !== name) this.fallback = createSchedulingPolicy(name);
      if (now - this.fallbackLoggedAt >= 60_000) {
        this.fallbackLoggedAt = now;
        this.o.log.error(
          { policy: policy.name, fallback: name, err: (err as Error).message },
          'scheduling policy failed to pick; the heuristic picks meanwhile',
        );
      }
      return this.fallback.pick(views, workers, now);
    }
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
        if (pending.length === 0 && !this.again && !this.stopped)
          await this.bell.pop(1, this.o.idleWaitMs).catch(() => []);
      } catch (err) {
        // Redis away or a script error: what was pending is dropped (the tasks stay runnable
        // in Redis), and the loop backs off, bounded, before it looks again.
        pending = [];
        this.after = undefined;
        this.deepFor = undefined;
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
        // A deeper window is as long as a window may be, and read whole: the marker and the
        // numbers asked for are the head's.
        windowMin: this.after ? Math.max(batch, this.o.windowMax) : this.o.windowMin,
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
    const deepFor = this.deepFor;
    this.after = undefined;
    this.deepFor = undefined;
    this.again = false;
    // A deeper window is offered only to the workers the look is for.
    const workers = deepFor
      ? reply.workers.filter((w) => deepFor.ids.has(w.view.id))
      : reply.workers;
    if (reply.tasks.length === 0 || workers.length === 0) return [];
    const policy = this.currentPolicy();
    const { views, unresolved } = taskViews(reply, this.known);
    // A deeper window changes neither the head's marker nor the tenants and jobs asked for.
    if (!after) this.remember(reply, unresolved);
    const picked = this.pickOrFallBack(
      policy,
      views,
      workers.map((w) => w.view),
      now,
    );
    const next = capAssignments(picked, workers, batch, this.known);
    this.lookDeeper(deepFor, reply, workers, views, unresolved, next, now);
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
        free_workers: workers.length,
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
   * Head-of-line blocking: a window of tasks that a free worker does not run whatever its
   * load (a type it has no handler for, a GPU model it lacks, a size beyond it) would hold
   * back every task behind it while that worker sits idle. After a round from the head, the
   * free workers left with free slots that run no task of its window are "starved"; the next
   * rounds (a look) read the windows after it, at once, offering them only to those workers,
   * until they get work, or each has met a task it runs (it waits for room there: FIFO), or the
   * queue ends, or DEEP_ROUNDS_PER_LOOK windows gave nothing. A worker that runs a task of the
   * head's window never takes work from past it, so work that waits for room keeps its order.
   * Every look starts right after the head and nothing of it is remembered but that it found
   * nothing, which suppresses the same look (same workers, same free room) while no task
   * became runnable since (see DEEP_RETRY_MS).
   */
  private lookDeeper(
    look: Look | undefined,
    reply: DispatchReply,
    workers: readonly FreeWorker[],
    views: readonly TaskView[],
    unresolved: number,
    next: readonly Pending[],
    now: number,
  ): void {
    if (unresolved > 0 && next.length === 0) {
      // Entries the dispatcher no longer holds were left out (the marker is cleared): read the
      // window whole at once rather than after a wait.
      this.again = true;
      return;
    }
    if (unresolved > 0) return;
    if (look && next.length > 0) {
      // Work found (the next round starts at the head): its workers' kinds are not done.
      const got = new Set(next.map((a) => a.workerId));
      for (const w of workers) if (got.has(w.view.id)) this.fruitless.delete(kindOf(w.view));
      return;
    }
    const beyond = reply.queued > reply.start + reply.tasks.length;
    if (!beyond && !look) return; // the usual round: the window holds the whole queue
    // The workers still to look for: free slots left after this round's picks, and no task of
    // this window they could run. (A round that filled every free slot has none.)
    let starved: FreeWorker[] = [];
    if (next.length < workers.reduce((n, w) => n + w.freeSlots, 0)) {
      const taken = new Map<string, number>();
      for (const a of next) taken.set(a.workerId, (taken.get(a.workerId) ?? 0) + 1);
      starved = workers.filter(
        (w) =>
          w.freeSlots > (taken.get(w.view.id) ?? 0) &&
          !views.some((v) => runsKind(v.demand, w.view)),
      );
    }
    const last = reply.tasks[reply.tasks.length - 1] as { readyAt: number; id: string };
    if (look) {
      look.rounds++;
      // Those no longer starved met a task they run here, waiting for room (their room now is
      // what the look knows of them).
      const still = new Set(starved.map((w) => w.view.id));
      for (const w of workers)
        if (!still.has(w.view.id))
          look.met.set(w.view.id, { kind: kindOf(w.view), room: roomOf(w.view) });
      const cut = look.rounds >= DEEP_ROUNDS_PER_LOOK;
      if (starved.length === 0 || !beyond || cut) {
        // The look ends with nothing: each worker met its work (waiting for room), or the
        // queue or the bound ended. Remembered for the kinds of workers that read to here
        // (those that left it part way read less, unless one of their kind stayed).
        const kinds = new Map<string, Set<string>>();
        for (const w of starved) kinds.set(kindOf(w.view), new Set());
        for (const m of look.met.values()) {
          const rooms = kinds.get(m.kind) ?? new Set<string>();
          rooms.add(m.room);
          kinds.set(m.kind, rooms);
        }
        for (const [kind, metRooms] of kinds) {
          this.fruitless.delete(kind);
          this.fruitless.set(kind, {
            at: now,
            arrived: look.arrived,
            queued: look.queued,
            pure: !cut && starved.length > 0 && metRooms.size === 0,
            metRooms,
            rounds: look.rounds,
          });
        }
        while (this.fruitless.size > 64) this.fruitless.delete(this.fruitless.keys().next().value!);
        if (starved.length > 0) this.warnBlocked(views, reply.queued);
        return;
      }
      this.readNext(last, { ...look, ids: still });
      return;
    }
    if (starved.length === 0) return;
    // A look that found nothing for these kinds of workers is repeated once tasks arrived or
    // (unless it read to the end and none met work) left, not within DEEP_RETRY_MS + the
    // per-round part; at once for a kind not looked for (or long ago), or a worker whose room
    // differs from that of the workers of its kind that met work waiting for room.
    const due = starved.some((w) => {
      const f = this.fruitless.get(kindOf(w.view));
      if (!f || now - f.at >= DEEP_QUIET_MS) return true;
      if (f.metRooms.size > 0 && !f.metRooms.has(roomOf(w.view))) return true;
      const changed = f.arrived !== reply.arrived || (!f.pure && f.queued !== reply.queued);
      return changed && now - f.at >= DEEP_RETRY_MS + DEEP_RETRY_PER_ROUND_MS * f.rounds;
    });
    if (!due) return;
    // After the window's last task this round did not assign (an assigned one is claimed
    // before the next round reads, and a start after a gone entry is only by its ready time).
    const picked = new Set(next.map((a) => a.taskId));
    let from = last;
    for (let t = reply.tasks.length - 1; t >= 0; t--) {
      const e = reply.tasks[t] as { readyAt: number; id: string };
      if (!picked.has(e.id)) {
        from = e;
        break;
      }
    }
    this.readNext(from, {
      ids: new Set(starved.map((w) => w.view.id)),
      rounds: 0,
      arrived: reply.arrived,
      queued: reply.queued,
      met: new Map(),
    });
  }

  /** The next round reads, at once, the window after `entry`, for `look`. */
  private readNext(entry: { readyAt: number; id: string }, look: Look): void {
    this.after = { readyAt: entry.readyAt, id: entry.id };
    this.deepFor = look;
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
