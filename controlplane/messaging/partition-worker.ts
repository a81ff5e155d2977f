// One partition of a consumer: a loop of blocking reads (XREADGROUP BLOCK: Redis pushes new
// messages the moment they arrive; the block timeout only bounds how long the loop goes
// without checking for crashed consumers' messages), the handler run per message, and one
// commit.lua call per batch that applies the handlers' writes, records dedup and XACKs.
// Recovery takes over messages idle longer than the visibility timeout (claim.lua), which
// also dead-letters those past the delivery limit.
import { randomUUID } from 'node:crypto';
import type { Clock } from '../knobs/clock.ts';
import type { KnobClient } from '../knobs/client.ts';
import type { Logger } from '../log.ts';
import type { RedisClient } from '../redis/connect.ts';
import type { MessagingKeys } from './keys.ts';
import { Output } from './output.ts';
import { messagingScripts } from './scripts.ts';
import type { MessagingTelemetry } from './telemetry.ts';
import type { TopicInfo } from './topics.ts';
import { errorText, OutputTypeError } from './errors.ts';
import {
  COMMIT_OUTPUT_TYPE,
  COMMIT_RESULT,
  commitCall,
  decodeEntry,
  type CommitItem,
  type Message,
} from './wire.ts';

export type Handler = (message: Message, out: Output) => void | Promise<void>;

export interface BatchEvent {
  topic: string;
  partition: number;
  /** Messages delivered in this batch. */
  size: number;
  /** Where they came from: a fresh read or a takeover of idle messages. */
  source: 'read' | 'claim';
  applied: number;
  duplicates: number;
  stale: number;
  deadLettered: number;
  /** Handler calls that threw (those messages stay pending and are retried). */
  failed: number;
  /** Applied messages one of whose writes failed (see commit.lua). */
  writeErrors: number;
}

/** Settings shared by the partition workers of one consumer. */
export interface WorkerContext {
  redis: RedisClient;
  keys: MessagingKeys;
  knobs: KnobClient;
  topic: string;
  group: string;
  consumer: string;
  handler: Handler;
  visibilityMs: number;
  maxDeliveries: number;
  blockMs: number;
  claimIntervalMs: number;
  /** XAUTOCLAIM rounds per recovery (each at most batch_size messages). */
  maxClaimRounds: number;
  deadMaxLen: number;
  commitAttempts: number;
  clock: Clock;
  log: Logger;
  telemetry: MessagingTelemetry;
  topicInfo: () => TopicInfo;
  onBatch: (e: BatchEvent) => void;
}

type StreamReply = [string, [string, string[]][]][] | null;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Bound on one wait between commit attempts (the backoff doubles per attempt). */
export const COMMIT_BACKOFF_MAX_MS = 2_000;

/**
 * How long a commit's results are kept for a retry after a lost reply: beyond the longest
 * series of attempts (commitAttempts <= 20 waits of at most COMMIT_BACKOFF_MAX_MS).
 */
export const COMMIT_RESULTS_TTL_MS = 120_000;

/** The largest sequence part of a stream id. */
const MAX_SEQ = 18446744073709551615n;

/** Dedup scores tell sequences apart up to this one within a millisecond (commit.lua). */
const SCORE_SEQ_MAX = 999;

/**
 * The id just before the message a dedup record (commit.lua: scored ms + seq / 1000) names,
 * where a lost group restarts: every message applied from that one on still has its record.
 * Where the score may stand for several messages, some of whose records may be trimmed
 * already, the group restarts after that millisecond instead: at the last sequence a score
 * tells apart, and at a whole millisecond unless the record is that millisecond's first
 * message itself (`<ms>-0`): records written before scores carried the sequence tie there
 * (trims within a tie go by member, not by sequence), and so does a key-identified first
 * message, which cannot be told from them.
 */
function idBeforeRecord(score: number, member: string): [bigint, bigint] {
  const ms = Math.floor(score);
  const seq = Math.round((score - ms) * 1000);
  if (seq >= SCORE_SEQ_MAX || (seq === 0 && member !== `${ms}-0`)) return [BigInt(ms), MAX_SEQ];
  return seq > 0 ? [BigInt(ms), BigInt(seq - 1)] : [BigInt(ms - 1), MAX_SEQ];
}

/** A stream id as [ms, seq]. */
function parseId(id: string): [bigint, bigint] {
  const [ms = '0', seq = '0'] = id.split('-');
  return [BigInt(ms), BigInt(seq)];
}

function idBefore(a: [bigint, bigint], b: [bigint, bigint]): boolean {
  return a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);
}

