// A consumer of one topic in one consumer group: a partition worker (blocking reads, handler,
// exactly-once commit, recovery) per partition it serves, all of them by default, and new
// ones started when the topic grows. Any number of consumers may share a group; Redis hands
// each message to one of them, and the commit step keeps the effects exactly-once whoever
// ends up processing it.
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { systemClock, type Clock } from '../knobs/clock.ts';
import type { KnobClient } from '../knobs/client.ts';
import { createLogger, type Logger } from '../log.ts';
import type { RedisClient } from '../redis/connect.ts';
import { checkInt, errorText, MessagingOptionError } from './errors.ts';
import { checkName, type MessagingKeys } from './keys.ts';
import {
  PartitionWorker,
  type BatchEvent,
  type Handler,
  type WorkerContext,
} from './partition-worker.ts';
import { MessagingTelemetry } from './telemetry.ts';
import { TopicCache } from './topic-cache.ts';
import { Topics, type TopicInfo } from './topics.ts';

export interface ConsumerOptions {
  redis: RedisClient;
  keys: MessagingKeys;
  knobs: KnobClient;
  topic: string;
  group: string;
  handler: Handler;
  /** Consumer name within the group; random when omitted (a restarted process is new). */
  name?: string;
  /** Partitions to serve; all (including ones added later) when omitted. */
  partitions?: readonly number[];
  /** A message pending longer than this is taken over by another consumer. */
  visibilityMs?: number;
  /** Deliveries before a message goes to the dead-letter stream. */
  maxDeliveries?: number;
  /** Upper bound of one blocking read (it returns as soon as a message arrives). */
  blockMs?: number;
  /** How often idle messages are looked for; visibilityMs / 2 by default. */
  claimIntervalMs?: number;
  maxClaimRounds?: number;
  deadMaxLen?: number;
  commitAttempts?: number;
  topics?: Topics;
  clock?: Clock;
  telemetry?: MessagingTelemetry;
  log?: Logger;
  topicRefreshMs?: number;
}

type Settings = Pick<
  WorkerContext,
  | 'visibilityMs'
  | 'maxDeliveries'
  | 'blockMs'
  | 'claimIntervalMs'
  | 'maxClaimRounds'
  | 'deadMaxLen'
  | 'commitAttempts'
> & { topicRefreshMs: number };

/**
 * Every numeric option, checked before anything (listener, timer, connection) is created.
 * All are integers: Redis refuses a fractional BLOCK, XAUTOCLAIM min-idle or MAXLEN, which
 * would fail every read or dead-letter step instead of the start.
 */
function checkSettings(opts: ConsumerOptions): Settings {
  const visibilityMs = checkInt('visibilityMs', opts.visibilityMs ?? 30_000, 10, 86_400_000);
  const topicRefreshMs = opts.topicRefreshMs ?? 5_000;
  if (topicRefreshMs !== 0) checkInt('topicRefreshMs', topicRefreshMs, 10, 86_400_000);
  return {
    visibilityMs,
    maxDeliveries: checkInt('maxDeliveries', opts.maxDeliveries ?? 5, 1, 1000),
    blockMs: checkInt('blockMs', opts.blockMs ?? 1_000, 1, 60_000),
    claimIntervalMs: checkInt(
      'claimIntervalMs',
      opts.claimIntervalMs ?? Math.max(5, Math.floor(visibilityMs / 2)),
      1,
      86_400_000,
    ),
    maxClaimRounds: checkInt('maxClaimRounds', opts.maxClaimRounds ?? 10, 1, 1000),
    deadMaxLen: checkInt('deadMaxLen', opts.deadMaxLen ?? 100_000, 1, 2 ** 40),
    // Each attempt waits at most COMMIT_BACKOFF_MAX_MS: 20 bound a batch's retries to ~40 s.
    commitAttempts: checkInt('commitAttempts', opts.commitAttempts ?? 5, 1, 20),
    topicRefreshMs,
  };
}

/** `partitions`, when given: a non-empty array of distinct integers >= 0. */
function checkPartitions(partitions: unknown): void {
  if (partitions === undefined) return;
  if (!Array.isArray(partitions) || partitions.length === 0)
    throw new MessagingOptionError('partitions', 'must be a non-empty array (omit it for all)');
  for (const p of partitions as unknown[]) {
    if (typeof p !== 'number' || !Number.isInteger(p) || p < 0)
      throw new MessagingOptionError('partitions', `${String(p)} is not an integer >= 0`);
  }
}

export class Consumer extends EventEmitter<{ batch: [BatchEvent] }> {
  private readonly workers = new Map<number, PartitionWorker>();
  private readonly ctx: WorkerContext;
  private readonly cache: TopicCache;
  private readonly ownsTelemetry: boolean;
  private stopped = false;
  private growing: Promise<void> = Promise.resolve();

