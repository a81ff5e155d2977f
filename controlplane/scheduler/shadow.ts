// Shadow mode in the dispatcher: when the scheduler.shadow_policy knob names a policy other
// than the live one, every dispatch round also asks it, on the very views the live policy saw,
// what it would assign, and traces both picks and their divergence. It never acts: its picks
// go nowhere but the trace. The loop's scheduler target reads that trace as its shadow report.
import {
  createSchedulingPolicy,
  type Assignment,
  type SchedulingPolicy,
  type TaskView,
  type WorkerView,
} from '../../policies/scheduling/index.ts';
import type { KnobClient } from '../knobs/client.ts';
import type { Telemetry } from '../telemetry/metrics.ts';
import type { TraceWriter } from '../telemetry/traces.ts';

const TRACE_TASKS_MAX = 64;

/** Share of the live assignments the shadow would not have made (0 = identical picks). */
export function divergence(live: readonly Assignment[], shadow: readonly Assignment[]): number {
  if (live.length === 0 && shadow.length === 0) return 0;
  const s = new Set(shadow.map((a) => a.taskId));
  const same = live.filter((a) => s.has(a.taskId)).length;
  return 1 - same / Math.max(live.length, shadow.length);
}

export class ShadowDecisions {
  private policy: SchedulingPolicy | undefined;

  constructor(
    private readonly o: { knobs: KnobClient; trace: TraceWriter; telemetry: Telemetry },
  ) {}

  private current(): SchedulingPolicy | undefined {
    const name = this.o.knobs.get<string>('scheduler.shadow_policy');
    if (name === 'none') return (this.policy = undefined);
    if (this.policy?.name !== name) this.policy = createSchedulingPolicy(name);
    return this.policy;
  }

  /**
   * One dispatch round seen by the shadow: `cap` turns a policy's picks into what the
   * dispatcher would claim (the same batch and slot limits as the live picks got).
   */
  observe(
    liveName: string,
    views: readonly TaskView[],
    workers: readonly WorkerView[],
    now: number,
    live: readonly Assignment[],
    cap: (picked: Assignment[]) => Assignment[],
  ): void {
    const shadow = this.current();
    if (!shadow || shadow.name === liveName) return;
    const picks = cap(shadow.pick(views, workers, now));
    const d = divergence(live, picks);
    this.o.telemetry.observe('shadow_divergence', d);
    this.o.trace.record({
      at: now,
      live: liveName,
      shadow: shadow.name,
      divergence: d,
      window: views.length,
      live_tasks: live
        .slice(0, TRACE_TASKS_MAX)
        .map((a) => a.taskId)
        .join(','),
      shadow_tasks: picks
        .slice(0, TRACE_TASKS_MAX)
        .map((a) => a.taskId)
        .join(','),
    });
  }
}
