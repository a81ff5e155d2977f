// Sampled traces (arrivals, durations, decisions, accesses) written to a stream per service
// and kind, in the shape the simulators replay. Records are buffered and written in one
// pipeline per flush; the buffer is bounded and drops (counting the drops) when Redis lags.
import type { RedisClient } from '../redis/connect.ts';
import type { Keys } from '../store/keys.ts';

export interface TraceOptions {
  redis: RedisClient;
  keys: Keys;
  service: string;
  kind: string;
  /** Fraction of records kept, 0..1. */
  sampleRate?: number;
  maxLen?: number;
  bufferMax?: number;
  flushMs?: number;
  rand?: () => number;
}

export class TraceWriter {
  private buffer: Record<string, string>[] = [];
  private timer: NodeJS.Timeout | undefined;
  dropped = 0;
  private readonly key: string;
  private readonly rand: () => number;

  constructor(private readonly opts: TraceOptions) {
    this.key = opts.keys.trace(opts.service, opts.kind);
    this.rand = opts.rand ?? Math.random;
    const rate = opts.sampleRate ?? 1;
    if (!(rate >= 0 && rate <= 1))
      throw new Error(`trace ${opts.kind}: sampleRate must be in [0, 1], got ${rate}`);
  }

  record(fields: Record<string, string | number | boolean>): void {
    if ((this.opts.sampleRate ?? 1) < 1 && this.rand() >= (this.opts.sampleRate ?? 1)) return;
    if (this.buffer.length >= (this.opts.bufferMax ?? 10_000)) {
      this.dropped++;
      return;
    }
    this.buffer.push(Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, String(v)])));
    this.timer ??= setTimeout(
      () => void this.flush().catch(() => undefined),
      this.opts.flushMs ?? 100,
    );
  }

  async flush(): Promise<number> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.buffer;
    this.buffer = [];
    if (batch.length === 0) return 0;
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
    await pipe.exec();
    return batch.length;
  }
}
