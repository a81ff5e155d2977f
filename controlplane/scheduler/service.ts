// The scheduler service of one shard: a stateless process over the shard's tables. It runs the
// dispatcher (policy from the knobs), the reaper (expired leases, backoffs, dead workers,
// retention) and the speculator, writes per-second telemetry and sampled traces, and offers
// submit and the decision-support queries. Any number of instances may run on one shard; any
// may die at any moment and the others carry on from the tables.
import { hostname } from 'node:os';
import type { KnobClient } from '../knobs/client.ts';
import { createLogger, type Logger } from '../log.ts';
import type { RedisClient } from '../redis/connect.ts';
import { Keys } from '../store/keys.ts';
import { Telemetry } from '../telemetry/metrics.ts';
import { TraceWriter } from '../telemetry/traces.ts';
import { ShadowDecisions } from './shadow.ts';
import { RegistryPolicies } from './registry-policies.ts';
import { PolicyTable } from '../registry/table.ts';
import { SchedulerClient } from './client.ts';
import { systemClock, type Clock } from './clock.ts';
import { Dispatcher } from './dispatcher.ts';
import { SchedulerQueries } from './queries.ts';
import { Reaper, type Retention } from './reaper.ts';
import { SchedShard } from './shard.ts';
import { Speculator } from './speculation.ts';
import { SCHEDULER_SERVICE, SCHEDULER_TRACE_KINDS, type TraceKind } from './traces.ts';

/** The knobs the scheduler follows. */
export const SCHEDULER_KNOBS = [
  'scheduler.policy',
  'scheduler.dispatch_batch',
  'scheduler.lease_ms',
  'scheduler.retry_backoff_ms',
  'scheduler.retry_limit',
  'scheduler.straggler_threshold',
  'scheduler.speculative_execution',
  'scheduler.shadow_policy',
  'scheduler.policy_version',
] as const;

export interface SchedulerServiceOptions {
  redis: RedisClient;
  /** A knob client following SCHEDULER_KNOBS (or all knobs). */
  knobs: KnobClient;
  keys?: Keys;
  shard?: string;
  clock?: Clock;
  instance?: string;
  log?: Logger;
  windowMax?: number;
  windowPerSlot?: number;
  windowMin?: number;
  workersMax?: number;
  idleWaitMs?: number;
  reapIntervalMs?: number;
  reapBatchMax?: number;
  speculateIntervalMs?: number;
  /** Completions a stage needs before its median flags stragglers. */
  stragglerMinSamples?: number;
  pruneIntervalMs?: number;
  retention?: Partial<Retention>;
  /** Finished job rows are kept this long. */
  jobTtlMs?: number;
  telemetryIntervalMs?: number;
  /** Sampling rate of each trace kind (0..1). */
  traceSampleRate?: Partial<Record<TraceKind, number>>;
  /** Set false to run only submit and queries (no dispatcher, reaper or speculator). */
  background?: boolean;
}

export const DEFAULT_RETENTION: Retention = {
  doneMs: 24 * 3_600_000,
  doneMax: 1_000_000,
  deadMs: 7 * 24 * 3_600_000,
  deadMax: 100_000,
};

export const DEFAULT_TRACE_SAMPLE_RATE: Record<TraceKind, number> = {
  arrivals: 0.1,
  durations: 0.1,
  decisions: 0.1,
  jobs: 0.1,
  // Shadow rounds happen only while a shadow runs; all of them make the shadow's report.
  shadow: 1,
};

export function traceWriters(
  redis: RedisClient,
  keys: Keys,
  rates: Partial<Record<TraceKind, number>> = {},
): Record<TraceKind, TraceWriter> {
  const entries = SCHEDULER_TRACE_KINDS.map(
    (kind) =>
      [
        kind,
        new TraceWriter({
          redis,
          keys,
          service: SCHEDULER_SERVICE,
          kind,
          sampleRate: rates[kind] ?? DEFAULT_TRACE_SAMPLE_RATE[kind],
        }),
      ] as const,
  );
  return Object.fromEntries(entries) as Record<TraceKind, TraceWriter>;
}

