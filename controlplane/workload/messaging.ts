// The live messaging workload: a producer publishing to a topic on a schedule (a request
// trace's arrival times replayed in scaled time, or a generated Poisson/bursty profile) through
// the batching Producer, so `messaging.batch_size` and `messaging.linger_ms` act live; and a
// consumer group whose exactly-once handler counts messages per tenant and pays a simulated
// processing cost (per batch and per message), so batching has a real trade-off: bigger
// batches amortise the per-batch cost, lingering adds latency. A driver that falls more than
// maxLagMs behind its schedule skips the overdue messages (counted) rather than bursting them.
import { randomBytes } from 'node:crypto';
import { createRng } from '../../envs/core/index.ts';
import type { RequestTrace } from '../../envs/loaders/requests-azure.ts';
import {
  generatedMessages,
  messagesFromTrace,
  type GeneratedMessagesConfig,
} from '../../envs/messaging/arrivals.ts';
import { percentile } from '../../envs/messaging/metrics.ts';
import type { Messages } from '../../envs/messaging/model.ts';
import {
  WorkloadConfigError,
  ZipfDrift,
  requireInteger,
  requirePositive,
} from '../../envs/workload/index.ts';
import { systemClock, type Clock } from '../knobs/clock.ts';
import type { KnobClient } from '../knobs/client.ts';
import { createLogger, type Logger } from '../log.ts';
import { Consumer } from '../messaging/consumer.ts';
import type { MessagingKeys } from '../messaging/keys.ts';
import type { BatchEvent, Handler } from '../messaging/partition-worker.ts';
import { Producer } from '../messaging/producer.ts';
import { MessagingTelemetry } from '../messaging/telemetry.ts';
import { BYTES_PER_TOKEN } from '../messaging/trace.ts';
import type { Topics } from '../messaging/topics.ts';
import type { RedisClient } from '../redis/connect.ts';
import { Sleeper, Timeline } from './timeline.ts';

export type MessagingSource =
  /** A request trace replayed `speedup` times faster than it was recorded. */
  | { kind: 'trace'; trace: RequestTrace; speedup: number }
  /**
   * Seeded Poisson or bursty arrivals (envs/messaging's generator). With ratePerS, the
   * realisation's time axis is scaled so that one pass averages exactly that rate: a short
   * bursty realisation holds few calm/burst cycles, so its own mean rate depends on the seed.
   */
  | { kind: 'generated'; config: GeneratedMessagesConfig; ratePerS?: number };

/** Simulated handler cost: a batch of n messages takes about perBatchMs + n * perMessageMs. */
export interface ProcessingCost {
  perBatchMs: number;
  perMessageMs: number;
}

export interface MessagingWorkloadOptions {
  redis: RedisClient;
  keys: MessagingKeys;
  knobs: KnobClient;
  /** The topic must exist (Topics.ensure). */
  topic: string;
  group?: string;
  source: MessagingSource;
  seed: number;
  /** Replay the schedule again from its start once it ends (default: publish it once). */
  loop?: boolean;
  /** Stop publishing after this many messages. */
  maxMessages?: number;
  /** Publishes awaiting Redis's acknowledgement; beyond it the driver falls behind. */
  maxInFlight?: number;
  /**
   * How far behind its schedule the driver catches up (default DEFAULT_MAX_LAG_MS); a message
   * later than that is published and the others already due are skipped (stats.skipped).
   */
  maxLagMs?: number;
  tenants?: number;
  /** Zipf exponent of tenant popularity (0 = uniform). */
  tenantSkew?: number;
  /** Payload bounds: a message is tokens * BYTES_PER_TOKEN bytes, clamped to these. */
  minMessageBytes?: number;
  maxMessageBytes?: number;
  cost?: ProcessingCost;
  topics?: Topics;
  telemetry?: MessagingTelemetry;
  traceSampleRate?: number;
  clock?: Clock;
  log?: Logger;
}

