// Per-instance service metrics, aggregated in memory and written to the service's telemetry
// stream once per interval: counters (per-interval counts and rates), gauges (last value) and
// latency summaries (count, mean, p50, p99, max). The hot path only touches memory.
import { randomBytes } from 'node:crypto';
import type { RedisClient } from '../redis/connect.ts';
import type { Keys } from '../store/keys.ts';

const MAX_SAMPLES = 10_000; // per summary per interval; beyond it, reservoir sampling keeps it fair

class Summary {
  private samples: number[] = [];
  private seen = 0;
  private sum = 0;
  private max = -Infinity;
  record(v: number, rand: () => number): void {
    this.seen++;
    this.sum += v;
    if (v > this.max) this.max = v;
    if (this.samples.length < MAX_SAMPLES) this.samples.push(v);
    else {
      const j = Math.floor(rand() * this.seen);
      if (j < MAX_SAMPLES) this.samples[j] = v;
    }
  }
  /** The interval's statistics; null when nothing was recorded. */
  stats(): Record<string, number> | null {
    if (this.seen === 0) return null;
    const s = this.samples.sort((a, b) => a - b);
    const at = (p: number) => s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)] as number;
    return {
      count: this.seen,
      mean: this.sum / this.seen,
      p50: at(0.5),
      p99: at(0.99),
      max: this.max,
    };
  }
  /**
   * Adds another summary's records to this one (after a failed flush, the interval's records
   * and those that came during the write). Count, sum and max stay exact; the other's samples
   * go through the reservoir, an approximation that only matters past MAX_SAMPLES.
   */
  absorb(other: Summary, rand: () => number): void {
    this.seen += other.seen;
    this.sum += other.sum;
    if (other.max > this.max) this.max = other.max;
    for (const v of other.samples) {
      if (this.samples.length < MAX_SAMPLES) this.samples.push(v);
      else {
        const j = Math.floor(rand() * this.seen);
        if (j < MAX_SAMPLES) this.samples[j] = v;
      }
    }
  }
}

export interface TelemetryOptions {
  redis: RedisClient;
  keys: Keys;
  service: string;
  instance: string;
  intervalMs?: number;
  /** Retention bound of the telemetry stream. */
  maxLen?: number;
  /** Injected randomness for reservoir sampling. */
  rand?: () => number;
}

export class Telemetry {
  private readonly counters = new Map<string, number>();
  private readonly gauges = new Map<string, number>();
  private readonly summaries = new Map<string, Summary>();
  private readonly ratios = new Map<string, { part: string; others: readonly string[] }>();
  private timer: NodeJS.Timeout | undefined;
  /** Start of the interval the next flush reports: the last successful flush. */
  private lastFlush = Date.now();
  private inFlight: Promise<unknown> | undefined;
  private readonly rand: () => number;
  /**
   * Names each flush (`fs`: this object's random session, then a count): ioredis resends an
   * XADD whose reply a dropped connection lost, and readers keep the first entry of a name
   * (read.ts), so a resent interval is not counted twice.
   */
  private readonly session = randomBytes(6).toString('hex');
  private flushes = 0;

  constructor(private readonly opts: TelemetryOptions) {
    this.rand = opts.rand ?? Math.random;
  }

  inc(name: string, by = 1): void {
    this.counters.set(name, (this.counters.get(name) ?? 0) + by);
  }
  gauge(name: string, value: number): void {
    this.gauges.set(name, value);
  }
  observe(name: string, value: number): void {
    let s = this.summaries.get(name);
    if (!s) this.summaries.set(name, (s = new Summary()));
    s.record(value, this.rand);
  }

  /**
   * A per-interval ratio written at each flush: part / (part + others), from counters of the
   * same interval (a hit ratio from hit and miss counts). Skipped in an interval with no counts.
   */
  ratio(name: string, part: string, others: readonly string[]): void {
    this.ratios.set(name, { part, others });
  }

  start(): this {
    this.timer ??= setInterval(
      // A tick while a flush is still in flight (Redis lags) is skipped, not queued.
      () => void (this.inFlight ? undefined : this.flush().catch(() => undefined)),
      this.opts.intervalMs ?? 1_000,
    );
    this.timer.unref();
    return this;
  }

  /**
   * Writes one entry with everything since the last successful flush; returns its fields.
   * One flush at a time: a call waits for the one in flight. When the write fails, the
   * interval's counts and latency records are kept and it goes on, so the next flush reports
   * the whole of it (its counts over its whole length).
   *
   * The interval ends when this flush takes its counts, after any flush in flight: `now`
   * (tests pass one) defaults to the clock read then, not when flush was called.
   */
  async flush(now?: number): Promise<Record<string, number>> {
    while (this.inFlight) await this.inFlight.catch(() => undefined);
    const run = this.write(now ?? Date.now());
    this.inFlight = run;
    try {
      return await run;
    } finally {
      this.inFlight = undefined;
    }
  }

  private async write(now: number): Promise<Record<string, number>> {
    const elapsedS = Math.max(1e-3, (now - this.lastFlush) / 1000);
    // The interval's counts and summaries are taken out now, so what is recorded during the
    // write goes to the next interval, and put back if the write fails.
    const counts = new Map(this.counters);
    // A counter seen once is written in every later interval, 0 when nothing counted: a reader
    // averaging a step's entries would otherwise average over the busy intervals alone.
    for (const k of this.counters.keys()) this.counters.set(k, 0);
    const summaries = new Map(this.summaries);
    this.summaries.clear();
    const fields: Record<string, number> = { interval_s: elapsedS };
    for (const [k, v] of counts) {
      fields[k] = v;
      fields[`${k}_per_s`] = v / elapsedS;
    }
    for (const [name, { part, others }] of this.ratios) {
      const p = counts.get(part) ?? 0;
      const total = p + others.reduce((a, o) => a + (counts.get(o) ?? 0), 0);
      if (total > 0) fields[name] = p / total;
    }
    for (const [k, v] of this.gauges) fields[k] = v;
    for (const [k, s] of summaries) {
      const d = s.stats();
      if (d) for (const [stat, v] of Object.entries(d)) fields[`${k}_${stat}`] = v;
    }
    const flat = Object.entries(fields).flatMap(([k, v]) => [k, String(v)]);
    try {
      await this.opts.redis.xadd(
        this.opts.keys.telemetry(this.opts.service),
        'MAXLEN',
        '~',
        this.opts.maxLen ?? 100_000,
        '*',
        'instance',
        this.opts.instance,
        'at',
        String(now),
        'fs',
        `${this.session}.${++this.flushes}`,
        ...flat,
      );
    } catch (err) {
      for (const [k, v] of counts) this.counters.set(k, (this.counters.get(k) ?? 0) + v);
      for (const [k, s] of summaries) {
        const since = this.summaries.get(k);
        if (since) s.absorb(since, this.rand);
        this.summaries.set(k, s);
      }
      throw err;
    }
    this.lastFlush = now;
    return fields;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush().catch(() => undefined);
  }
}
