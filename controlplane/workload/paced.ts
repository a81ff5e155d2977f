// A paced driver for live workloads: issues operations at a target rate with Poisson
// (seeded) gaps and at most `concurrency` in flight, until stopped or `maxOps` is reached.
// When the service is slower than the rate, the driver falls behind rather than queueing
// without bound; it reports how far behind it is, and once it is more than maxLagMs behind
// it skips (and counts) the overdue operations instead of starting them back to back.
import { createRng, type Rng } from '../../envs/core/index.ts';
import { Sleeper, Timeline } from './timeline.ts';

export interface PacedOptions {
  ratePerS: number;
  concurrency: number;
  seed: number;
  maxOps?: number;
  /** Lateness beyond which the overdue operations are skipped (default DEFAULT_MAX_LAG_MS). */
  maxLagMs?: number;
}

export interface PacedStats {
  started: number;
  done: number;
  failed: number;
  /** Overdue ops not started because the driver was more than maxLagMs behind. */
  skipped: number;
  /** How far the last op started behind its scheduled time. */
  lagMs: number;
}

/** Poisson arrival times (ms from 0) at ratePerS. */
function* poissonPlan(rng: Rng, ratePerS: number): Generator<number> {
  for (let t = 0; ;) yield (t += rng.exponential(ratePerS) * 1000);
}

export class Paced {
  readonly stats: PacedStats = { started: 0, done: 0, failed: 0, skipped: 0, lagMs: 0 };
  private stopped = false;
  private readonly sleeper = new Sleeper();
  private readonly loop: Promise<void>;

  constructor(
    private readonly opts: PacedOptions,
    private readonly op: (i: number) => Promise<void>,
    private readonly onError: (err: unknown) => void = () => {},
  ) {
    if (!(opts.ratePerS > 0) || !(opts.concurrency >= 1))
      throw new Error('paced: ratePerS > 0 and concurrency >= 1 required');
    if (opts.maxLagMs !== undefined && !(opts.maxLagMs >= 0))
      throw new Error('paced: maxLagMs >= 0 required');
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    const plan = poissonPlan(createRng(this.opts.seed), this.opts.ratePerS);
    const timeline = new Timeline(plan, performance.now(), this.opts.maxLagMs);
    const inFlight = new Set<Promise<void>>();
    const max = this.opts.maxOps ?? Number.MAX_SAFE_INTEGER;
    while (!this.stopped && this.stats.started < max) {
      const { dueMs } = timeline.next() as { dueMs: number }; // the plan never ends
      this.stats.skipped = timeline.skipped;
      const wait = dueMs - performance.now();
      if (wait > 0) await this.sleeper.sleep(wait);
      if (inFlight.size >= this.opts.concurrency) await Promise.race(inFlight);
      if (this.stopped) break;
      timeline.started(dueMs, performance.now());
      this.stats.lagMs = timeline.lagMs;
      const i = this.stats.started++;
      const p: Promise<void> = this.op(i).then(
        () => {
          this.stats.done++;
        },
        (err: unknown) => {
          this.stats.failed++;
          this.onError(err);
        },
      );
      const tracked = p.finally(() => inFlight.delete(tracked));
      inFlight.add(tracked);
    }
    await Promise.allSettled([...inFlight]);
  }

  /** Stops starting operations (cutting short the wait for the next) and awaits those running. */
  async stop(): Promise<PacedStats> {
    this.stopped = true;
    this.sleeper.wake();
    await this.loop;
    return this.stats;
  }

  /** Resolves when maxOps have run. */
  async finished(): Promise<PacedStats> {
    await this.loop;
    return this.stats;
  }
}
