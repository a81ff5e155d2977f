// The reaper: a bounded pass (reap-12.lua) every `intervalMs` that requeues copies whose lease
// expired, makes tasks whose backoff ended runnable, and drops workers whose heartbeat ran
// out; and, every `pruneIntervalMs`, retention of completed and dead-lettered tasks. Several
// service instances may reap at once: each step is atomic and checks what it relies on.
import type { KnobClient } from '../knobs/client.ts';
import type { Logger } from '../log.ts';
import type { Telemetry } from '../telemetry/metrics.ts';
import type { TraceWriter } from '../telemetry/traces.ts';
import type { Clock } from './clock.ts';
import type { ReapReply, SchedShard } from './shard.ts';
import { recordJobCompletion } from './traces.ts';

export interface Retention {
  /** Completed tasks are kept this long after they finish ... */
  doneMs: number;
  /** ... and at most this many. */
  doneMax: number;
  deadMs: number;
  deadMax: number;
}

export interface ReaperOptions {
  shard: SchedShard;
  /** Retry settings for copies whose lease expired come from the knobs. */
  knobs: KnobClient;
  clock: Clock;
  telemetry: Telemetry;
  /** The `jobs` trace: jobs that end when a task dies of lease expiry are recorded here. */
  jobs: TraceWriter;
  log: Logger;
  intervalMs: number;
  /** Entries of each kind one pass handles; a full pass is followed by another at once. */
  batchMax: number;
  jobTtlMs: number;
  retention: Retention;
  pruneIntervalMs: number;
}

/** Passes in a row when each one hits the bound, before the loop sleeps anyway. */
const BACK_TO_BACK_MAX = 10;

export class Reaper {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private running: Promise<void> | undefined;
  private lastPrune = 0;

  constructor(private readonly o: ReaperOptions) {}

  start(): this {
    this.schedule(0);
    return this;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.tick().finally(() => this.schedule(this.o.intervalMs));
    }, ms);
  }

  private async tick(): Promise<void> {
    try {
      for (let i = 0; i < BACK_TO_BACK_MAX && !this.stopped; i++) {
        const r = await this.pass();
        if (r.expired < this.o.batchMax && r.promoted < this.o.batchMax) break;
      }
      const now = this.o.clock.now();
      if (now - this.lastPrune >= this.o.pruneIntervalMs) {
        this.lastPrune = now;
        // A full pass is followed by another, so retention keeps up with a busy shard.
        for (let i = 0; i < BACK_TO_BACK_MAX && !this.stopped; i++) {
          const p = await this.prune();
          if (p.done + p.dead < this.o.batchMax) break;
        }
      }
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message }, 'reaper pass failed');
    }
  }

  async pass(): Promise<ReapReply> {
    const k = this.o.knobs;
    const now = this.o.clock.now();
    const r = await this.o.shard.reap(
      {
        max: this.o.batchMax,
        jobTtlMs: this.o.jobTtlMs,
        retryLimit: k.get<number>('scheduler.retry_limit'),
        backoffMs: k.get<number>('scheduler.retry_backoff_ms'),
      },
      now,
    );
    const t = this.o.telemetry;
    for (const j of r.jobsEnded)
      recordJobCompletion(t, this.o.jobs, {
        at: now,
        taskId: j.taskId,
        jobId: j.jobId,
        tenant: j.tenant,
        ms: j.completionMs,
        failed: true,
      });
    if (r.expired > 0) {
      t.inc('leases_expired', r.expired);
      t.inc('tasks_failed', r.expired - r.dropped);
      this.o.log.info({ expired: r.expiredTasks.slice(0, 20) }, 'leases expired');
    }
    if (r.dead > 0) t.inc('tasks_dead', r.dead);
    if (r.workersRemoved > 0) t.inc('workers_removed', r.workersRemoved);
    return r;
  }

  async prune(): Promise<{ done: number; dead: number }> {
    const now = this.o.clock.now();
    const ret = this.o.retention;
    return this.o.shard.prune(
      {
        doneBefore: now - ret.doneMs,
        doneMax: ret.doneMax,
        deadBefore: now - ret.deadMs,
        deadMax: ret.deadMax,
        budget: this.o.batchMax,
      },
      now,
    );
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }
}
