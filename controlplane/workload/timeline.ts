// The schedule a live driver replays in real time (the paced driver's Poisson gaps, the
// messaging driver's arrival times), with bounded catch-up. An operation that starts late
// records its lag; one more than maxLagMs late (a blocked event loop, a slow Redis, the
// driver's concurrency bound) re-anchors the driver to now: that operation starts (its lag
// says how late), the backlog behind it (every later operation already due) is skipped and
// counted, and the schedule resumes with the first operation due after now. So a stall never
// turns into a burst of everything it held up; lag within the bound is caught up.
export const DEFAULT_MAX_LAG_MS = 1_000;

export interface TimelineOp {
  /** Position in the plan, counting skipped operations. */
  index: number;
  dueMs: number;
}

export class Timeline {
  /** How late the last started operation was against its scheduled time. */
  lagMs = 0;
  /** Operations skipped because the driver re-anchored after falling too far behind. */
  skipped = 0;
  private index = 0;
  private skipBeforeMs = -Infinity;

  /**
   * @param plan nondecreasing times (ms from the start) of the operations, in order
   * @param startMs the clock reading the plan's time 0 maps to
   */
  constructor(
    private readonly plan: Iterator<number>,
    private readonly startMs: number,
    private readonly maxLagMs: number = DEFAULT_MAX_LAG_MS,
  ) {
    if (!(maxLagMs >= 0)) throw new Error(`maxLagMs must be >= 0, got ${maxLagMs}`);
  }

  /** The next operation to start, past any skipped backlog; undefined when the plan ends. */
  next(): TimelineOp | undefined {
    for (;;) {
      const r = this.plan.next();
      if (r.done) return undefined;
      const op = { index: this.index++, dueMs: this.startMs + r.value };
      if (op.dueMs >= this.skipBeforeMs) return op;
      this.skipped++;
    }
  }

  /** Records that an operation due at dueMs starts at nowMs (re-anchoring when too late). */
  started(dueMs: number, nowMs: number): void {
    const late = nowMs - dueMs;
    this.lagMs = Math.max(0, late);
    if (late > this.maxLagMs) this.skipBeforeMs = nowMs;
  }
}

/** The longest delay setTimeout holds. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The wait before a driver's next operation, which stop() can cut short: `sleep` resolves
 * after ms or at `wake()`, whichever comes first. One sleep at a time (a driver's loop).
 */
export class Sleeper {
  private wakeUp: (() => void) | undefined;

  sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      // A timer holds at most 2^31 - 1 ms (Node fires a longer one after 1 ms, and the driver
      // started an operation not due for weeks): a longer wait is made of several.
      let timer: ReturnType<typeof setTimeout>;
      const arm = (left: number): void => {
        timer = setTimeout(
          () => {
            if (left > MAX_TIMER_MS) return arm(left - MAX_TIMER_MS);
            this.wakeUp = undefined;
            resolve();
          },
          Math.min(left, MAX_TIMER_MS),
        );
      };
      arm(ms);
      this.wakeUp = () => {
        this.wakeUp = undefined;
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** Ends the sleep under way now, if any. */
  wake(): void {
    this.wakeUp?.();
  }
}
