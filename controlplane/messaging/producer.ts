// The producer: publishes are buffered per partition and sent as one publish.lua call per
// batch, sealed when it holds `messaging.batch_size` messages or its oldest message has
// waited `messaging.linger_ms` (both knobs read live, on every decision). One batch per
// partition is in flight at a time; what arrives meanwhile forms the next batch, so under
// load batches fill by themselves. A publish resolves once Redis has acknowledged its batch
// (with appendfsync always: once it is on disk). A batch whose reply was lost is retried
// with the same producer sequence number, which publish.lua recognises, so a retry never
// appends twice and reports each message as the attempt that stored it did (a first publish
// stays duplicate: false); an idempotency key makes a publish retried by the caller not
// duplicate.
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { hashShard } from '../../policies/placement/hash.ts';
import { systemClock, type Clock } from '../knobs/clock.ts';
import type { KnobChangeEvent, KnobClient } from '../knobs/client.ts';
import { createLogger, type Logger } from '../log.ts';
import type { RedisClient } from '../redis/connect.ts';
import {
  BackpressureError,
  checkInt,
  errorText,
  MessagingOptionError,
  ProducerClosedError,
  PublishFailedError,
} from './errors.ts';
import { Fifo } from './fifo.ts';
import { checkName, type MessagingKeys } from './keys.ts';
import { messagingScripts } from './scripts.ts';
import { MessagingTelemetry } from './telemetry.ts';
import { TopicCache } from './topic-cache.ts';
import { Topics, type TopicInfo } from './topics.ts';
import { checkPublishReply, publishArgv, type Outgoing, type Published } from './wire.ts';

export interface ProducerOptions {
  redis: RedisClient;
  keys: MessagingKeys;
  knobs: KnobClient;
  topics?: Topics;
  clock?: Clock;
  /**
   * Producer id (telemetry names it); random when omitted. Its batches' sequence key is the id
   * plus a part of this instance's own, so a producer restarted with the same id, or two
   * running with one, start sequences of their own instead of resending each other's.
   */
  id?: string;
  /** Bound on messages buffered or in flight over all partitions; beyond it publish fails. */
  maxBuffered?: number;
  /** Attempts per batch before its publishes fail (retries back off exponentially). */
  maxAttempts?: number;
  retryBaseMs?: number;
  /** Shared telemetry; when omitted the producer runs its own. */
  telemetry?: MessagingTelemetry;
  log?: Logger;
  topicRefreshMs?: number;
}

export interface PublishOptions {
  /** Idempotency key: a second publish with it (within the dedup retention) is not stored. */
  key?: string;
  /** Messages with the same partition key go to the same partition (default: the key). */
  partitionKey?: string;
  /** An explicit partition. */
  partition?: number;
}

export interface PublishResult extends Published {
  topic: string;
  partition: number;
}

interface Waiting extends Outgoing {
  resolve: (r: PublishResult) => void;
  reject: (e: Error) => void;
}

interface Lane {
  topic: string;
  partition: number;
  queue: Fifo<Waiting>;
  timer: NodeJS.Timeout | undefined;
  sending: boolean;
  seq: number;
}

export interface FlushEvent {
  topic: string;
  partition: number;
  size: number;
  duplicates: number;
}

const MAX_KEY_CHARS = 256;
const NO_OPTIONS: PublishOptions = {};
/** Bound on one wait between a batch's attempts (the backoff doubles per attempt). */
export const PUBLISH_BACKOFF_MAX_MS = 2_000;

export class Producer extends EventEmitter<{ flush: [FlushEvent] }> {
  readonly id: string;
  private readonly seqKey: string;
  /** Per topic, the lanes by partition. */
  private readonly lanes = new Map<string, Lane[]>();
  private readonly cache: TopicCache;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly telemetry: MessagingTelemetry;
  private readonly ownsTelemetry: boolean;
  private readonly maxBuffered: number;
  private readonly maxAttempts: number;
  private readonly retryBaseMs: number;
  private outstanding = 0;
  private roundRobin = 0;
  private draining = 0;
  private closed = false;
  private closing: Promise<void> | undefined;
  private idleWaiters: (() => void)[] = [];
  private readonly onKnob = (e: KnobChangeEvent) => {
    if (e.name === 'messaging.batch_size' || e.name === 'messaging.linger_ms') {
      for (const lane of this.allLanes()) this.rearm(lane);
    }
  };

