// The dispatch loop. Each round trip claims what the policy chose last round and brings back
// the next snapshot (dispatch-12.lua), so a busy dispatcher makes one call per batch. The
// policy is the one the `scheduler.policy` knob names, read from the knob client every round,
// so a change applies on the next round; so do the batch size, lease time and retry knobs.
// When nothing can be dispatched it blocks on the shard's doorbell, which submissions,
// completions, requeues and new workers ring.
import {
  createSchedulingPolicy,
  type Assignment,
  type SchedulingPolicy,
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

/** Tasks whose attrs the dispatcher holds at most; past it the oldest are forgotten. */
const KNOWN_MAX = 50_000;
/**
 * How deep into the runnable queue the dispatcher looks for work when the window holds only
 * tasks no free worker can run (their type, GPU model or size): windows further down are read
 * until one gives an assignment, up to this rank. Each deeper window is a round trip reading
 * its tasks' attrs, so a queue blocked deeper than this waits for a change (a doorbell).
 */
export const DEEP_SCAN_MAX = 10_000;
/** Tenants and jobs of the window whose numbers are asked for each round, at most. */
const STATS_MAX = 64;

export class Dispatcher {
  private policy: SchedulingPolicy | undefined;
  /** What never changes of the runnable tasks seen, so a window is not sent twice. */
  private readonly known = new Map<string, KnownTask>();
  private marker: { readyAt: number; id: string } | undefined;
  /** The next window's first rank: past 0 while looking past tasks no free worker can run. */
  private offset = 0;
  /** Where a deeper window last gave work (0: none): the next look past the head starts there. */
  private deepFound = 0;
  /** The current look past the head started at `deepFound` (it skipped the ranks before). */
  private resumed = false;
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
        if (pending.length === 0 && !this.again && !this.stopped)
          await this.bell.pop(1, this.o.idleWaitMs).catch(() => []);
      } catch (err) {
        // Redis away or a script error: what was pending is dropped (the tasks stay runnable
        // in Redis), and the loop backs off, bounded, before it looks again.
        pending = [];
        this.offset = 0;
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
        ...(this.marker ? { marker: this.marker } : {}),
        tenants: this.tenants,
        jobs: this.jobs,
        assignments: pending,
        offset: this.offset,
      },
      now,
    );
    this.record(pending, reply, now, startedNs);
    this.forgetClaimed(pending, reply);
    const offset = this.offset;
    this.offset = 0;
    this.again = false;
    if (reply.tasks.length === 0 || reply.workers.length === 0) {
      // A deeper window came back empty (the queue shrank): look again from the head.
      if (offset > 0 && reply.workers.length > 0) {
        this.deepFound = 0;
        this.resumed = false;
        this.again = true;
      }
      return [];
    }
    const policy = this.currentPolicy();
    const { views, unresolved } = taskViews(reply, this.known);
    this.remember(reply, unresolved);
    const picked = policy.pick(
      views,
      reply.workers.map((w) => w.view),
      now,
    );
    const next = capAssignments(picked, reply.workers, batch, this.known);
    this.lookDeeper(offset, reply, next.length);
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
   * Head-of-line blocking: a window of tasks that fit no free worker (a type none of them
   * runs, a GPU model, a size) would hold back every task behind it while workers sit idle.
   * When a window gave nothing although a free worker has room and more tasks wait past it,
   * the next round reads the window after it (or, from the head, the one that last gave work),
   * at once, until one gives work or the queue or DEEP_SCAN_MAX ends. A round with work starts
   * at the head again, so older tasks keep their turn when room frees up.
   */
  private lookDeeper(offset: number, reply: DispatchReply, assigned: number): void {
    if (assigned > 0) {
      if (offset > 0) this.deepFound = offset;
      this.resumed = false;
      return;
    }
    const beyond = reply.queued - offset - reply.tasks.length;
    const room = reply.workers.some((w) => w.view.free.cpu > 1e-9 || w.view.free.gpu > 1e-9);
    const resume = offset === 0 && this.deepFound > 0;
    const deeper = resume ? this.deepFound : offset + reply.tasks.length;
    if (beyond > 0 && room && deeper < DEEP_SCAN_MAX) {
      if (offset === 0) this.resumed = resume;
      this.offset = deeper;
      this.again = true;
      this.o.telemetry.inc('dispatch_deep_rounds');
      return;
    }
    // The queue's end (or the bound) without work. A look that started where work was last
    // found skipped the ranks before it, where a worker freed since may find some: once more
    // from the head, then every window in turn.
    if (offset > 0 && this.resumed && room) this.again = true;
    this.deepFound = 0;
    this.resumed = false;
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
