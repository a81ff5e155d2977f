// Messaging metrics and traces. Counters become per-second rates in the service's telemetry
// stream (produced, consumed, acked, duplicates, dead_lettered, ...), end-to-end latency is a
// summary, and sampled arrival records (topic, partition, arrival time, size) go to the
// `arrivals` trace, which trace.ts turns into the messaging simulator's input.
import { Telemetry } from '../telemetry/metrics.ts';
import { TraceWriter } from '../telemetry/traces.ts';
import type { RedisClient } from '../redis/connect.ts';
import type { Keys } from '../store/keys.ts';

export const MESSAGING_SERVICE = 'messaging';
export const ARRIVALS_TRACE = 'arrivals';

export interface MessagingTelemetryOptions {
  redis: RedisClient;
  keys: Keys;
  instance: string;
  intervalMs?: number;
  /** Fraction of published messages recorded in the arrivals trace. */
  traceSampleRate?: number;
  rand?: () => number;
}

export class MessagingTelemetry {
  readonly metrics: Telemetry;
  /** Arrival records; call sampleArrival() first (sampling here spares building the record). */
  readonly arrivals: TraceWriter;
  private readonly sampleRate: number;
  private readonly rand: () => number;

  constructor(opts: MessagingTelemetryOptions) {
    this.sampleRate = opts.traceSampleRate ?? 0.01;
    this.rand = opts.rand ?? Math.random;
    if (!(this.sampleRate >= 0 && this.sampleRate <= 1))
      throw new Error(
        `messaging telemetry: traceSampleRate must be in [0, 1], got ${this.sampleRate}`,
      );
    const common = {
      redis: opts.redis,
      keys: opts.keys,
      service: MESSAGING_SERVICE,
      ...(opts.rand ? { rand: opts.rand } : {}),
    };
    this.metrics = new Telemetry({
      ...common,
      instance: opts.instance,
      ...(opts.intervalMs !== undefined ? { intervalMs: opts.intervalMs } : {}),
    });
    this.arrivals = new TraceWriter({
      ...common,
      kind: ARRIVALS_TRACE,
      // sampleArrival() samples; the records carry the rate (before, none: a 1% sample read
      // as the whole workload).
      sampleRate: this.sampleRate,
      sampledByCaller: true,
    });
  }

  /** Whether to record this arrival (true for a traceSampleRate fraction of calls). */
  sampleArrival(): boolean {
    return this.sampleRate >= 1 || (this.sampleRate > 0 && this.rand() < this.sampleRate);
  }

  start(): this {
    this.metrics.start();
    return this;
  }

  async stop(): Promise<void> {
    await this.metrics.stop();
    await this.arrivals.flush().catch(() => undefined);
  }
}