export class PartitionWorker {
  /** Blocking reads get their own connection: a blocked connection carries nothing else. */
  private conn: RedisClient | undefined;
  private running = false;
  private stopped = false;
  private done: Promise<void> = Promise.resolve();
  private nextClaimAt = 0;
  private readonly stream: string;

  constructor(
    private readonly ctx: WorkerContext,
    readonly partition: number,
  ) {
    this.stream = ctx.keys.stream(ctx.topic, partition);
  }

  async start(): Promise<void> {
    await this.ensureGroup();
    // Made only now, so a worker whose group could not be made leaves no connection behind.
    if (this.stopped) return;
    const conn = this.ctx.redis.duplicate();
    conn.on('error', () => {});
    this.conn = conn;
    this.running = true;
    this.done = this.loop(conn);
  }

  /** Waits for the batch in hand to finish, at most timeoutMs (a hung handler is abandoned). */
  async stop(timeoutMs: number): Promise<void> {
    this.stopped = true;
    this.running = false;
    this.conn?.disconnect();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.done, new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
  }

  /**
   * Makes the group if it does not exist. A new group reads the partition from its beginning,
   * so nothing published earlier is missed. A group that existed before (lost: NOGROUP while
   * reading, or its dedup table has records) must not: messages older than its dedup records
   * would be applied a second time (maxAgeMs outlives dedupMs by default). It restarts at
   * the dedup horizon instead, in stream-id order (dedup records are scored by their
   * message's stream id, see commit.lua): the later of the dedup cutoff (now - dedupMs, what
   * commits trim by) and the oldest record still kept (trims remove the oldest records first,
   * so every message applied from that one on still has its record). Messages from the
   * horizon on are delivered again
   * (the applied ones are duplicates); older unconsumed ones are skipped. Never past the
   * stream's last id: a consumer clock ahead of Redis's must not skip messages published
   * after the group was made.
   */
  private async ensureGroup(existed = false): Promise<void> {
    const { ctx } = this;
    const done = ctx.keys.done(ctx.topic, this.partition, ctx.group);
    const [oldestMember, oldest] = await ctx.redis.zrange(done, 0, 0, 'WITHSCORES');
    let start = '0';
    if (existed || oldest !== undefined) {
      // The group's last-delivered id: just before the dedup cutoff's first id, or before the
      // oldest record's own id, whichever is later.
      const cutoff = Math.ceil(ctx.clock.now() - ctx.topicInfo().dedupMs);
      let last: [bigint, bigint] = cutoff > 0 ? [BigInt(cutoff - 1), MAX_SEQ] : [0n, 0n];
      if (oldest !== undefined) {
        const before = idBeforeRecord(Number(oldest), oldestMember as string);
        if (idBefore(last, before)) last = before;
      }
      const top = await this.lastId();
      if (idBefore(top, last)) last = top;
      start = last[0] === 0n && last[1] === 0n ? '0' : `${last[0]}-${last[1]}`;
    }
    try {
      await ctx.redis.xgroup('CREATE', this.stream, ctx.group, start, 'MKSTREAM');
    } catch (err) {
      if (!/BUSYGROUP/.test(errorText(err))) throw err;
    }
  }

  /** The stream's last generated id (0-0 for a stream that does not exist yet). */
  private async lastId(): Promise<[bigint, bigint]> {
    try {
      const info = (await this.ctx.redis.call('XINFO', 'STREAM', this.stream)) as unknown[];
      const at = info.indexOf('last-generated-id');
      return at >= 0 ? parseId(String(info[at + 1])) : [0n, 0n];
    } catch (err) {
      if (/no such key/i.test(errorText(err))) return [0n, 0n];
      throw err;
    }
  }

  private async loop(conn: RedisClient): Promise<void> {
    const { ctx } = this;
    let failures = 0;
    while (this.running) {
      try {
        if (ctx.clock.now() >= this.nextClaimAt) {
          await this.recover();
          this.nextClaimAt = ctx.clock.now() + ctx.claimIntervalMs;
        }
        const count = ctx.knobs.get<number>('messaging.batch_size');
        // An integer (Redis refuses a fractional BLOCK), whatever the clock returns.
        const blockMs = Math.max(
          1,
          Math.ceil(Math.min(ctx.blockMs, this.nextClaimAt - ctx.clock.now())),
        );
        const reply = (await conn.call(
          'XREADGROUP',
          'GROUP',
          ctx.group,
          ctx.consumer,
          'COUNT',
          count,
          'BLOCK',
          blockMs,
          'STREAMS',
          this.stream,
          '>',
        )) as StreamReply;
        const entries = reply?.[0]?.[1] ?? [];
        if (entries.length > 0) {
          const msgs = entries.map(([id, flat]) =>
            decodeEntry(ctx.topic, this.partition, id, flat, 1),
          );
          await this.process(msgs, 'read');
        }
        failures = 0;
      } catch (err) {
        if (!this.running) break;
        failures++;
        const message = errorText(err);
        ctx.log.warn({ err: message, partition: this.partition, failures }, 'consumer loop error');
        // The group is gone (a Redis that lost its data): make it again, past what it applied.
        if (/NOGROUP/.test(message)) await this.ensureGroup(true).catch(() => undefined);
        await sleep(Math.min(2_000, 25 * 2 ** Math.min(failures, 7)));
      }
    }
  }