export class SchedulerService {
  readonly shard: SchedShard;
  readonly client: SchedulerClient;
  readonly queries: SchedulerQueries;
  readonly telemetry: Telemetry;
  readonly traces: Record<TraceKind, TraceWriter>;
  readonly dispatcher: Dispatcher;
  readonly reaper: Reaper;
  readonly speculator: Speculator;
  private readonly background: boolean;
  /** The dispatcher's own connection: a long submit on the shared one must not delay it. */
  private readonly dispatchConn: RedisClient;

  private constructor(o: SchedulerServiceOptions) {
    const keys = o.keys ?? new Keys();
    const clock = o.clock ?? systemClock;
    const log = o.log ?? createLogger('scheduler');
    const instance = o.instance ?? `${hostname()}-${process.pid}`;
    this.shard = new SchedShard(o.redis, keys, o.shard ?? '0');
    this.telemetry = new Telemetry({
      redis: o.redis,
      keys,
      service: SCHEDULER_SERVICE,
      instance,
      ...(o.telemetryIntervalMs ? { intervalMs: o.telemetryIntervalMs } : {}),
    });
    this.traces = traceWriters(o.redis, keys, o.traceSampleRate);
    this.queries = new SchedulerQueries(this.shard);
    this.client = new SchedulerClient({
      shard: this.shard,
      clock,
      telemetry: this.telemetry,
      arrivals: this.traces.arrivals,
      jobs: this.traces.jobs,
    });
    this.dispatchConn = o.redis.duplicate();
    this.dispatchConn.on('error', () => {}); // reconnects on its own; rounds retry
    this.dispatcher = new Dispatcher({
      shard: new SchedShard(this.dispatchConn, keys, o.shard ?? '0'),
      knobs: o.knobs,
      clock,
      telemetry: this.telemetry,
      decisions: this.traces.decisions,
      registry: new RegistryPolicies(new PolicyTable(o.redis, keys, clock), log),
      shadow: new ShadowDecisions({
        knobs: o.knobs,
        trace: this.traces.shadow,
        telemetry: this.telemetry,
      }),
      log,
      windowMax: o.windowMax ?? 128,
      workersMax: o.workersMax ?? 256,
      windowPerSlot: o.windowPerSlot ?? 2,
      windowMin: o.windowMin ?? 32,
      idleWaitMs: o.idleWaitMs ?? 250,
    });
    this.reaper = new Reaper({
      shard: this.shard,
      knobs: o.knobs,
      clock,
      telemetry: this.telemetry,
      jobs: this.traces.jobs,
      log,
      intervalMs: o.reapIntervalMs ?? 100,
      batchMax: o.reapBatchMax ?? 500,
      jobTtlMs: o.jobTtlMs ?? DEFAULT_RETENTION.doneMs,
      retention: { ...DEFAULT_RETENTION, ...o.retention },
      pruneIntervalMs: o.pruneIntervalMs ?? 5_000,
    });
    this.speculator = new Speculator({
      shard: this.shard,
      queries: this.queries,
      knobs: o.knobs,
      policy: () => this.dispatcher.currentPolicy(),
      clock,
      telemetry: this.telemetry,
      decisions: this.traces.decisions,
      log,
      intervalMs: o.speculateIntervalMs ?? 1_000,
      perPassMax: 32,
      minSamples: o.stragglerMinSamples ?? 5,
    });
    this.background = o.background ?? true;
  }

  static start(o: SchedulerServiceOptions): SchedulerService {
    for (const name of SCHEDULER_KNOBS) o.knobs.get(name); // fails now if a knob is not followed
    const s = new SchedulerService(o);
    s.telemetry.start();
    if (s.background) {
      s.dispatcher.start();
      s.reaper.start();
      s.speculator.start();
    }
    return s;
  }

  async stop(): Promise<void> {
    await Promise.all([this.dispatcher.stop(), this.reaper.stop(), this.speculator.stop()]);
    await Promise.all(Object.values(this.traces).map((t) => t.flush().catch(() => 0)));
    await this.telemetry.stop();
    this.dispatchConn.disconnect();
  }
}