export interface MessagingWorkloadStats {
  /** Publishes Redis acknowledged (not counting recognised duplicates). */
  published: number;
  publishFailed: number;
  /** Messages whose effects this workload's consumer committed. */
  consumed: number;
  /** Redeliveries recognised by the dedup table (their effects were not applied again). */
  duplicates: number;
  stale: number;
  deadLettered: number;
  handlerErrors: number;
  batches: number;
  meanBatchSize: number;
  /** Scheduled messages not published because the driver was more than maxLagMs behind. */
  skipped: number;
  /** How far the last publish started behind its scheduled time. */
  lagMs: number;
  /** Publish to commit, over the last LATENCY_WINDOW messages of fully applied batches. */
  e2eP50Ms: number;
  e2eP99Ms: number;
  publishedByTenant: Record<string, number>;
}

/** Latency samples kept (the most recent ones) for the percentiles in stats. */
export const LATENCY_WINDOW = 10_000;
/** Messages published in one go without yielding to the event loop, when many are due. */
const MAX_BURST = 256;
const DEFAULT_COST: ProcessingCost = { perBatchMs: 2, perMessageMs: 0.05 };

/** What the driver replays: arrival times (ms from 0) and payload sizes. */
export interface Schedule {
  tMs: Float64Array;
  bytes: Uint32Array;
  /** Length of one pass, for looping: the next pass starts this much later. */
  periodMs: number;
}

/** The speed-up that replays a trace at a mean rate of ratePerS. */
export function speedupForRate(trace: RequestTrace, ratePerS: number): number {
  requirePositive('ratePerS', ratePerS);
  const n = trace.tMs.length;
  const spanMs = n > 1 ? (trace.tMs[n - 1] as number) : 0;
  if (!(spanMs > 0)) throw new WorkloadConfigError('trace', 'must span more than one instant');
  return ratePerS / ((n - 1) / (spanMs / 1000));
}

export function buildSchedule(
  source: MessagingSource,
  seed: number,
  bounds: { minBytes: number; maxBytes: number },
): Schedule {
  let m: Messages;
  let periodMs: number;
  if (source.kind === 'trace') {
    requirePositive('speedup', source.speedup);
    const raw = messagesFromTrace(source.trace);
    m = { tMs: raw.tMs.map((t) => t / source.speedup), tokens: raw.tokens };
    const n = m.tMs.length;
    const spanMs = n > 0 ? (m.tMs[n - 1] as number) : 0;
    // One mean gap after the last arrival, so a looped replay keeps the trace's rate.
    periodMs = n > 1 ? (spanMs * n) / (n - 1) : 1_000;
  } else {
    m = generatedMessages(createRng(seed), source.config);
    periodMs = source.config.durationMs;
    if (source.ratePerS !== undefined && m.tMs.length > 0) {
      requirePositive('ratePerS', source.ratePerS);
      const scale = m.tMs.length / (periodMs / 1000) / source.ratePerS;
      m = { tMs: m.tMs.map((t) => t * scale), tokens: m.tokens };
      periodMs *= scale;
    }
  }
  if (m.tMs.length === 0) throw new WorkloadConfigError('source', 'yields no messages');
  if (!(periodMs > 0)) throw new WorkloadConfigError('source', 'must span a positive time');
  const bytes = Uint32Array.from(m.tokens, (t) =>
    Math.min(bounds.maxBytes, Math.max(bounds.minBytes, Math.round(t * BYTES_PER_TOKEN))),
  );
  return { tMs: m.tMs, bytes, periodMs };
}

/** Per-tenant counts the handler wrote, summed over the topic's partitions. */
export async function tenantCounts(
  redis: RedisClient,
  keys: MessagingKeys,
  topic: string,
  group: string,
  partitions: number,
): Promise<Map<string, number>> {
  const hashes = await Promise.all(
    Array.from({ length: partitions }, (_, p) =>
      redis.hgetall(keys.output(topic, p, tenantsOutput(group))),
    ),
  );
  const all = new Map<string, number>();
  for (const h of hashes)
    for (const [k, v] of Object.entries(h)) all.set(k, (all.get(k) ?? 0) + Number(v));
  return all;
}