  private constructor(
    private readonly opts: ConsumerOptions,
    settings: Settings,
    private topicRow: TopicInfo,
    cache: TopicCache,
    telemetry: MessagingTelemetry,
    log: Logger,
  ) {
    super();
    this.cache = cache;
    this.ownsTelemetry = opts.telemetry === undefined;
    this.ctx = {
      redis: opts.redis,
      keys: opts.keys,
      knobs: opts.knobs,
      topic: opts.topic,
      group: opts.group,
      consumer: opts.name ?? `c-${randomBytes(6).toString('hex')}`,
      handler: opts.handler,
      ...settings,
      clock: opts.clock ?? systemClock,
      log,
      telemetry,
      topicInfo: () => this.topicRow,
      onBatch: (e) => this.emit('batch', e),
    };
  }

  get name(): string {
    return this.ctx.consumer;
  }

  /**
   * Starts a worker per partition. If any part fails (e.g. a stream key of the wrong type),
   * everything started so far is stopped before the error is rethrown: the caller has no
   * handle to stop it with.
   */
  static async start(opts: ConsumerOptions): Promise<Consumer> {
    checkName('topic', opts.topic);
    checkName('group', opts.group);
    if (opts.name !== undefined) checkName('name', opts.name);
    // A caller without the types (JavaScript, a config) would otherwise start, and every
    // message would fail in the handler call and end dead-lettered.
    if (typeof opts.handler !== 'function')
      throw new MessagingOptionError('handler', 'must be a function (message, output)');
    const settings = checkSettings(opts);
    checkPartitions(opts.partitions);
    const log = opts.log ?? createLogger('messaging-consumer');
    const topics = opts.topics ?? new Topics(opts.redis, opts.keys, { knobs: opts.knobs });
    const cache = new TopicCache(topics, opts.knobs, log, settings.topicRefreshMs);
    let row: TopicInfo;
    try {
      row = await cache.get(opts.topic);
      for (const p of opts.partitions ?? []) {
        if (p >= row.partitions)
          throw new MessagingOptionError('partitions', `${p} is not in [0, ${row.partitions - 1}]`);
      }
    } catch (err) {
      cache.close();
      throw err;
    }
    const telemetry =
      opts.telemetry ??
      new MessagingTelemetry({
        redis: opts.redis,
        keys: opts.keys.keys,
        instance: `consumer-${opts.name ?? randomBytes(4).toString('hex')}`,
      }).start();
    const consumer = new Consumer(opts, settings, row, cache, telemetry, log);
    cache.on('change', (r) => consumer.onTopicChange(r));
    cache.on('refreshed', (r) => consumer.onTopicRefreshed(r));
    try {
      await consumer.startWorkers();
    } catch (err) {
      await consumer.stop().catch(() => undefined); // the start's error is the one to report
      throw err;
    }
    return consumer;
  }

  /** Partitions this consumer serves now. */
  partitions(): number[] {
    return [...this.workers.keys()].sort((a, b) => a - b);
  }

  private wanted(): number[] {
    return (
      this.opts.partitions?.slice() ?? Array.from({ length: this.topicRow.partitions }, (_, i) => i)
    );
  }

  /** Starts the wanted partitions not running; throws the first failure after trying all. */
  private async startWorkers(): Promise<void> {
    let failure: unknown;
    for (const p of this.wanted()) {
      if (this.workers.has(p) || this.stopped) continue;
      const w = new PartitionWorker(this.ctx, p);
      this.workers.set(p, w); // before the await: a concurrent call must not start it again
      try {
        await w.start();
      } catch (err) {
        // Nothing of it runs; the next topic refresh tries it again.
        this.workers.delete(p);
        failure ??= err;
      }
    }
    if (failure !== undefined) throw failure;
  }

  /** A refresh without a change: partitions that failed to start are tried again. */
  private onTopicRefreshed(row: TopicInfo): void {
    if (row.name !== this.opts.topic || this.stopped) return;
    if (this.wanted().every((p) => this.workers.has(p))) return;
    this.onTopicChange(row);
  }

  private onTopicChange(row: TopicInfo): void {
    if (row.name !== this.opts.topic) return;
    this.topicRow = row;
    this.growing = this.growing
      .then(() => this.startWorkers())
      .catch((err: unknown) =>
        this.ctx.log.warn({ err: errorText(err) }, 'starting new partitions failed'),
      );
  }

  /**
   * Stops reading; a batch being handled is finished and committed first, if that takes less
   * than timeoutMs (otherwise it is abandoned: its messages stay pending and are taken over).
   */
  async stop(timeoutMs = 10_000): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.cache.close();
    await this.growing;
    await Promise.all([...this.workers.values()].map((w) => w.stop(timeoutMs)));
    if (this.ownsTelemetry) await this.ctx.telemetry.stop();
  }
}
