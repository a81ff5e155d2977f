// The topics table: one versioned row per topic (partition count, retention bounds, dedup
// retention) in the shard's family. A topic is created with the `messaging.partitions` knob's
// value; later it can only grow (a shrink would strand the messages of removed partitions).
// Partition streams and consumer groups are created lazily by producers and consumers.
import { systemClock, type Clock } from '../knobs/clock.ts';
import type { KnobClient } from '../knobs/client.ts';
import type { RedisClient } from '../redis/connect.ts';
import { AlreadyExistsError, StaleVersionError } from '../store/errors.ts';
import { Table } from '../store/table.ts';
import { checkInt, ShrinkRefusedError, TopicNotFoundError } from './errors.ts';
import { checkName, type MessagingKeys } from './keys.ts';

const DAY_MS = 86_400_000;
/** Partitions per topic: the bound of the `messaging.partitions` knob. */
export const MAX_PARTITIONS = 256;

export interface TopicOptions {
  /** Partition count; the `messaging.partitions` knob's value when omitted. */
  partitions?: number;
  /** Retention: about this many newest messages per partition are kept (XTRIM MAXLEN ~). */
  maxLen?: number;
  /** Retention: messages older than this are trimmed (XTRIM MINID ~); 0 = no age bound. */
  maxAgeMs?: number;
  /** How long a producer idempotency key and a consumer's dedup record are remembered. */
  dedupMs?: number;
  /** Bound on dedup records per partition (and per group); the oldest go first. */
  dedupMax?: number;
}

export interface TopicInfo {
  name: string;
  partitions: number;
  maxLen: number;
  maxAgeMs: number;
  dedupMs: number;
  dedupMax: number;
  createdAt: number;
  /**
   * The `messaging.partitions` knob version the partition count reflects (set at creation
   * and by growing to the knob): a loader seeing a newer version with a larger value grows
   * the topic, so a raise made while no process had the topic cached is not lost. Undefined
   * for rows written before it was recorded, and without a knob client.
   */
  knobVersion?: number;
  /**
   * The `messaging.partitions` knob's value the row saw (at creation and when grown to the
   * knob): a loader grows the topic only when the knob is now above it, so a topic created
   * below the knob on purpose is not grown by an unrelated knob write (a lowering). Undefined
   * for rows written before it was recorded, and without a knob client.
   */
  knobValue?: number;
  version: number;
}

export const TOPIC_DEFAULTS = {
  maxLen: 1_000_000,
  maxAgeMs: 7 * DAY_MS,
  dedupMs: DAY_MS,
  dedupMax: 1_000_000,
} as const;

const FIELDS = {
  name: { type: 'string' },
  partitions: { type: 'number' },
  max_len: { type: 'number' },
  max_age_ms: { type: 'number' },
  dedup_ms: { type: 'number' },
  dedup_max: { type: 'number' },
  created_at: { type: 'number' },
  knob_version: { type: 'number', optional: true },
  knob_value: { type: 'number', optional: true },
} as const;

export class Topics {
  private readonly table: Table<typeof FIELDS>;

  constructor(
    private readonly redis: RedisClient,
    readonly mkeys: MessagingKeys,
    private readonly opts: { knobs?: KnobClient; clock?: Clock } = {},
  ) {
    const family = mkeys.topicsFamily();
    this.table = new Table(redis, mkeys.keys, {
      name: 'topics',
      fields: FIELDS,
      id: (r) => r.name,
      family: () => family,
      indexes: { created_at: (r) => r.created_at },
    });
  }

  /** The topic's row, creating it first when it does not exist. */
  async ensure(name: string, opts: TopicOptions = {}): Promise<TopicInfo> {
    checkName('topic', name);
    const existing = await this.find(name);
    if (existing) return existing;
    const partitions = opts.partitions ?? this.opts.knobs?.get<number>('messaging.partitions') ?? 4;
    checkInt('partitions', partitions, 1, MAX_PARTITIONS);
    const knobVersion = this.opts.knobs?.version('messaging.partitions');
    const knobValue = this.opts.knobs?.get<number>('messaging.partitions');
    const row = {
      name,
      partitions,
      max_len: opts.maxLen ?? TOPIC_DEFAULTS.maxLen,
      max_age_ms: opts.maxAgeMs ?? TOPIC_DEFAULTS.maxAgeMs,
      dedup_ms: opts.dedupMs ?? TOPIC_DEFAULTS.dedupMs,
      dedup_max: opts.dedupMax ?? TOPIC_DEFAULTS.dedupMax,
      created_at: (this.opts.clock ?? systemClock).now(),
      ...(knobVersion ? { knob_version: knobVersion } : {}),
      ...(knobVersion && Number.isFinite(Number(knobValue))
        ? { knob_value: Number(knobValue) }
        : {}),
    };
    checkInt('maxLen', row.max_len, 1, 2 ** 40);
    checkInt('maxAgeMs', row.max_age_ms, 0, 2 ** 50);
    checkInt('dedupMs', row.dedup_ms, 1, 2 ** 50);
    checkInt('dedupMax', row.dedup_max, 1, 2 ** 40);
    try {
      await this.table.insert(row);
    } catch (err) {
      // Another instance created it first: theirs stands.
      if (!(err instanceof StaleVersionError || err instanceof AlreadyExistsError)) throw err;
    }
    return this.get(name);
  }

  async find(name: string): Promise<TopicInfo | null> {
    const got = await this.table.get(this.mkeys.topicsFamily(), name);
    if (!got) return null;
    const r = got.row;
    return {
      name: r.name,
      partitions: r.partitions,
      maxLen: r.max_len,
      maxAgeMs: r.max_age_ms,
      dedupMs: r.dedup_ms,
      dedupMax: r.dedup_max,
      createdAt: r.created_at,
      ...(r.knob_version !== undefined ? { knobVersion: r.knob_version } : {}),
      ...(r.knob_value !== undefined ? { knobValue: r.knob_value } : {}),
      version: got.version,
    };
  }

  async get(name: string): Promise<TopicInfo> {
    const t = await this.find(name);
    if (!t) throw new TopicNotFoundError(name);
    return t;
  }

  /**
   * Raises the partition count (e.g. after the `messaging.partitions` knob went up), checked
   * against the version read, so two instances growing at once cannot lose an update.
   * knobVersion, knobValue: the knob version and value applied (growing to the knob),
   * recorded in the row.
   */
  async grow(
    name: string,
    partitions: number,
    knobVersion?: number,
    knobValue?: number,
  ): Promise<TopicInfo> {
    checkInt('partitions', partitions, 1, MAX_PARTITIONS);
    const t = await this.get(name);
    if (partitions < t.partitions) throw new ShrinkRefusedError(name, t.partitions, partitions);
    if (partitions === t.partitions) return t;
    const kv = Math.max(knobVersion ?? 0, t.knobVersion ?? 0);
    const value = knobValue ?? t.knobValue;
    const row = {
      name,
      partitions,
      max_len: t.maxLen,
      max_age_ms: t.maxAgeMs,
      dedup_ms: t.dedupMs,
      dedup_max: t.dedupMax,
      created_at: t.createdAt,
      ...(kv > 0 ? { knob_version: kv } : {}),
      ...(value !== undefined ? { knob_value: value } : {}),
    };
    await this.table.write([{ row, expect: t.version }]);
    return this.get(name);
  }

  /** Topic names, oldest first: `limit` of them from the `offset`-th on. */
  async list(limit = 1000, offset = 0): Promise<string[]> {
    return this.table.range(this.mkeys.topicsFamily(), 'created_at', { limit, offset });
  }
}
