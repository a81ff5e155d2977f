// The worker runtime: runs task copies the dispatcher pushed to this worker's inbox, with
// handlers registered by task type, at most `concurrency` at a time. It blocks on its inbox (no
// polling loop), heartbeats and renews the leases of what it runs, and settles finished copies
// in batches: one settle call carries every copy that finished while the previous call was in
// flight. A slot is freed only once its settle is acknowledged, so a completion is never lost to
// a crash after it was reported done. A copy the scheduler cancelled (its lease expired, or the
// other speculative copy won) is aborted and not settled.
import { hostname, totalmem } from 'node:os';
import { createLogger, type Logger } from '../log.ts';
import type { RedisClient } from '../redis/connect.ts';
import { Keys } from '../store/keys.ts';
import { Telemetry } from '../telemetry/metrics.ts';
import type { TraceWriter } from '../telemetry/traces.ts';
import { systemClock, type Clock } from './clock.ts';
import { BlockingList } from './doorbell.ts';
import { SchedulerInputError } from './errors.ts';
import { parseInboxEntry } from './inbox.ts';
import { traceWriters } from './service.ts';
import { SchedShard, type SettleArgs } from './shard.ts';
import { checkName } from './tasks.ts';
import { recordJobCompletion, SCHEDULER_SERVICE, type TraceKind } from './traces.ts';
import type { LeasedTask, SettleItem, SettleResult, WorkerCapacity } from './types.ts';

export interface TaskContext extends LeasedTask {
  workerId: string;
  /** Aborted when the scheduler cancels this copy or the worker stops without draining. */
  readonly signal: AbortSignal;
}

/** A handler's view of its copy; the abort controller is made only if `signal` is read. */
class Context implements TaskContext {
  readonly id: string;
  readonly token: string;
  readonly type: string;
  readonly attempt: number;
  readonly leaseMs: number;
  readonly retryLimit: number;
  readonly backoffMs: number;
  readonly payload: unknown;
  constructor(
    task: LeasedTask,
    readonly workerId: string,
    private readonly run: Running,
  ) {
    this.id = task.id;
    this.token = task.token;
    this.type = task.type;
    this.attempt = task.attempt;
    this.leaseMs = task.leaseMs;
    this.retryLimit = task.retryLimit;
    this.backoffMs = task.backoffMs;
    this.payload = task.payload;
  }
  get signal(): AbortSignal {
    return (this.run.controller ??= abortedIf(this.run.cancelled, this.run.task)).signal;
  }
}

export type TaskHandler = (task: TaskContext) => unknown;

/** Thrown by a handler: fail the task without retrying it (straight to the dead letters). */
export class PermanentTaskError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PermanentTaskError';
  }
}

export interface WorkerRuntimeOptions {
  redis: RedisClient;
  /** Handlers by task type: the dispatcher sends this worker only tasks of these types. */
  handlers: Record<string, TaskHandler>;
  /** Copies run at once at most (the worker's slots). */
  concurrency: number;
  keys?: Keys;
  shard?: string;
  id?: string;
  /** Defaults: one core per slot, the machine's memory, no GPU. */
  capacity?: WorkerCapacity;
  heartbeatMs?: number;
  /** Longest block on the inbox before looking again. */
  idleWaitMs?: number;
  settleBatchMax?: number;
  settle?: Partial<SettleArgs>;
  clock?: Clock;
  log?: Logger;
  telemetryIntervalMs?: number;
  traceSampleRate?: Partial<Record<TraceKind, number>>;
  /** Called once a settle is acknowledged by Redis (and so durable as far as Redis is). */
  onSettled?: (item: SettleItem, result: SettleResult) => void;
}

export const DEFAULT_SETTLE_ARGS: SettleArgs = {
  durationsKept: 101,
  usageBucketMs: 10_000,
  usageTtlMs: 7 * 24 * 3_600_000,
  jobTtlMs: 24 * 3_600_000,
};

interface Running {
  task: LeasedTask;
  /** When its lease must be renewed next (a third of the lease after the last grant). */
  renewAt: number;
  /** Made when the handler first reads `signal` (most never do; making one costs). */
  controller: AbortController | undefined;
  cancelled: boolean;
  /** Set once the handler finished and the settle item is queued or sent. */
  settling: boolean;
  startedAt: number;
  /** Its place in the order copies were accepted (see heartbeat). */
  seq: number;
}

