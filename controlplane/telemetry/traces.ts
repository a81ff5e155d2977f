// Sampled traces (arrivals, durations, decisions, accesses) written to a stream per service
// and kind, in the shape the simulators replay. A sampled record (rate below 1) carries its
// rate in `sr`, so a reader can tell a sample from the whole trace. Records are buffered and
// written in one pipeline per flush, one flush in flight at a time; records buffered and in
// flight together are bounded by `bufferMax`, and beyond it are dropped (counted, as are
// failed writes) when Redis lags.
import type { RedisClient } from '../redis/connect.ts';
import type { Keys } from '../store/keys.ts';

export interface TraceOptions {
  redis: RedisClient;
  keys: Keys;
  service: string;
  kind: string;
  /** Fraction of records kept, 0..1; below 1, each record kept carries it as `sr`. */
  sampleRate?: number;
  /**
   * The caller samples at sampleRate before it records (sparing the record's making): every
   * record is kept, and still carries the rate.
   */
  sampledByCaller?: boolean;
  maxLen?: number;
  bufferMax?: number;
  flushMs?: number;
  rand?: () => number;
}

export class TraceWriter {
  private buffer: Record<string, string>[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** The flush whose pipeline is being written, and how many records it holds. */
  private inFlight: Promise<number> | undefined;
  private inFlightCount = 0;
  /** Records not written: over the bound while Redis lags, or refused by Redis. */
  dropped = 0;
  private readonly key: string;
  private readonly rand: () => number;
  private readonly rate: number;
  /** The rate as written in each sampled record; undefined when every record is kept. */
  private readonly sr: string | undefined;

  constructor(private readonly opts: TraceOptions) {
    this.key = opts.keys.trace(opts.service, opts.kind);
    this.rand = opts.rand ?? Math.random;
    const rate = opts.sampleRate ?? 1;
    if (!(rate >= 0 && rate <= 1))
      throw new Error(`trace ${opts.kind}: sampleRate must be in [0, 1], got ${rate}`);
    this.rate = rate;
    this.sr = rate < 1 ? String(rate) : undefined;
  }

  record(fields: Record<string, string | number | boolean>): void {
    if (this.sr !== undefined && !this.opts.sampledByCaller && this.rand() >= this.rate) return;
    // What is still being written counts too: otherwise a lagging Redis would take a new
    // buffer's worth every flush, queued in the client without bound.
    if (this.buffer.length + this.inFlightCount >= (this.opts.bufferMax ?? 10_000)) {
      this.dropped++;
      return;
    }
    const rec = Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, String(v)]));
    if (this.sr !== undefined) rec['sr'] = this.sr;
    this.buffer.push(rec);
    this.schedule();
  }

  /** A timed flush, unless one is due or in flight (which schedules the next when it ends). */
  private schedule(): void {
    if (this.timer || this.inFlight || this.buffer.length === 0) return;
    this.timer = setTimeout(
      () => void this.flush().catch(() => undefined),
      this.opts.flushMs ?? 100,
    );
  }

  /**
   * Writes the buffer, after the flush in flight if there is one; returns how many records
   * were written. Records Redis refused are counted in `dropped`; a pipeline that fails as a
   * whole counts its batch as dropped and rejects.
   */
  async flush(): Promise<number> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    while (this.inFlight) await this.inFlight.catch(() => undefined);
    const batch = this.buffer;
    this.buffer = [];
    if (batch.length === 0) return 0;
    const run = this.write(batch);
    this.inFlight = run;
    this.inFlightCount = batch.length;
    try {
      return await run;
    } finally {
      this.inFlight = undefined;
      this.inFlightCount = 0;
      this.schedule();
    }
  }

  private async write(batch: Record<string, string>[]): Promise<number> {
    const pipe = this.opts.redis.pipeline();
    for (const f of batch)
      pipe.xadd(
        this.key,
        'MAXLEN',
        '~',
        this.opts.maxLen ?? 100_000,
        '*',
        ...Object.entries(f).flat(),
      );
    let results: [Error | null, unknown][] | null;
    try {
      results = await pipe.exec();
    } catch (err) {
      this.dropped += batch.length;
      throw err;
    }
    const failed = results ? results.filter(([err]) => err).length : batch.length;
    this.dropped += failed;
    return batch.length - failed;
  }
}