function tenantsOutput(group: string): string {
  return `${group}-tenants`;
}

/** The schedule's arrival times (ms from 0), once or looped pass after pass. */
function* schedulePlan({ tMs, periodMs }: Schedule, loop: boolean): Generator<number> {
  for (let pass = 0; pass === 0 || loop; pass++) for (const t of tMs) yield pass * periodMs + t;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A partition's handler state: the open batch's cost debt and its messages' publish times. */
interface Lane {
  open: boolean;
  debtMs: number;
  publishedAt: number[];
}

export class MessagingWorkload {
  private readonly stats0 = {
    published: 0,
    publishFailed: 0,
    consumed: 0,
    duplicates: 0,
    stale: 0,
    deadLettered: 0,
    handlerErrors: 0,
    batches: 0,
    batchMessages: 0,
    skipped: 0,
    lagMs: 0,
  };
  private readonly byTenant = new Map<string, number>();
  private readonly latencies = new Float64Array(LATENCY_WINDOW);
  private latencyCount = 0;
  private readonly lanes = new Map<number, Lane>();
  private inFlight = 0;
  private slotFree: (() => void) | undefined;
  private readonly sleeper = new Sleeper();
  private stopped = false;
  private driving: Promise<void> = Promise.resolve();
  private consumerRef: Consumer | undefined;
  private stopping: Promise<MessagingWorkloadStats> | undefined;
  private lastFailureLogAt = 0;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly cost: ProcessingCost;
  private readonly group: string;
  private readonly maxInFlight: number;

  private constructor(
    private readonly o: MessagingWorkloadOptions,
    private readonly schedule: Schedule,
    private readonly tenants: ZipfDrift,
    readonly producer: Producer,
    private readonly telemetry: MessagingTelemetry,
    private readonly ownsTelemetry: boolean,
  ) {
    this.clock = o.clock ?? systemClock;
    this.log = o.log ?? createLogger('messaging-workload');
    this.cost = o.cost ?? DEFAULT_COST;
    this.group = o.group ?? 'workload';
    this.maxInFlight = o.maxInFlight ?? 1024;
  }

  /** Starts the consumer group, then the paced publishing. */
  static async start(o: MessagingWorkloadOptions): Promise<MessagingWorkload> {
    const minBytes = requireInteger('minMessageBytes', o.minMessageBytes ?? 16, 16);
    // Unset, the upper bound is 1024 or the lower bound if that is larger (a lower bound of
    // 2000 alone was refused as a default maxMessageBytes of 1024 the caller never set).
    const maxBytes = requireInteger(
      'maxMessageBytes',
      o.maxMessageBytes ?? Math.max(1024, minBytes),
      minBytes,
    );
    requireInteger('maxInFlight', o.maxInFlight ?? 1024, 1);
    if (o.maxLagMs !== undefined && !(o.maxLagMs >= 0))
      throw new WorkloadConfigError('maxLagMs', `must be >= 0, got ${o.maxLagMs}`);
    requireInteger('tenants', o.tenants ?? 16, 1);
    if (o.maxMessages !== undefined) requireInteger('maxMessages', o.maxMessages, 0);
    const cost = o.cost ?? DEFAULT_COST;
    if (!(cost.perBatchMs >= 0 && cost.perMessageMs >= 0))
      throw new WorkloadConfigError('cost', 'perBatchMs and perMessageMs must be >= 0');
    const schedule = buildSchedule(o.source, o.seed, { minBytes, maxBytes });
    const tenants = new ZipfDrift(
      { items: o.tenants ?? 16, exponent: o.tenantSkew ?? 1 },
      createRng(o.seed + 1),
    );
    const ownsTelemetry = o.telemetry === undefined;
    const telemetry =
      o.telemetry ??
      new MessagingTelemetry({
        redis: o.redis,
        keys: o.keys.keys,
        instance: `workload-${o.topic}-${randomBytes(4).toString('hex')}`,
        ...(o.traceSampleRate !== undefined ? { traceSampleRate: o.traceSampleRate } : {}),
      }).start();
    const common = {
      redis: o.redis,
      keys: o.keys,
      knobs: o.knobs,
      telemetry,
      ...(o.topics ? { topics: o.topics } : {}),
      ...(o.clock ? { clock: o.clock } : {}),
      ...(o.log ? { log: o.log } : {}),
    };
    // The driver bounds what is outstanding; the producer's own bound is only a backstop.
    const producer = new Producer({ ...common, maxBuffered: 2 * (o.maxInFlight ?? 1024) });
    const w = new MessagingWorkload(
      { ...o, maxMessageBytes: maxBytes },
      schedule,
      tenants,
      producer,
      telemetry,
      ownsTelemetry,
    );
    try {
      w.consumerRef = await Consumer.start({
        ...common,
        topic: o.topic,
        group: w.group,
        handler: w.handle,
      });
    } catch (err) {
      await producer.close();
      if (ownsTelemetry) await telemetry.stop();
      throw err;
    }
    w.consumerRef.on('batch', (e) => w.onBatch(e));
    w.driving = w.drive().catch((err: Error) => {
      w.log.error({ err: err.message }, 'messaging workload driver stopped');
    });
    return w;
  }

  get consumer(): Consumer {
    return this.consumerRef as Consumer;
  }

  get stats(): MessagingWorkloadStats {
    const s = this.stats0;
    const lat = this.latencies.subarray(0, Math.min(this.latencyCount, LATENCY_WINDOW));
    return {
      published: s.published,
      publishFailed: s.publishFailed,
      consumed: s.consumed,
      duplicates: s.duplicates,
      stale: s.stale,
      deadLettered: s.deadLettered,
      handlerErrors: s.handlerErrors,
      batches: s.batches,
      meanBatchSize: s.batches > 0 ? s.batchMessages / s.batches : 0,
      skipped: s.skipped,
      lagMs: s.lagMs,
      e2eP50Ms: percentile(lat, 50),
      e2eP99Ms: percentile(lat, 99),
      publishedByTenant: Object.fromEntries(this.byTenant),
    };
  }

  /** Resolves once the schedule (or maxMessages) is published and acknowledged. */
  async finished(): Promise<MessagingWorkloadStats> {
    await this.driving;
    return this.stats;
  }

  /**
   * Publishes the schedule's messages at their (scaled) times, at most maxInFlight pending;
   * more than maxLagMs behind, it skips the overdue ones (Timeline).
   */
  private async drive(): Promise<void> {
    const { tMs, bytes } = this.schedule;
    const n = tMs.length;
    const max = this.o.maxMessages ?? (this.o.loop ? Number.MAX_SAFE_INTEGER : n);
    const padding = 'x'.repeat(this.o.maxMessageBytes as number);
    // Paced on the monotonic clock, as Paced is: a wall-clock step (NTP, a VM resumed) would
    // stall the schedule or skip its backlog. The wall clock dates messages only.
    const timeline = new Timeline(
      schedulePlan(this.schedule, this.o.loop ?? false),
      performance.now(),
      this.o.maxLagMs,
    );
    let burst = 0;
    for (let sent = 0; sent < max && !this.stopped; sent++) {
      const op = timeline.next();
      if (timeline.skipped > this.stats0.skipped) {
        this.telemetry.metrics.inc('workload_skipped', timeline.skipped - this.stats0.skipped);
        this.stats0.skipped = timeline.skipped;
      }
      if (!op) break;
      const waitMs = op.dueMs - performance.now();
      // Sub-millisecond waits are not worth a timer: those messages go out together.
      if (waitMs >= 1) {
        await this.sleeper.sleep(waitMs);
        burst = 0;
      } else if (++burst >= MAX_BURST) {
        await new Promise((r) => setImmediate(r));
        burst = 0;
      }
      while (this.inFlight >= this.maxInFlight && !this.stopped)
        await new Promise<void>((r) => (this.slotFree = r));
      if (this.stopped) break;
      timeline.started(op.dueMs, performance.now());
      this.stats0.lagMs = timeline.lagMs;
      const i = op.index;
      const j = i % n;
      const tenant = `t${this.tenants.sample()}`;
      const head = `${tenant} ${i} `;
      const size = bytes[j] as number;
      this.publish(tenant, size > head.length ? head + padding.slice(0, size - head.length) : head);
    }
    while (this.inFlight > 0) await new Promise<void>((r) => (this.slotFree = r));
  }

  private publish(tenant: string, data: string): void {
    this.inFlight++;
    const m = this.telemetry.metrics;
    m.gauge('workload_in_flight', this.inFlight);
    m.gauge('workload_lag_ms', this.stats0.lagMs);
    this.producer
      .publish(this.o.topic, data)
      .then(
        (r) => {
          if (r.duplicate) return;
          this.stats0.published++;
          this.byTenant.set(tenant, (this.byTenant.get(tenant) ?? 0) + 1);
        },
        (err: Error) => {
          this.stats0.publishFailed++;
          const now = this.clock.now();
          if (now - this.lastFailureLogAt >= 5_000) {
            this.lastFailureLogAt = now;
            this.log.warn(
              { err: err.message, failed: this.stats0.publishFailed },
              'publish failed',
            );
          }
        },
      )
      .finally(() => {
        this.inFlight--;
        const free = this.slotFree;
        this.slotFree = undefined;
        free?.();
      });
  }

  private lane(partition: number): Lane {
    let lane = this.lanes.get(partition);
    if (!lane) this.lanes.set(partition, (lane = { open: false, debtMs: 0, publishedAt: [] }));
    return lane;
  }

  /**
   * The exactly-once handler: one counter per tenant (its write travels with the commit), then
   * the simulated cost. Costs below a millisecond accrue as debt and are paid in whole-ms
   * sleeps, so their average is right without a timer per message.
   */
  private readonly handle: Handler = (m, out) => {
    const sp = m.data.indexOf(' ');
    out.hincr(tenantsOutput(this.group), sp > 0 ? m.data.slice(0, sp) : 'unknown');
    const lane = this.lane(m.partition);
    // Bounded: a worker hands at most a batch (or a claim round) before its 'batch' event.
    lane.publishedAt.push(m.publishedAt);
    if (!lane.open) {
      lane.open = true;
      lane.debtMs += this.cost.perBatchMs;
    }
    lane.debtMs += this.cost.perMessageMs;
    if (lane.debtMs < 1) return;
    const payMs = Math.floor(lane.debtMs);
    lane.debtMs -= payMs;
    return sleep(payMs);
  };

  private onBatch(e: BatchEvent): void {
    const s = this.stats0;
    s.consumed += e.applied;
    s.duplicates += e.duplicates;
    s.stale += e.stale;
    s.deadLettered += e.deadLettered;
    s.handlerErrors += e.failed;
    if (e.size > 0) {
      s.batches++;
      s.batchMessages += e.size;
    }
    const lane = this.lane(e.partition);
    lane.open = false;
    // Latency only of batches applied whole: then each handled message is one committed now.
    if (e.applied === lane.publishedAt.length) {
      const now = this.clock.now();
      for (const t of lane.publishedAt)
        this.latencies[this.latencyCount++ % LATENCY_WINDOW] = now - t;
    }
    lane.publishedAt.length = 0;
  }

  /**
   * Stops publishing, waits for pending publishes, stops the consumer; the final stats. Each
   * step runs even when an earlier one fails; then the first failure is thrown.
   */
  stop(): Promise<MessagingWorkloadStats> {
    this.stopping ??= (async () => {
      this.stopped = true;
      this.sleeper.wake();
      // Every step runs even if one fails; the first failure is rethrown after the last.
      const failures: unknown[] = [];
      const step = (run: () => Promise<unknown>) =>
        run().catch((err: unknown) => failures.push(err));
      await step(() => this.driving);
      await step(() => this.producer.close());
      await step(() => this.consumer.stop());
      if (this.ownsTelemetry) await step(() => this.telemetry.stop());
      if (failures.length > 0) throw failures[0];
      return this.stats;
    })();
    return this.stopping;
  }
}