  /** Takes over messages of crashed or stalled consumers, at most maxClaimRounds batches. */
  private async recover(): Promise<void> {
    const { ctx } = this;
    let cursor = '0-0';
    for (let round = 0; round < ctx.maxClaimRounds && this.running; round++) {
      const reply = await messagingScripts.run(
        ctx.redis,
        'claim',
        [this.stream, ctx.keys.dead(ctx.topic, this.partition)],
        [
          ctx.group,
          ctx.consumer,
          ctx.visibilityMs,
          ctx.knobs.get<number>('messaging.batch_size'),
          cursor,
          ctx.maxDeliveries,
          ctx.clock.now(),
          ctx.deadMaxLen,
          randomUUID(),
          COMMIT_RESULTS_TTL_MS,
        ],
      );
      const m = ctx.telemetry.metrics;
      const trimmed = Number(reply[1]);
      const dead = Number(reply[2]);
      if (trimmed > 0) m.inc('trimmed_pending', trimmed);
      // Dead-lettered here is acknowledged too (claim-2.lua XACKs it), as on the commit path.
      if (dead > 0) {
        m.inc('dead_lettered', dead);
        m.inc('acked', dead);
      }
      const msgs: Message[] = [];
      for (let i = 3; i + 2 < reply.length; i += 3) {
        msgs.push(
          decodeEntry(
            ctx.topic,
            this.partition,
            String(reply[i]),
            reply[i + 1] as string[],
            Number(reply[i + 2]),
          ),
        );
      }
      if (msgs.length > 0) {
        m.inc('claimed', msgs.length);
        await this.process(msgs, 'claim', dead);
      } else if (dead > 0) {
        ctx.onBatch(emptyBatch(ctx.topic, this.partition, dead));
      }
      cursor = String(reply[0]);
      if (cursor === '0-0') break;
    }
    await this.forgetGoneConsumers();
  }

  /**
   * Removes consumers of the group that hold nothing and have not read for a long time
   * (crashed instances), so the group's consumer list stays bounded; in one atomic step.
   */
  private async forgetGoneConsumers(): Promise<void> {
    const { ctx } = this;
    const goneMs = Math.max(60_000, 10 * ctx.visibilityMs);
    await messagingScripts.run(
      ctx.redis,
      'forgetConsumers',
      [this.stream],
      [ctx.group, ctx.consumer, goneMs],
    );
  }

  /**
   * Runs the handler on each message, then commits the batch in one script call. claimDead:
   * messages the claim step that delivered this batch dead-lettered (already counted in the
   * metrics), reported in the batch's event.
   */
  private async process(
    msgs: readonly Message[],
    source: 'read' | 'claim',
    claimDead = 0,
  ): Promise<void> {
    const { ctx } = this;
    const items: CommitItem[] = [];
    let failed = 0;
    for (const message of msgs) {
      const out = new Output();
      try {
        const pending = ctx.handler(message, out);
        if (pending) await pending; // a synchronous handler costs no microtask per message
        items.push({ kind: 'apply', message, writes: out.writes });
      } catch (err) {
        failed++;
        if (message.deliveries >= ctx.maxDeliveries) {
          const reason = `handler: ${errorText(err)}`.slice(0, 200);
          items.push({ kind: 'dead', message, reason });
        }
      }
    }
    const { order, results } =
      items.length > 0 ? await this.commitIsolating(items) : { order: [], results: [] };
    const ev: BatchEvent = {
      topic: ctx.topic,
      partition: this.partition,
      size: msgs.length,
      source,
      applied: 0,
      duplicates: 0,
      stale: 0,
      deadLettered: 0,
      failed,
      writeErrors: 0,
    };
    const now = ctx.clock.now();
    results.forEach((r, i) => {
      if (r === COMMIT_RESULT.applied || r === COMMIT_RESULT.writeFailed) {
        ev.applied++;
        if (r === COMMIT_RESULT.writeFailed) {
          ev.writeErrors++;
          ctx.log.warn({ id: (order[i] as CommitItem).message.id }, 'a handler write failed');
        }
        const publishedAt = (order[i] as CommitItem).message.publishedAt;
        ctx.telemetry.metrics.observe('e2e_latency_ms', now - publishedAt);
      } else if (r === COMMIT_RESULT.duplicate) ev.duplicates++;
      else if (r === COMMIT_RESULT.stale) ev.stale++;
      else if (r === COMMIT_RESULT.dead) ev.deadLettered++;
    });
    const m = ctx.telemetry.metrics;
    m.inc('consumed', msgs.length);
    m.inc('acked', ev.applied + ev.duplicates + ev.deadLettered);
    if (ev.duplicates > 0) m.inc('duplicates', ev.duplicates);
    if (ev.stale > 0) m.inc('stale', ev.stale);
    if (ev.deadLettered > 0) m.inc('dead_lettered', ev.deadLettered);
    if (failed > 0) m.inc('handler_errors', failed);
    if (ev.writeErrors > 0) m.inc('write_errors', ev.writeErrors);
    m.observe('consume_batch_size', msgs.length);
    ev.deadLettered += claimDead;
    ctx.onBatch(ev);
  }