  constructor(private readonly opts: ProducerOptions) {
    super();
    this.id = opts.id ?? randomBytes(8).toString('hex');
    this.seqKey = `${this.id}:${randomBytes(6).toString('hex')}`;
    this.clock = opts.clock ?? systemClock;
    this.log = opts.log ?? createLogger('messaging-producer');
    // Checked before anything (cache timer, telemetry, knob listener) is made.
    this.maxBuffered = checkInt(
      'maxBuffered',
      opts.maxBuffered ?? 100_000,
      1,
      Number.MAX_SAFE_INTEGER,
    );
    // Each wait is at most PUBLISH_BACKOFF_MAX_MS: 100 attempts bound a batch to ~200 s.
    this.maxAttempts = checkInt('maxAttempts', opts.maxAttempts ?? 6, 1, 100);
    this.retryBaseMs = checkInt('retryBaseMs', opts.retryBaseMs ?? 50, 1, PUBLISH_BACKOFF_MAX_MS);
    const topicRefreshMs = opts.topicRefreshMs ?? 5_000;
    if (topicRefreshMs !== 0) checkInt('topicRefreshMs', topicRefreshMs, 10, 86_400_000);
    const topics = opts.topics ?? new Topics(opts.redis, opts.keys, { knobs: opts.knobs });
    this.cache = new TopicCache(topics, opts.knobs, this.log, topicRefreshMs);
    this.ownsTelemetry = opts.telemetry === undefined;
    this.telemetry =
      opts.telemetry ??
      new MessagingTelemetry({
        redis: opts.redis,
        keys: opts.keys.keys,
        instance: `producer-${this.id}`,
      }).start();
    opts.knobs.on('change', this.onKnob);
  }

  private batchSize(): number {
    return this.opts.knobs.get<number>('messaging.batch_size');
  }
  private lingerMs(): number {
    return this.opts.knobs.get<number>('messaging.linger_ms');
  }

  /** Resolves once Redis has acknowledged the message's batch; rejects with a typed error. */
  publish(topic: string, data: string, opts: PublishOptions = NO_OPTIONS): Promise<PublishResult> {
    if (this.closed) return Promise.reject(new ProducerClosedError());
    if (typeof data !== 'string')
      return Promise.reject(new MessagingOptionError('data', 'must be a string'));
    const key = opts.key;
    // Type checks too: a number or an object would be stored and routed as its String()
    // ('[object Object]'), so unrelated messages would collide as duplicates.
    if (
      key !== undefined &&
      (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_CHARS)
    )
      return Promise.reject(
        new MessagingOptionError('key', `must be a string of 1-${MAX_KEY_CHARS} characters`),
      );
    if (opts.partitionKey !== undefined && typeof opts.partitionKey !== 'string')
      return Promise.reject(new MessagingOptionError('partitionKey', 'must be a string'));
    if (this.outstanding >= this.maxBuffered)
      return Promise.reject(new BackpressureError(this.outstanding));
    const info = this.cache.peek(topic);
    // First publish to a topic: load its row, then publish (the hot path stays synchronous).
    if (!info) return this.publishAfterLoad(topic, data, opts);
    return this.enqueue(info, topic, data, opts);
  }

  /**
   * A publish to a topic not cached yet. It holds its place in maxBuffered while the row
   * loads (a burst to a new topic must not bypass the bound), and hands it to its lane
   * synchronously, so flush() never sees it at zero in between.
   */
  private async publishAfterLoad(
    topic: string,
    data: string,
    opts: PublishOptions,
  ): Promise<PublishResult> {
    // Checked here, off the hot path: a cached topic's name is valid.
    checkName('topic', topic);
    this.outstanding++;
    let info: TopicInfo;
    try {
      info = await this.cache.get(topic);
    } catch (err) {
      this.release(1);
      throw err;
    }
    // Accepted before any close(), so sent even if close() came meanwhile (it waits for it).
    const sent = this.enqueue(info, topic, data, opts);
    this.release(1);
    return sent;
  }

  private release(n: number): void {
    this.outstanding -= n;
    if (this.outstanding === 0) this.idleWaiters.splice(0).forEach((f) => f());
  }

  private enqueue(
    info: TopicInfo,
    topic: string,
    data: string,
    opts: PublishOptions,
  ): Promise<PublishResult> {
    const key = opts.key;
    let lane: Lane;
    try {
      lane = this.lane(topic, this.route(info, opts));
    } catch (err) {
      return Promise.reject(err as Error);
    }
    this.outstanding++;
    return new Promise<PublishResult>((resolve, reject) => {
      lane.queue.push({ key, enqueuedAt: this.clock.now(), data, resolve, reject });
      this.pump(lane);
    });
  }

  private route(info: TopicInfo, opts: PublishOptions): number {
    if (opts.partition !== undefined) {
      if (
        !Number.isInteger(opts.partition) ||
        opts.partition < 0 ||
        opts.partition >= info.partitions
      )
        throw new MessagingOptionError('partition', `must be in [0, ${info.partitions - 1}]`);
      return opts.partition;
    }
    const routeKey = opts.partitionKey ?? opts.key;
    if (routeKey !== undefined) return hashShard(routeKey, info.partitions);
    this.roundRobin = (this.roundRobin + 1) % info.partitions;
    return this.roundRobin;
  }

