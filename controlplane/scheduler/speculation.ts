// Speculative execution of stragglers: when the `scheduler.speculative_execution` knob is on,
// each pass finds running copies past `scheduler.straggler_threshold` x their stage's median
// (SchedulerQueries.stragglers) and starts a second copy on another worker the policy picks.
// The first copy to complete wins; settle-12.lua cancels the other.
import { afterPlacing } from '../../policies/gpu/index.ts';
import type { SchedulingPolicy } from '../../policies/scheduling/index.ts';
import type { KnobClient } from '../knobs/client.ts';
import type { Logger } from '../log.ts';
import type { Telemetry } from '../telemetry/metrics.ts';
import type { TraceWriter } from '../telemetry/traces.ts';
import type { Clock } from './clock.ts';
import type { SchedulerQueries } from './queries.ts';
import type { SchedShard } from './shard.ts';
import { viewFromRow } from './views.ts';

export interface SpeculatorOptions {
  shard: SchedShard;
  queries: SchedulerQueries;
  knobs: KnobClient;
  policy: () => SchedulingPolicy;
  clock: Clock;
  telemetry: Telemetry;
  decisions: TraceWriter;
  log: Logger;
  intervalMs: number;
  /** Copies launched per pass at most. */
  perPassMax: number;
  minSamples: number;
}

export class Speculator {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private running: Promise<unknown> | undefined;

  constructor(private readonly o: SpeculatorOptions) {}

  start(): this {
    this.schedule();
    return this;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.pass()
        .catch((err: Error) => this.o.log.warn({ err: err.message }, 'speculation pass failed'))
        .finally(() => this.schedule());
    }, this.o.intervalMs);
  }

  /** One pass; returns the ids of the tasks that got a copy. */
  async pass(): Promise<string[]> {
    if (!this.o.knobs.get<boolean>('scheduler.speculative_execution')) return [];
    const now = this.o.clock.now();
    const stragglers = (
      await this.o.queries.stragglers({
        now,
        threshold: this.o.knobs.get<number>('scheduler.straggler_threshold'),
        minSamples: this.o.minSamples,
      })
    ).filter((s) => !s.speculated);
    if (stragglers.length === 0) return [];
    const free = await this.o.queries.freeWorkers(now);
    const policy = this.o.policy();
    const items: {
      taskId: string;
      seenToken: string;
      workerId: string;
      gpus?: readonly number[];
    }[] = [];
    for (const s of stragglers.slice(0, this.o.perPassMax)) {
      const others = free.filter((w) => w.view.id !== s.worker && w.freeSlots > 0);
      const task = viewFromRow(s.row);
      const [a] = policy.pick(
        [task],
        others.map((w) => w.view),
        now,
      );
      if (!a) continue;
      const w = others.find((x) => x.view.id === a.workerId);
      // The next straggler of this pass sees what this copy takes (as the claim will).
      if (w) {
        w.freeSlots--;
        w.view = afterPlacing(w.view, task.demand, a.gpus ?? []);
      }
      items.push({
        taskId: s.id,
        seenToken: s.token,
        workerId: a.workerId,
        ...(a.gpus ? { gpus: a.gpus } : {}),
      });
    }
    const k = this.o.knobs;
    const res = await this.o.shard.speculate(
      {
        leaseMs: k.get<number>('scheduler.lease_ms'),
        retryLimit: k.get<number>('scheduler.retry_limit'),
        backoffMs: k.get<number>('scheduler.retry_backoff_ms'),
      },
      items,
      now,
    );
    const launched = items.filter((_, i) => res[i]?.status === 'ok');
    if (launched.length > 0) {
      this.o.telemetry.inc('speculative_launched', launched.length);
      this.o.decisions.record({
        at: now,
        policy: policy.name,
        kind: 'speculate',
        assigned: launched.length,
        tasks: launched.map((l) => l.taskId).join(','),
        workers: launched.map((l) => l.workerId).join(','),
      });
    }
    return launched.map((l) => l.taskId);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }
}