  /**
   * One commit.lua call; retried on a lost connection, which is safe: the attempts of one
   * commit share a unique results key, where the attempt that ran stored its results, so a
   * retry after a lost reply reports exactly those (applied stays applied, a duplicate stays
   * a duplicate) and does nothing again. Gives up
   * after commitAttempts (the messages stay pending and are taken over after the visibility
   * timeout).
   */
  private async commit(
    items: readonly CommitItem[],
  ): Promise<{ order: CommitItem[]; results: number[] }> {
    const { ctx } = this;
    const info = ctx.topicInfo();
    const k = ctx.keys;
    const now = ctx.clock.now();
    const results = k.commitResults(ctx.topic, this.partition, ctx.group, randomUUID());
    for (let attempt = 1; ; attempt++) {
      const { keys, argv, order } = commitCall(
        [
          this.stream,
          k.done(ctx.topic, this.partition, ctx.group),
          k.dead(ctx.topic, this.partition),
          results,
        ],
        {
          group: ctx.group,
          now,
          dedupCutoffMs: now - info.dedupMs,
          dedupMax: info.dedupMax,
          deadMaxLen: ctx.deadMaxLen,
          resultsTtlMs: COMMIT_RESULTS_TTL_MS,
        },
        items,
        (name) => k.output(ctx.topic, this.partition, name),
      );
      let reply: unknown[];
      try {
        reply = await messagingScripts.run(ctx.redis, 'commit', keys, argv);
      } catch (err) {
        if (attempt >= ctx.commitAttempts || !this.running) {
          ctx.log.warn({ err: errorText(err), partition: this.partition }, 'commit gave up');
          return { order, results: [] };
        }
        await sleep(Math.min(COMMIT_BACKOFF_MAX_MS, 25 * 2 ** attempt));
        continue;
      }
      if (Number(reply[0]) === COMMIT_OUTPUT_TYPE) {
        const key = keys[Number(reply[1]) - 1] ?? '?';
        throw new OutputTypeError(key, String(reply[2]), String(reply[3]));
      }
      return { order, results: reply.slice(1).map(Number) };
    }
  }

  /**
   * Commits a batch; when a write's key has the wrong type (nothing was done), commits the
   * messages one by one instead and dead-letters the ones at fault, so one bad message does
   * not hold back its batch.
   */
  private async commitIsolating(
    items: readonly CommitItem[],
  ): Promise<{ order: CommitItem[]; results: number[] }> {
    try {
      return await this.commit(items);
    } catch (err) {
      if (!(err instanceof OutputTypeError)) throw err;
    }
    const order: CommitItem[] = [];
    const results: number[] = [];
    for (const item of items) {
      let one: { order: CommitItem[]; results: number[] };
      try {
        one = await this.commit([item]);
      } catch (err) {
        if (!(err instanceof OutputTypeError)) throw err;
        const reason = `output: ${err.message}`.slice(0, 200);
        one = await this.commit([{ kind: 'dead', message: item.message, reason }]);
      }
      order.push(...one.order);
      results.push(...one.results);
    }
    return { order, results };
  }
}

function emptyBatch(topic: string, partition: number, deadLettered: number): BatchEvent {
  return {
    topic,
    partition,
    size: 0,
    source: 'claim',
    applied: 0,
    duplicates: 0,
    stale: 0,
    deadLettered,
    failed: 0,
    writeErrors: 0,
  };
}