const RESULT_BYTES_MAX = 64 * 1024;
/**
 * A failure's message is kept in the task row and again in its dead letter: a longer one is cut
 * (a handler's multi-megabyte message would be stored twice).
 */
export const ERROR_BYTES_MAX = 8 * 1024;

/**
 * A thrown value as text. Never throws: a handler may throw anything, including a
 * null-prototype object (String() throws) or an Error whose `message` getter throws, and a
 * throw here would kill the fetch loop or leave the copy's slot and lease held for ever.
 */
export function describeError(err: unknown): string {
  try {
    return err instanceof Error ? String(err.message) : String(err);
  } catch {
    try {
      return Object.prototype.toString.call(err);
    } catch {
      return 'unprintable thrown value'; // a proxy whose every trap throws
    }
  }
}

/** `s` cut to ERROR_BYTES_MAX bytes of UTF-8, with a marker saying how long it was. */
export function truncateError(s: string): string {
  // At most 3 bytes per UTF-16 unit: short messages (nearly all) skip the byte count.
  if (s.length <= ERROR_BYTES_MAX / 3) return s;
  const bytes = Buffer.byteLength(s);
  if (bytes <= ERROR_BYTES_MAX) return s;
  // A character cut in two decodes as U+FFFD: dropped.
  const head = Buffer.from(s)
    .subarray(0, ERROR_BYTES_MAX)
    .toString()
    .replace(/\uFFFD$/, '');
  return `${head}... [truncated: ${bytes} bytes]`;
}

/** How a thrown value fails its copy; never throws (see describeError). */
function failureOf(err: unknown): { outcome: 'fail' | 'final'; detail: string } {
  let final = false;
  try {
    final = err instanceof PermanentTaskError;
  } catch {
    // a proxy with a throwing getPrototypeOf trap: an ordinary failure
  }
  return { outcome: final ? 'final' : 'fail', detail: truncateError(describeError(err)) };
}

function cancelReason(task: LeasedTask): Error {
  return new Error(`task ${task.id} copy ${task.token} was cancelled`);
}

function abortedIf(cancelled: boolean, task: LeasedTask): AbortController {
  const c = new AbortController();
  if (cancelled) c.abort(cancelReason(task));
  return c;
}
function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (
    v !== null &&
    (typeof v === 'object' || typeof v === 'function') &&
    typeof (v as { then?: unknown }).then === 'function'
  );
}

/** Bad settings fail at start, naming the field and the rule. */
function checkSettings(
  o: WorkerRuntimeOptions & { heartbeatMs: number; idleWaitMs: number; settleBatchMax: number },
): void {
  const bad = (field: string, rule: string, what: string, v: unknown): never => {
    throw new SchedulerInputError(
      `worker: ${field} must be ${what}, got ${String(v)}`,
      field,
      rule,
    );
  };
  const int = (field: string, v: number, min: number, max: number) => {
    if (!Number.isInteger(v) || v < min || v > max)
      bad(field, 'range', `an integer in ${min}..${max}`, v);
  };
  // settleBatchMax 0 would spin the settle loop for ever; a beat interval of 0 or less would
  // set a deadline already past, and the reaper would drop the worker at every pass.
  int('settleBatchMax', o.settleBatchMax, 1, 100_000);
  int('heartbeatMs', o.heartbeatMs, 10, 3_600_000);
  int('idleWaitMs', o.idleWaitMs, 1, 3_600_000);
  const c = o.capacity;
  if (!c) return;
  if (!Number.isFinite(c.cpu) || c.cpu <= 0) bad('capacity.cpu', 'range', 'a number > 0', c.cpu);
  if (!Number.isFinite(c.memMb) || c.memMb <= 0)
    bad('capacity.memMb', 'range', 'a number > 0', c.memMb);
  int('capacity.gpu', c.gpu ?? 0, 0, 64);
}

