// A paced driver for live workloads: issues operations at a target rate with Poisson
// (seeded) gaps and at most `concurrency` in flight, until stopped or `maxOps` is reached.
// When the service is slower than the rate, the driver falls behind rather than queueing
// without bound; it reports how far behind it is.
import { createRng } from '../../envs/core/index.ts';

export interface PacedOptions {
  ratePerS: number;
  concurrency: number;
  seed: number;
  maxOps?: number;
}

export interface PacedStats {
  started: number;
  done: number;
  failed: number;
  /** How far the last op started behind its scheduled time. */
  lagMs: number;
}

export class Paced {
  readonly stats: PacedStats = { started: 0, done: 0, failed: 0, lagMs: 0 };
  private stopped = false;
  private readonly loop: Promise<void>;

  constructor(
    private readonly opts: PacedOptions,
    private readonly op: (i: number) => Promise<void>,
    private readonly onError: (err: unknown) => void = () => {},
  ) {
    if (!(opts.ratePerS > 0) || !(opts.concurrency >= 1))
      throw new Error('paced: ratePerS > 0 and concurrency >= 1 required');
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    const rng = createRng(this.opts.seed);
    const inFlight = new Set<Promise<void>>();
    let due = performance.now();
    const max = this.opts.maxOps ?? Number.MAX_SAFE_INTEGER;
    while (!this.stopped && this.stats.started < max) {
      due += rng.exponential(this.opts.ratePerS) * 1000;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      this.stats.lagMs = Math.max(0, -wait);
      if (inFlight.size >= this.opts.concurrency) await Promise.race(inFlight);
      if (this.stopped) break;
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

  async stop(): Promise<PacedStats> {
    this.stopped = true;
    await this.loop;
    return this.stats;
  }

  /** Resolves when maxOps have run. */
  async finished(): Promise<PacedStats> {
    await this.loop;
    return this.stats;
  }
}