  private lane(topic: string, partition: number): Lane {
    let lanes = this.lanes.get(topic);
    if (!lanes) this.lanes.set(topic, (lanes = []));
    let lane = lanes[partition];
    if (!lane) {
      lane = { topic, partition, queue: new Fifo(), timer: undefined, sending: false, seq: 0 };
      lanes[partition] = lane;
    }
    return lane;
  }

  private *allLanes(): Generator<Lane> {
    for (const lanes of this.lanes.values()) for (const l of lanes) if (l) yield l;
  }

  /** Sends a batch when one is due; otherwise makes sure a linger timer is armed. */
  private pump(lane: Lane): void {
    if (lane.sending || lane.queue.size === 0) return;
    const size = this.batchSize();
    const oldest = lane.queue.peek() as Waiting;
    const waitedMs = this.clock.now() - oldest.enqueuedAt;
    const linger = this.lingerMs();
    if (lane.queue.size >= size || waitedMs >= linger || this.draining > 0) {
      if (lane.timer) clearTimeout(lane.timer);
      lane.timer = undefined;
      void this.send(lane, lane.queue.take(size));
    } else if (!lane.timer) {
      lane.timer = setTimeout(
        () => {
          lane.timer = undefined;
          this.pump(lane);
        },
        Math.max(0, linger - waitedMs),
      );
    }
  }

  /** A knob changed: a timer armed with the old linger must not hold the batch back. */
  private rearm(lane: Lane): void {
    if (lane.timer) clearTimeout(lane.timer);
    lane.timer = undefined;
    this.pump(lane);
  }

  private async send(lane: Lane, batch: Waiting[]): Promise<void> {
    lane.sending = true;
    lane.seq++;
    try {
      const reply = await this.write(lane, batch);
      let duplicates = 0;
      for (let i = 0; i < batch.length; i++) {
        const w = batch[i] as Waiting;
        const duplicate = Number(reply[3 + i * 2]) === 1;
        if (duplicate) duplicates++;
        else if (this.telemetry.sampleArrival())
          this.telemetry.arrivals.record({
            topic: lane.topic,
            partition: lane.partition,
            t_ms: w.enqueuedAt,
            bytes: Buffer.byteLength(w.data),
          });
        w.resolve({
          id: String(reply[2 + i * 2]),
          duplicate,
          topic: lane.topic,
          partition: lane.partition,
        });
      }
      const m = this.telemetry.metrics;
      m.inc('produced', batch.length - duplicates);
      if (duplicates > 0) m.inc('publish_duplicates', duplicates);
      m.observe('publish_batch_size', batch.length);
      this.emit('flush', {
        topic: lane.topic,
        partition: lane.partition,
        size: batch.length,
        duplicates,
      });
    } catch (err) {
      this.telemetry.metrics.inc('publish_failed', batch.length);
      for (const w of batch) w.reject(err as Error);
    } finally {
      lane.sending = false;
      this.pump(lane);
      this.release(batch.length);
    }
  }

  /** One publish.lua call for the batch, retried with the same sequence number; its reply. */
  private async write(lane: Lane, batch: readonly Waiting[]): Promise<unknown[]> {
    const info = await this.cache.get(lane.topic);
    const k = this.opts.keys;
    const keys = [
      k.stream(lane.topic, lane.partition),
      k.publishIds(lane.topic, lane.partition),
      k.publishAt(lane.topic, lane.partition),
    ];
    for (let attempt = 1; ; attempt++) {
      const now = this.clock.now();
      const argv = publishArgv(
        {
          now,
          maxLen: info.maxLen,
          minIdMs: info.maxAgeMs > 0 ? now - info.maxAgeMs : undefined,
          dedupCutoffMs: now - info.dedupMs,
          dedupMax: info.dedupMax,
          seqKey: this.seqKey,
          seq: lane.seq,
        },
        batch,
      );
      try {
        const reply = await messagingScripts.run(this.opts.redis, 'publish', keys, argv);
        checkPublishReply(reply, batch.length);
        return reply;
      } catch (err) {
        if (attempt >= this.maxAttempts)
          throw new PublishFailedError(lane.topic, lane.partition, attempt, err as Error);
        this.log.warn({ err: errorText(err), attempt, topic: lane.topic }, 'publish retry');
        const waitMs = Math.min(PUBLISH_BACKOFF_MAX_MS, this.retryBaseMs * 2 ** (attempt - 1));
        await new Promise((r) => setTimeout(r, waitMs));
      }
    }
  }

  /** Sends everything buffered now (ignoring linger) and waits until it is acknowledged. */
  async flush(): Promise<void> {
    this.draining++;
    try {
      for (const lane of this.allLanes()) this.rearm(lane);
      if (this.outstanding > 0) await new Promise<void>((r) => this.idleWaiters.push(r));
    } finally {
      this.draining--;
    }
  }

  /** Every call waits for the same flush and teardown (a second one used to return at once). */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      await this.flush();
      this.opts.knobs.off('change', this.onKnob);
      this.cache.close();
      if (this.ownsTelemetry) await this.telemetry.stop();
    })();
    return this.closing;
  }
}