/** Most stop entries taken per read of the stop list. */
const STOPS_PER_POP = 100;
/** How long, and how many, stops that came before their run entries are kept (cancel()). */
const STOP_KEPT_MS = 3_600_000;
const STOPS_KEPT = 10_000;
/** How long stop() waits for aborted handlers to end before it leaves them to their leases. */
export const STOP_ABORT_GRACE_MS = 1_000;
/** Pushed to its own inbox by a draining worker after its last claim: the end of the inbox. */
const INBOX_END = '#end';

const STOP_SETTLE_TRIES = 5;
/** Heartbeats come at least this far apart; renewals are sent this much early. */
const MIN_BEAT_GAP_MS = 50;

export class WorkerRuntime {
  readonly id: string;
  readonly shard: SchedShard;
  readonly telemetry: Telemetry;
  private readonly traces: Record<TraceKind, TraceWriter>;
  private readonly o: Required<
    Pick<WorkerRuntimeOptions, 'heartbeatMs' | 'idleWaitMs' | 'settleBatchMax'>
  > &
    WorkerRuntimeOptions;
  private readonly capacity: WorkerCapacity;
  /** The task types it has handlers for: the dispatcher routes only these here. */
  private readonly types: readonly string[];
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly settleArgs: SettleArgs;
  private readonly inbox: BlockingList;
  /** Copies to stop (keys.ts stops), read by a loop of its own whatever the free slots. */
  private readonly stops: BlockingList;
  private stopLoop: Promise<void> | undefined;
  private readonly active = new Map<string, Running>();
  private queue: SettleItem[] = [];
  private flushing: Promise<void> | undefined;
  private slotWaiters: (() => void)[] = [];
  private stopping = false;
  /** A copy was cancelled while running: the next beat goes at once (see cancel()). */
  private beatSoon = false;
  /** Set by stop(): the row's slots are 0 from the next beat, so no claim lands here. */
  private draining = false;
  /** The fetch loop took every inbox entry up to INBOX_END. */
  private inboxEnded = false;
  private heartbeatStopped = false;
  /** The worker row's incarnation, once registered. */
  private incarnation: string | undefined;
  private fetchLoop: Promise<void> | undefined;
  private hbTimer: NodeJS.Timeout | undefined;
  private nextBeatAt = 0;
  private hbRunning: Promise<void> | undefined;
  /** Copies accepted so far: a beat notes it when sent, to tell older copies from newer. */
  private acceptedCount = 0;
  /** Settle acknowledgements seen, by status; for tests and reports. */
  readonly settled = new Map<string, number>();

