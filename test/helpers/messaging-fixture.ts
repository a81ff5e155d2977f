// Messaging test fixture: a seeded knobs table (its clock past every cooldown), a knob client,
// the topics table and a key prefix of its own, all over a TestRedis.
import { afterAll, beforeAll } from 'vitest';
import { KnobClient } from '../../controlplane/knobs/client.ts';
import { ManualClock } from '../../controlplane/knobs/clock.ts';
import { KnobTable } from '../../controlplane/knobs/table.ts';
import { MessagingKeys } from '../../controlplane/messaging/keys.ts';
import { Consumer, type ConsumerOptions } from '../../controlplane/messaging/consumer.ts';
import type { Handler } from '../../controlplane/messaging/partition-worker.ts';
import { Producer, type ProducerOptions } from '../../controlplane/messaging/producer.ts';
import { Topics } from '../../controlplane/messaging/topics.ts';
import type { RedisClient } from '../../controlplane/redis/connect.ts';
import type { Keys } from '../../controlplane/store/keys.ts';
import type { KnobValue } from '../../knobs/index.ts';
import { startTestRedis, uniqueKeys, type Backend, type TestRedis } from './redis.ts';

const HOUR_MS = 3_600_000;

export interface MessagingFixture {
  redis: RedisClient;
  keys: Keys;
  mkeys: MessagingKeys;
  admin: KnobTable;
  knobs: KnobClient;
  topics: Topics;
  /** Promotes a knob to a value (from its current version), past its cooldown. */
  setKnob(name: string, value: KnobValue): Promise<void>;
  close(): Promise<void>;
}

export async function messagingFixture(
  test: TestRedis,
  knobValues: Record<string, KnobValue> = {},
): Promise<MessagingFixture> {
  const redis = test.client();
  const keys = uniqueKeys();
  const mkeys = new MessagingKeys(keys);
  const clock = new ManualClock(Date.now());
  const admin = new KnobTable(redis, { keys, clock });
  await admin.seed();
  const setKnob = async (name: string, value: KnobValue) => {
    clock.advance(HOUR_MS);
    const row = await admin.get(name);
    await admin.promote({ name, value, baseVersion: row.version, actor: 'test', reason: 'test' });
  };
  for (const [name, value] of Object.entries(knobValues)) await setKnob(name, value);
  const knobs = await KnobClient.start({
    table: new KnobTable(redis, { keys }),
    names: ['messaging.batch_size', 'messaging.linger_ms', 'messaging.partitions'],
    resyncIntervalMs: 0,
  });
  const topics = new Topics(redis, mkeys, { knobs });
  return {
    redis,
    keys,
    mkeys,
    admin,
    knobs,
    topics,
    setKnob,
    close: () => knobs.close(),
  };
}

/** Sum of an output hash's values over every partition of a topic, and the hash entries. */
export async function outputHashes(
  f: MessagingFixture,
  topic: string,
  partitions: number,
  name: string,
): Promise<Map<string, number>> {
  const all = new Map<string, number>();
  for (let p = 0; p < partitions; p++) {
    const h = await f.redis.hgetall(f.mkeys.output(topic, p, name));
    for (const [k, v] of Object.entries(h)) all.set(k, (all.get(k) ?? 0) + Number(v));
  }
  return all;
}

type Closable = { close?: () => Promise<void>; stop?: () => Promise<void> };

/**
 * A messaging suite's scaffolding: a redis-server of `backend` for the suite, and what is made
 * through it (fixtures, producers, consumers of group 'g' with `consumerDefaults`, anything
 * `track`ed) stopped newest first after it.
 */
export function messagingSuite(backend: Backend, consumerDefaults: Partial<ConsumerOptions> = {}) {
  let redis: TestRedis | undefined;
  const open: Closable[] = [];
  beforeAll(async () => {
    redis = await startTestRedis(backend);
  });
  afterAll(async () => {
    for (const o of open.reverse()) await (o.stop ?? o.close)?.call(o);
    await redis?.stop();
  });
  const track = <T extends Closable>(o: T): T => {
    open.push(o);
    return o;
  };
  /** The options of a consumer of group 'g' (the suite's defaults, then `extra`). */
  const consumerOptions = (
    f: MessagingFixture,
    topic: string,
    handler: Handler,
    extra: Partial<ConsumerOptions> = {},
  ): ConsumerOptions => {
    const { redis: r, mkeys: keys, knobs } = f;
    return { redis: r, keys, knobs, topic, group: 'g', handler, ...consumerDefaults, ...extra };
  };
  return {
    track,
    async fixture(knobs: Record<string, KnobValue> = {}): Promise<MessagingFixture> {
      if (!redis) throw new Error('messagingSuite: fixture() before the suite started');
      return track(await messagingFixture(redis, knobs));
    },
    producer(f: MessagingFixture, extra: Partial<ProducerOptions> = {}): Producer {
      return track(new Producer({ redis: f.redis, keys: f.mkeys, knobs: f.knobs, ...extra }));
    },
    consumerOptions,
    async consumer(
      f: MessagingFixture,
      topic: string,
      handler: Handler,
      extra: Partial<ConsumerOptions> = {},
    ): Promise<Consumer> {
      return track(await Consumer.start(consumerOptions(f, topic, handler, extra)));
    },
  };
}