  private constructor(o: WorkerRuntimeOptions) {
    if (!Number.isInteger(o.concurrency) || o.concurrency < 1 || o.concurrency > 10_000)
      throw new SchedulerInputError(
        `worker: concurrency must be an integer in 1..10000, got ${o.concurrency}`,
        'concurrency',
        'range',
      );
    this.o = { heartbeatMs: 1_000, idleWaitMs: 1_000, settleBatchMax: 500, ...o };
    checkSettings(this.o);
    const keys = o.keys ?? new Keys();
    this.id = checkName(
      o.id ?? `${hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
      'id',
      'worker',
    );
    // Task type names, as submit checks them (the worker row keeps them as csv).
    this.types = Object.keys(o.handlers)
      .map((t) => checkName(t, 'handlers', 'worker'))
      .sort();
    this.shard = new SchedShard(o.redis, keys, o.shard ?? '0');
    this.capacity = o.capacity ?? {
      cpu: o.concurrency,
      memMb: Math.floor(totalmem() / 2 ** 20),
      gpu: 0,
    };
    this.clock = o.clock ?? systemClock;
    this.log = o.log ?? createLogger(`worker ${this.id}`);
    this.settleArgs = { ...DEFAULT_SETTLE_ARGS, ...o.settle };
    this.telemetry = new Telemetry({
      redis: o.redis,
      keys,
      service: SCHEDULER_SERVICE,
      instance: this.id,
      ...(o.telemetryIntervalMs ? { intervalMs: o.telemetryIntervalMs } : {}),
    });
    this.traces = traceWriters(o.redis, keys, o.traceSampleRate);
    this.inbox = new BlockingList(o.redis, this.shard.k.inbox(this.id));
    this.stops = new BlockingList(o.redis, this.shard.k.stops(this.id));
  }

  /** Registers the worker (its first heartbeat) and starts taking work. */
  static async start(o: WorkerRuntimeOptions): Promise<WorkerRuntime> {
    const w = new WorkerRuntime(o);
    try {
      await w.heartbeat();
    } catch (err) {
      // Their connections are the runtime's own.
      w.inbox.close();
      w.stops.close();
      throw err;
    }
    await w.checkClockSkew();
    w.telemetry.start();
    // A loop that died is logged here (an unhandled rejection would end the process), and stop()
    // still cleans up after it.
    w.fetchLoop = w
      .fetch()
      .catch((err: unknown) =>
        w.log.error({ err: describeError(err) }, 'fetch loop failed; taking no more work'),
      );
    w.stopLoop = w
      .readStops()
      .catch((err: unknown) =>
        w.log.error({ err: describeError(err) }, 'stop list loop failed; stops come with beats'),
      );
    w.scheduleHeartbeat();
    return w;
  }

  /**
   * Heartbeat and lease deadlines are written with this worker's clock and compared by the
   * reaper with the service's: a worker behind by more than about two beats is declared dead at
   * every beat and never gets work. Scripts do not take Redis's time (out of scope here), so
   * the clock is checked against Redis's once at start and a skew over a beat is logged. TIME
   * is refused to the service ACL users (not in their command categories): INFO's
   * server_time_usec is read then.
   */
  private async checkClockSkew(): Promise<void> {
    try {
      const before = this.clock.now();
      let redisMs: number;
      try {
        const [s, us] = await this.o.redis.time();
        redisMs = Number(s) * 1_000 + Number(us) / 1_000;
      } catch {
        const info = await this.o.redis.info('server');
        const m = /server_time_usec:(\d+)/.exec(info);
        if (!m) throw new Error('INFO server has no server_time_usec');
        redisMs = Number(m[1]) / 1_000;
      }
      const after = this.clock.now();
      // Redis read its time somewhere in the round trip: its middle is the best guess.
      const skewMs = Math.round((before + after) / 2 - redisMs);
      if (Math.abs(skewMs) > this.o.heartbeatMs)
        this.log.warn(
          { skewMs, heartbeatMs: this.o.heartbeatMs, roundTripMs: after - before },
          `worker clock is ${Math.abs(skewMs)} ms ${skewMs < 0 ? 'behind' : 'ahead of'} Redis's, ` +
            'more than the heartbeat interval: synchronize clocks (NTP), or the worker may be ' +
            'declared dead at every beat (behind) or hold leases too long (ahead)',
        );
    } catch (err) {
      this.log.warn({ err: describeError(err) }, 'clock skew against Redis not measured');
    }
  }

  /** Copies running or awaiting their settle acknowledgement. */
  get busy(): number {
    return this.active.size;
  }

  /**
   * One pop of `list`; after a failure it logs, waits a backoff that grows with the failures in
   * a row (ended by the list's close) and answers []. undefined once `ended()`: the loop ends.
   */
  private async popOrBackoff(
    list: BlockingList,
    count: number,
    failures: { n: number },
    ended: () => boolean,
  ): Promise<string[] | undefined> {
    try {
      const entries = await list.pop(count, this.o.idleWaitMs);
      failures.n = 0;
      return entries;
    } catch (err) {
      if (ended()) return undefined;
      failures.n++;
      this.log.warn({ err: (err as Error).message, list: list.key }, 'list read failed');
      await list.wait(Math.min(2_000, 50 * 2 ** Math.min(failures.n, 6)));
      return [];
    }
  }

  private async fetch(): Promise<void> {
    const failures = { n: 0 };
    while (!this.stopping) {
      const free = this.o.concurrency - this.active.size;
      if (free <= 0) {
        await new Promise<void>((r) => this.slotWaiters.push(r));
        continue;
      }
      const entries = await this.popOrBackoff(this.inbox, free, failures, () => this.stopping);
      if (entries === undefined) break;
      for (const e of entries) {
        if (e === INBOX_END) this.inboxEnded = true;
        else
          try {
            this.accept(e);
          } catch (err) {
            // Not a handler's failure (accept handles those): a bug; the loop must go on.
            this.log.error({ err: describeError(err) }, 'inbox entry not accepted');
          }
      }
      if (this.inboxEnded) return;
    }
  }

  /**
   * Stops the copies the scheduler cancels as soon as it says so, busy or not (the beat's lost
   * copies stay the fallback). An entry popped as the connection closes at stop may be lost:
   * stop() aborts every copy anyway.
   */
  private async readStops(): Promise<void> {
    const failures = { n: 0 };
    const stopped = () => this.heartbeatStopped;
    while (!this.heartbeatStopped) {
      const entries = await this.popOrBackoff(this.stops, STOPS_PER_POP, failures, stopped);
      if (entries === undefined) break;
      for (const e of entries) {
        const entry = parseInboxEntry(e);
        if (entry?.kind === 'cancel') this.cancel(entry.token);
        else this.log.error({ entry: e.slice(0, 200) }, 'malformed stop entry dropped');
      }
    }
  }

  private accept(raw: string): void {
    const entry = parseInboxEntry(raw);
    if (!entry) {
      this.log.error({ entry: raw.slice(0, 200) }, 'malformed inbox entry dropped');
      return;
    }
    if (entry.kind === 'cancel') {
      this.cancel(entry.token);
      return;
    }
    const task = entry.task;
    if (this.active.has(task.token)) return; // the same copy twice: run it once
    if (this.stoppedEarly.delete(task.token)) {
      this.telemetry.inc('tasks_cancelled');
      return;
    }
    const now = this.clock.now();
    const run: Running = {
      task,
      renewAt: now + task.leaseMs / 3,
      controller: undefined,
      cancelled: false,
      settling: false,
      startedAt: now,
      seq: ++this.acceptedCount,
    };
    this.active.set(task.token, run);
    this.beatBy(run.renewAt);
    // Own properties only: 'constructor' or 'toString' must not find Object's methods (the
    // first returned the context, its token included, as the task's result).
    const handler = Object.hasOwn(this.o.handlers, task.type)
      ? this.o.handlers[task.type]
      : undefined;
    const failed = (err: unknown) => {
      const f = failureOf(err);
      this.finished(run, f.outcome, f.detail);
    };
    if (!handler) {
      failed(new Error(`no handler for task type ${task.type} on worker ${this.id}`));
      return;
    }
    // A handler that returns a plain value has finished: no promise is made for it (most
    // short tasks), and its settle still waits for the next turn (kick).
    let result: unknown;
    let thenable: boolean;
    try {
      result = handler(new Context(task, this.id, run));
      thenable = isThenable(result); // reads `then`, which may be a throwing getter
    } catch (err) {
      failed(err);
      return;
    }
    if (thenable) Promise.resolve(result).then((r) => this.finished(run, 'ok', r), failed);
    else this.finished(run, 'ok', result);
  }

  private finished(run: Running, outcome: SettleItem['outcome'], detail: unknown): void {
    if (run.cancelled) {
      this.release(run.task.token);
      return;
    }
    let json: string | undefined;
    if (outcome === 'ok') {
      try {
        json = JSON.stringify(detail ?? null);
      } catch {
        json = undefined;
      }
      // Final: running it again would give the same result and repeat its side effects.
      if (json === undefined || Buffer.byteLength(json) > RESULT_BYTES_MAX) {
        outcome = 'final';
        detail = `result of task ${run.task.id} is not JSON of at most ${RESULT_BYTES_MAX} bytes`;
      }
    }
    run.settling = true;
    this.queue.push({
      taskId: run.task.id,
      token: run.task.token,
      outcome,
      detail,
      // The JSON checked above is the result sent (see SettleItem.resultJson).
      ...(outcome === 'ok' && json !== undefined ? { resultJson: json } : {}),
      retryLimit: run.task.retryLimit,
      backoffMs: run.task.backoffMs,
    });
    this.kick();
  }

  /**
   * Starts a flush unless one runs; one that ends with items queued starts the next. The flush
   * begins on the next turn of the event loop, so every copy that finishes in this turn (a
   * whole inbox batch of short tasks) goes in the same settle call: a call costs Redis far more
   * than an item.
   */
  private kick(): void {
    if (this.flushing) return;
    this.flushing = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.flush())
      .finally(() => {
        this.flushing = undefined;
        if (this.queue.length > 0) this.kick();
      });
  }

  /**
   * Stops that came before their copy's run entry (the two travel on different lists): that
   * entry, when it comes, is dropped, since the scheduler gave the copy's lease up already.
   * Oldest first (insertion order); each kept STOP_KEPT_MS, at most STOPS_KEPT.
   */
  private readonly stoppedEarly = new Map<string, number>();

  private cancel(token: string): void {
    const run = this.active.get(token);
    if (!run) {
      const now = Date.now();
      // Deleted first, so the map's order stays the order of expiry.
      this.stoppedEarly.delete(token);
      this.stoppedEarly.set(token, now + STOP_KEPT_MS);
      for (const [t, until] of this.stoppedEarly) {
        if (this.stoppedEarly.size <= STOPS_KEPT && until > now) break;
        this.stoppedEarly.delete(t);
      }
      return;
    }
    if (run.settling) return;
    run.cancelled = true;
    run.controller?.abort(cancelReason(run.task));
    this.telemetry.inc('tasks_cancelled');
    // The scheduler freed the copy's slot already: a beat now tells it the slot is still taken
    // while the handler runs on (it gives back a claim made meanwhile, heartbeat-12.lua). The
    // beat after the abort sees whether the handler ended.
    this.beatSoon = true;
    this.beatBy(this.clock.now());
  }

  private release(token: string): void {
    this.active.delete(token);
    const waiters = this.slotWaiters;
    this.slotWaiters = [];
    for (const w of waiters) w();
  }

  /** Sends queued settles until the queue is empty; retries a failed call with backoff. */
  private async flush(): Promise<void> {
    let failures = 0;
    while (this.queue.length > 0) {
      const batch = this.queue.slice(0, this.o.settleBatchMax);
      let results: SettleResult[];
      try {
        results = await this.shard.settle(batch, this.settleArgs, this.clock.now());
      } catch (err) {
        // The call may or may not have run: sending it again is safe (a repeated completion
        // answers 'again'; a repeated failure of a requeued copy is 'stale').
        failures++;
        // A stopped worker gives up after a few tries: the copies' leases expire and the
        // tasks run again (nothing was acknowledged, so nothing acknowledged is lost).
        if (this.heartbeatStopped && failures > STOP_SETTLE_TRIES) {
          this.queue = [];
          break;
        }
        this.log.warn({ err: (err as Error).message, failures }, 'settle failed; retrying');
        await new Promise((r) => setTimeout(r, Math.min(2_000, 50 * 2 ** Math.min(failures, 6))));
        continue;
      }
      // Acknowledged: what follows is bookkeeping, outside the try, so nothing it throws is
      // taken for a failed settle (the items are settled; a retry would only answer 'again').
      this.queue = this.queue.slice(batch.length);
      failures = 0;
      batch.forEach((item, i) => this.acknowledged(item, results[i] as SettleResult));
    }
  }

  private acknowledged(item: SettleItem, r: SettleResult): void {
    const run = this.active.get(item.token);
    // The slot first: a throw below (the caller's callback above all) must not keep it.
    this.release(item.token);
    try {
      this.report(item, r, run);
    } catch (err) {
      this.log.error(
        { err: describeError(err), task: item.taskId, status: r.status },
        'settle acknowledgement handling failed',
      );
    }
  }

  private report(item: SettleItem, r: SettleResult, run: Running | undefined): void {
    this.settled.set(r.status, (this.settled.get(r.status) ?? 0) + 1);
    const t = this.telemetry;
    const now = this.clock.now();
    if (r.status === 'ok' || r.status === 'again') t.inc('tasks_completed');
    else if (r.status === 'retry' || r.status === 'dead' || r.status === 'dropped')
      t.inc('tasks_failed');
    else t.inc('tasks_stale');
    if (r.status === 'dead') t.inc('tasks_dead');
    if (r.status === 'ok') t.observe('task_duration_ms', r.ms);
    if (r.jobCompletionMs !== undefined)
      recordJobCompletion(t, this.traces.jobs, {
        at: now,
        taskId: item.taskId,
        jobId: r.jobId,
        tenant: r.tenant,
        ms: r.jobCompletionMs,
        failed: r.status === 'dead',
      });
    for (const j of r.othersEnded ?? [])
      recordJobCompletion(t, this.traces.jobs, {
        at: now,
        taskId: item.taskId,
        jobId: j.jobId,
        tenant: j.tenant,
        ms: j.completionMs,
        failed: true,
      });
    if (run && r.status !== 'again' && r.status !== 'unknown') {
      this.traces.durations.record({
        at: now,
        id: item.taskId,
        job: r.jobId,
        stage: r.stage,
        tenant: r.tenant,
        worker: this.id,
        attempt: run.task.attempt,
        started_at: run.startedAt,
        duration_ms: r.status === 'retry' ? now - run.startedAt : r.ms,
        outcome: r.status,
      });
    }
    // Last: the runtime's own accounting is done whatever the caller's callback does (an
    // async one's rejection is logged as a throw is).
    const done: unknown = this.o.onSettled?.(item, r);
    if (isThenable(done))
      Promise.resolve(done).catch((err: unknown) =>
        this.log.error(
          { err: describeError(err), task: item.taskId },
          'settle acknowledgement handling failed',
        ),
      );
  }

  private scheduleHeartbeat(): void {
    if (this.heartbeatStopped) return;
    const now = this.clock.now();
    let next = this.beatSoon ? now : now + this.o.heartbeatMs;
    // A cancelled copy is never renewed (nor its renewAt moved): one whose handler ignores the
    // abort would otherwise bring every beat down to MIN_BEAT_GAP_MS.
    for (const run of this.active.values()) if (!run.cancelled) next = Math.min(next, run.renewAt);
    const waitMs = Math.max(MIN_BEAT_GAP_MS, next - now);
    this.nextBeatAt = now + waitMs;
    this.hbTimer = setTimeout(() => {
      this.hbTimer = undefined;
      this.hbRunning = this.heartbeat()
        .catch((err: Error) => this.log.warn({ err: err.message }, 'heartbeat failed'))
        .finally(() => this.scheduleHeartbeat());
    }, waitMs);
  }

  /** A copy whose renewal is due before the next beat moves the beat forward. */
  private beatBy(at: number): void {
    if (this.hbTimer === undefined || at >= this.nextBeatAt - MIN_BEAT_GAP_MS) return;
    clearTimeout(this.hbTimer);
    this.scheduleHeartbeat();
  }

  /**
   * Beats, and renews the leases of copies whose renewal is due (a third of their lease after
   * the last grant; a short task finishes before, so most beats renew nothing). Copies it no
   * longer holds are stopped. When the beat had to create the worker's row, the worker had
   * been declared dead: the copies accepted before the beat was sent belong to the old
   * incarnation and are stopped. Copies accepted later may have been claimed under the new one
   * (the beat rings the doorbell, so the dispatcher may claim before the reply arrives): they
   * run on.
   */
  async heartbeat(): Promise<void> {
    this.beatSoon = false;
    const now = this.clock.now();
    // Renew a little early, so a renewal is never later than the lease.
    const due: Running[] = [];
    // A cancelled copy still running holds a slot here, but the scheduler freed it: the row's
    // slots leave it out, or a claim would wait in the inbox behind it.
    let hung = 0;
    for (const r of this.active.values())
      if (r.cancelled) hung++;
      else if (r.renewAt <= now + MIN_BEAT_GAP_MS) due.push(r);
    const acceptedBefore = this.acceptedCount;
    const res = await this.shard.heartbeat(
      {
        workerId: this.id,
        heartbeatMs: this.o.heartbeatMs,
        capacity: this.capacity,
        slots: this.draining ? 0 : this.o.concurrency - hung,
        host: hostname(),
        pid: process.pid,
        types: this.types,
        renew: due.map((r) => ({
          taskId: r.task.id,
          token: r.task.token,
          leaseMs: r.task.leaseMs,
        })),
      },
      now,
    );
    const lost = new Set(res.lost);
    for (const r of due) if (!lost.has(r.task.token)) r.renewAt = now + r.task.leaseMs / 3;
    for (const token of lost) this.cancel(token);
    if (res.registered && this.incarnation !== undefined) {
      this.log.warn({ worker: this.id }, 're-registered after being declared dead');
      // The reaper deleted its inbox and stop list with its row (or Redis lost its data, and
      // with it the token counter, so old tokens come again): no stop kept is still owed.
      this.stoppedEarly.clear();
      // What it accepted before this beat was claimed under the old incarnation: void.
      for (const run of this.active.values())
        if (run.seq <= acceptedBefore && !run.settling) this.cancel(run.task.token);
    }
    this.incarnation = res.incarnation;
  }

  /**
   * Stops taking work. First a beat sets the row's slots to 0, so no claim lands here any
   * more. With `drain` (the default) the copies claimed before it (running, or still in the
   * inbox) run and are settled (at most `timeoutMs`). Then the inbox closes (after the beat:
   * closing a connection blocked in its pop can drop an entry popped meanwhile), and copies
   * still running are aborted: those whose handlers read `ctx.signal` and end within a short
   * grace (STOP_ABORT_GRACE_MS) are settled as failed attempts, whatever they returned (retried
   * with backoff, as a lease that ran out would be, without waiting `lease_ms` for it); others
   * keep their leases. Then the worker leaves the workers table, and copies whose run entries
   * are still in its inbox (never started) go back to the queue with no attempt counted
   * (deregister-12.lua).
   */
  async stop(opts: { drain?: boolean; timeoutMs?: number } = {}): Promise<void> {
    const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
    this.draining = true;
    await this.hbRunning;
    const beat = await this.heartbeat().then(
      () => true,
      (err: Error) => {
        this.log.warn({ err: err.message }, 'draining heartbeat failed');
        return false;
      },
    );
    if (opts.drain ?? true) {
      // Everything claimed before that beat is ahead of this entry in the inbox: the fetch
      // loop runs it all, and ends at the entry (a closed connection could drop a popped reply).
      await this.shard.redis
        .rpush(this.shard.k.inbox(this.id), INBOX_END)
        .catch((err: Error) => this.log.warn({ err: err.message }, 'inbox end not written'));
      while ((!this.inboxEnded || this.active.size > 0) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 10));
    }
    this.stopping = true;
    this.inbox.close();
    for (const w of this.slotWaiters) w();
    this.slotWaiters = [];
    await this.fetchLoop; // never rejects (start() logs its failure)
    // A copy already settling keeps its outcome; one the scheduler cancelled is not its own.
    const aborted = [...this.active.values()].filter((r) => !r.settling && !r.cancelled);
    for (const run of this.active.values()) {
      run.cancelled = true;
      run.controller?.abort(new Error('worker stopped'));
    }
    // Copies whose handlers end on the abort (within a short grace) are settled as failed
    // attempts, retried at once; a handler that runs on keeps its lease (retried when that runs
    // out, as before, not beside it at once). Not when the beat failed: Redis is away, and the
    // leases cover it. A handler that never read its signal cannot end on the abort: no wait.
    const graceEnd = Date.now() + STOP_ABORT_GRACE_MS;
    const waitFor = aborted.filter((r) => r.controller !== undefined);
    while (beat && waitFor.some((r) => this.active.has(r.task.token)) && Date.now() < graceEnd)
      await new Promise((r) => setTimeout(r, 10));
    for (const run of beat ? aborted : []) {
      if (this.active.has(run.task.token)) continue;
      this.queue.push({
        taskId: run.task.id,
        token: run.task.token,
        outcome: 'fail',
        detail: `worker ${this.id} stopped before the copy ended`,
        retryLimit: run.task.retryLimit,
        backoffMs: run.task.backoffMs,
      });
    }
    if (this.queue.length > 0) this.kick();
    this.heartbeatStopped = true;
    this.stops.close();
    await this.stopLoop;
    if (this.hbTimer) clearTimeout(this.hbTimer);
    await this.hbRunning;
    // The row must go whatever a settle did: log, do not throw before deregistering. A flush
    // that ends with items queued starts the next (kick): wait for all of them.
    while (this.flushing)
      await this.flushing.catch((err: unknown) =>
        this.log.error({ err: describeError(err) }, 'settle flush failed at stop'),
      );
    await this.shard.deregister(this.id, this.clock.now()).catch(() => false);
    await Promise.all(Object.values(this.traces).map((t) => t.flush().catch(() => 0)));
    await this.telemetry.stop();
  }
}
