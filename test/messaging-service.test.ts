// The messaging service against real redis-server processes, on one node and on a 3-node
// cluster: exactly-once effects, idempotent publishes, duplicate detection on redelivery,
// dead letters, retention bounds, live knobs, topic growth, telemetry and traces.
import { describe, expect, it } from 'vitest';
import { Consumer, type ConsumerOptions } from '../controlplane/messaging/consumer.ts';
import { readDeadLetters } from '../controlplane/messaging/dead-letters.ts';
import {
  MessagingOptionError,
  ShrinkRefusedError,
  TopicNotFoundError,
} from '../controlplane/messaging/errors.ts';
import type { BatchEvent, Handler } from '../controlplane/messaging/partition-worker.ts';
import { Producer, type FlushEvent } from '../controlplane/messaging/producer.ts';
import { messagingScripts } from '../controlplane/messaging/scripts.ts';
import { MessagingTelemetry } from '../controlplane/messaging/telemetry.ts';
import { arrivalsToMessages, readArrivals } from '../controlplane/messaging/trace.ts';
import { publishArgv } from '../controlplane/messaging/wire.ts';
import { telemetryEntries } from '../controlplane/telemetry/read.ts';
import { checkMessages, fixedSource, simulateMessaging } from '../envs/messaging/index.ts';
import {
  messagingSuite,
  outputHashes,
  type MessagingFixture,
} from './helpers/messaging-fixture.ts';
import { eventually, type Backend } from './helpers/redis.ts';

const countSeen: Handler = (m, out) => {
  out.hincr('seen', m.data);
  out.incr('total');
};

describe.each<Backend>(['single', 'cluster'])('messaging on %s redis', (backend) => {
  const { fixture, producer, consumer } = messagingSuite(backend);
  async function totals(f: MessagingFixture, topic: string, partitions: number, name = 'total') {
    let sum = 0;
    for (let p = 0; p < partitions; p++)
      sum += Number(await f.redis.get(f.mkeys.output(topic, p, name)));
    return sum;
  }

  it('applies every message effect exactly once, over partitions in different slots', async () => {
    const f = await fixture();
    const t = await f.topics.ensure('orders');
    expect(t.partitions).toBe(4); // the messaging.partitions knob's default
    if (backend === 'cluster') {
      const slots = await Promise.all(
        [0, 1, 2, 3].map(
          (p) => f.redis.call('CLUSTER', 'KEYSLOT', f.mkeys.stream('orders', p)) as Promise<number>,
        ),
      );
      expect(new Set(slots).size).toBe(4);
    }
    const p = producer(f);
    const n = 400;
    const acks = await Promise.all(
      Array.from({ length: n }, (_, i) => p.publish('orders', `m${i}`)),
    );
    expect(new Set(acks.map((a) => a.partition)).size).toBe(4);
    const c = await consumer(f, 'orders', countSeen);
    await eventually(async () => (await totals(f, 'orders', 4)) === n, 'every message applied');
    const seen = await outputHashes(f, 'orders', 4, 'seen');
    expect(seen.size).toBe(n);
    expect([...seen.values()].every((v) => v === 1)).toBe(true);
    expect(c.partitions()).toEqual([0, 1, 2, 3]);
    for (let q = 0; q < 4; q++) {
      const pending = (await f.redis.xpending(f.mkeys.stream('orders', q), 'g')) as unknown[];
      expect(Number(pending[0])).toBe(0);
    }
  });

  it('stores a publish retried with the same idempotency key once', async () => {
    const f = await fixture();
    await f.topics.ensure('pay', { partitions: 3 });
    const p = producer(f);
    const first = await p.publish('pay', 'charge 10', { key: 'order-17' });
    const again = await p.publish('pay', 'charge 10', { key: 'order-17' });
    const other = producer(f);
    const third = await other.publish('pay', 'charge 10', { key: 'order-17' });
    expect(first.duplicate).toBe(false);
    expect(again).toEqual({ ...first, duplicate: true });
    expect(third).toEqual({ ...first, duplicate: true });
    expect(await f.redis.xlen(f.mkeys.stream('pay', first.partition))).toBe(1);
  });

  it('keeps every publish of a producer restarted with the same id', async () => {
    const f = await fixture();
    await f.topics.ensure('restart', { partitions: 1 });
    const run = async (prefix: string) => {
      const p = new Producer({ redis: f.redis, keys: f.mkeys, knobs: f.knobs, id: 'svc-a' });
      const out = [];
      for (let i = 0; i < 3; i++) out.push(await p.publish('restart', `${prefix}${i}`));
      await p.close();
      return out;
    };
    const first = await run('a');
    const second = await run('b'); // its sequence starts at 1 again, as after a restart
    expect([...first, ...second].every((r) => !r.duplicate)).toBe(true);
    const stored = await f.redis.xrange(f.mkeys.stream('restart', 0), '-', '+');
    expect(stored).toHaveLength(6);
    expect(new Set([...first, ...second].map((r) => r.id)).size).toBe(6);
  });

  it('appends nothing when a producer resends a batch whose reply it lost, and says so', async () => {
    const f = await fixture();
    await f.topics.ensure('seq', { partitions: 1 });
    const k = f.mkeys;
    const keys = [k.stream('seq', 0), k.publishIds('seq', 0), k.publishAt('seq', 0)];
    const base = {
      now: Date.now(),
      maxLen: 1000,
      minIdMs: undefined,
      dedupCutoffMs: 0,
      dedupMax: 100,
      seqKey: 'prod-1',
    };
    const args = (seq: number) =>
      publishArgv(
        { ...base, seq },
        ['a', 'b', 'c'].map((data) => ({ key: undefined, enqueuedAt: 1, data })),
      );
    const r1 = await messagingScripts.run(f.redis, 'publish', keys, args(1));
    const r2 = await messagingScripts.run(f.redis, 'publish', keys, args(1));
    expect(r1[1]).toBe(0);
    expect(r2[1]).toBe(1);
    // The resend answers as the attempt that stored the batch: same ids, no duplicates.
    expect(r2.slice(2)).toEqual(r1.slice(2));
    expect(r1.slice(2).filter((_, i) => i % 2 === 1)).toEqual([0, 0, 0]);
    expect(await f.redis.xlen(keys[0] as string)).toBe(3);
    // Trimmed since (the oldest entry first): the trimmed message answers '0-0', the others
    // their own ids.
    const ids1 = r1.slice(2).filter((_, i) => i % 2 === 0);
    await f.redis.xtrim(keys[0] as string, 'MAXLEN', 2);
    const r2b = await messagingScripts.run(f.redis, 'publish', keys, args(1));
    expect(r2b.slice(2).filter((_, i) => i % 2 === 0)).toEqual(['0-0', ids1[1], ids1[2]]);
    await messagingScripts.run(f.redis, 'publish', keys, args(2));
    expect(await f.redis.xlen(keys[0] as string)).toBe(5);
    // A batch holding a keyed duplicate is not one run of the stream; its resend too.
    const keyed = (seq: number, seqKey = base.seqKey) =>
      publishArgv(
        { ...base, seqKey, seq },
        [{ key: 'k1' }, { key: undefined }, { key: 'k1' }].map((m) => ({
          ...m,
          enqueuedAt: 1,
          data: 'x',
        })),
      );
    const r3 = await messagingScripts.run(f.redis, 'publish', keys, keyed(3));
    const r4 = await messagingScripts.run(f.redis, 'publish', keys, keyed(3));
    expect(r3[6]).toBe(r3[2]); // the key's second use got the first id
    expect(r3.slice(2).filter((_, i) => i % 2 === 1)).toEqual([0, 0, 1]);
    expect(r4[1]).toBe(1);
    expect(r4.slice(2)).toEqual(r3.slice(2)); // only the keyed duplicate is one
    expect(await f.redis.xlen(keys[0] as string)).toBe(7);
    // A record of the older form (ids without flags) still answers, all as duplicates.
    await f.redis.hset(keys[1] as string, 's:prod-old', `3|l|${r3[2]},${r3[4]},${r3[6]}`);
    const old = await messagingScripts.run(f.redis, 'publish', keys, keyed(3, 'prod-old'));
    expect(old.slice(2)).toEqual([r3[2], 1, r3[4], 1, r3[6], 1]);
    expect(await f.redis.xlen(keys[0] as string)).toBe(7);
  });

  it('forgets idle consumers that hold nothing, and no other', async () => {
    const f = await fixture();
    await f.topics.ensure('gone', { partitions: 1 });
    const stream = f.mkeys.stream('gone', 0);
    await f.redis.xgroup('CREATE', stream, 'g', '0', 'MKSTREAM');
    await f.redis.xadd(stream, '*', 'n', '1');
    await f.redis.call('XGROUP', 'CREATECONSUMER', stream, 'g', 'idle');
    await f.redis.xreadgroup('GROUP', 'g', 'holder', 'COUNT', 1, 'STREAMS', stream, '>');
    await f.redis.call('XGROUP', 'CREATECONSUMER', stream, 'g', 'me');
    await new Promise((r) => setTimeout(r, 30));
    const forget = (goneMs: number) =>
      messagingScripts.run(f.redis, 'forgetConsumers', [stream], ['g', 'me', goneMs]);
    expect(await forget(60_000)).toBe(0); // none idle that long
    expect(await forget(10)).toBe(1);
    const names = ((await f.redis.call('XINFO', 'CONSUMERS', stream, 'g')) as unknown[][]).map(
      (c) => String(c[1]),
    );
    expect(names.sort()).toEqual(['holder', 'me']); // a pending entry, and the caller
  });

  it('detects a redelivered message that was already committed as a duplicate', async () => {
    const f = await fixture();
    await f.topics.ensure('slow', { partitions: 1 });
    const p = producer(f);
    await Promise.all([1, 2, 3].map((i) => p.publish('slow', `m${i}`)));
    // A: reads the batch, then stalls in its handler past the visibility timeout.
    let release: () => void = () => {};
    const stalled = new Promise<void>((r) => (release = r));
    let aStarted = false;
    const aBatches: BatchEvent[] = [];
    const a = await consumer(
      f,
      'slow',
      async (m, out) => {
        aStarted = true;
        await stalled;
        countSeen(m, out);
      },
      { visibilityMs: 50, claimIntervalMs: 1_000_000 },
    );
    a.on('batch', (e) => aBatches.push(e));
    await eventually(() => aStarted, 'A got the batch');
    // B: takes the stalled messages over and commits them.
    const bBatches: BatchEvent[] = [];
    const b = await consumer(f, 'slow', countSeen, { visibilityMs: 50, claimIntervalMs: 20 });
    b.on('batch', (e) => bBatches.push(e));
    await eventually(async () => (await totals(f, 'slow', 1)) === 3, 'B applied all three');
    release();
    await eventually(() => aBatches.length > 0, 'A committed');
    expect(aBatches[0]).toMatchObject({ size: 3, applied: 0, duplicates: 3 });
    expect(bBatches.some((e) => e.source === 'claim' && e.applied === 3)).toBe(true);
    expect(await totals(f, 'slow', 1)).toBe(3);
    const seen = await outputHashes(f, 'slow', 1, 'seen');
    expect([...seen.values()]).toEqual([1, 1, 1]);
  });

  it('dead-letters a message after the delivery limit and keeps the others flowing', async () => {
    const f = await fixture();
    await f.topics.ensure('dl', { partitions: 1 });
    const p = producer(f);
    await p.publish('dl', 'ok-1');
    await p.publish('dl', 'poison', { key: 'bad-1' });
    await p.publish('dl', 'ok-2');
    let attempts = 0;
    const events: BatchEvent[] = [];
    const c = await consumer(
      f,
      'dl',
      (m, out) => {
        if (m.data === 'poison') {
          attempts++;
          throw new Error('cannot parse');
        }
        countSeen(m, out);
      },
      { visibilityMs: 30, claimIntervalMs: 15, maxDeliveries: 3 },
    );
    c.on('batch', (e) => events.push(e));
    await eventually(
      async () => (await readDeadLetters(f.redis, f.mkeys, 'dl', 0)).length === 1,
      'poison dead-lettered',
    );
    const [dead] = await readDeadLetters(f.redis, f.mkeys, 'dl', 0);
    expect(dead).toMatchObject({
      group: 'g',
      data: 'poison',
      key: 'bad-1',
      deliveries: 3,
      reason: 'handler: cannot parse',
    });
    expect(attempts).toBe(3);
    expect(await totals(f, 'dl', 1)).toBe(2);
    const pending = (await f.redis.xpending(f.mkeys.stream('dl', 0), 'g')) as unknown[];
    expect(Number(pending[0])).toBe(0);
    await eventually(
      () => events.reduce((s, e) => s + e.deadLettered, 0) === 1,
      'the dead letter reported',
    );
  });

  it('dead-letters a message whose consumer keeps dying once its deliveries run out', async () => {
    const f = await fixture();
    await f.topics.ensure('crashy', { partitions: 1 });
    await producer(f).publish('crashy', 'kills-its-consumer');
    // Consumers that take the message and never finish it, as if killed each time.
    let release: () => void = () => {};
    const hang = new Promise<void>((r) => (release = r));
    for (let i = 0; i < 2; i++) {
      await consumer(f, 'crashy', () => hang, { visibilityMs: 30, claimIntervalMs: 15 });
    }
    const c = await consumer(f, 'crashy', countSeen, {
      visibilityMs: 30,
      claimIntervalMs: 15,
      maxDeliveries: 1,
    });
    await eventually(
      async () => (await readDeadLetters(f.redis, f.mkeys, 'crashy', 0)).length === 1,
      'dead-lettered by the claim step',
    );
    const [dead] = await readDeadLetters(f.redis, f.mkeys, 'crashy', 0);
    expect(dead?.reason).toBe('max_deliveries');
    expect(dead?.deliveries).toBeGreaterThan(1);
    release();
    void c;
  });

  it('dead-letters only the message whose write hits a key of another type', async () => {
    const f = await fixture();
    await f.topics.ensure('types', { partitions: 1 });
    const p = producer(f);
    const events: BatchEvent[] = [];
    const c = await consumer(f, 'types', (m, out) => {
      if (m.data === 'wrong') out.hincr('total', 'x');
      else countSeen(m, out);
    });
    c.on('batch', (e) => events.push(e));
    await p.publish('types', 'a'); // 'total' becomes a string
    await eventually(async () => (await totals(f, 'types', 1)) === 1, 'first applied');
    await Promise.all(['b', 'wrong', 'c'].map((d) => p.publish('types', d)));
    await eventually(
      async () => (await readDeadLetters(f.redis, f.mkeys, 'types', 0)).length === 1,
      'the wrong write dead-lettered',
    );
    const [dead] = await readDeadLetters(f.redis, f.mkeys, 'types', 0);
    expect(dead?.data).toBe('wrong');
    expect(dead?.reason).toMatch(/holds a string; the write needs a hash/);
    expect(await totals(f, 'types', 1)).toBe(3);
    await eventually(() => events.reduce((s, e) => s + e.applied, 0) === 3, 'three reported');
  });

  it('sums increments of one key exactly and flags only the increment that overflows', async () => {
    const f = await fixture();
    await f.topics.ensure('sums', { partitions: 1 });
    // 500 below the largest 64-bit integer: the first +500 fits, the second overflows.
    await f.redis.set(f.mkeys.output('sums', 0, 'big'), '9223372036854775000');
    const p = producer(f);
    // Published before the consumer starts, so they arrive as one batch: runs of increments
    // of 'sum' around a run on 'big' whose summed increment fails.
    const data = ['sum:7', 'sum:-3', 'sum:100000000000000', 'big:500', 'big:500', 'sum:5'];
    for (const d of data) await p.publish('sums', d);
    const events: BatchEvent[] = [];
    const c = await consumer(f, 'sums', (m, out) => {
      const [name, by] = m.data.split(':') as [string, string];
      out.incr(name, Number(by));
    });
    c.on('batch', (e) => events.push(e));
    await eventually(() => events.reduce((s, e) => s + e.applied, 0) === data.length, 'applied');
    expect(await f.redis.get(f.mkeys.output('sums', 0, 'sum'))).toBe('100000000000009');
    expect(await f.redis.get(f.mkeys.output('sums', 0, 'big'))).toBe('9223372036854775500');
    expect(events.reduce((s, e) => s + e.writeErrors, 0)).toBe(1);
  });

  it('applies two stream entries with the same idempotency key once', async () => {
    const f = await fixture();
    await f.topics.ensure('twice', { partitions: 1 });
    // As if the producer's dedup record had expired before a retry: the key is in both.
    const stream = f.mkeys.stream('twice', 0);
    await f.redis.xadd(stream, '*', 'd', 'pay', 't', Date.now(), 'k', 'order-9');
    await f.redis.xadd(stream, '*', 'd', 'pay', 't', Date.now(), 'k', 'order-9');
    const events: BatchEvent[] = [];
    const c = await consumer(f, 'twice', countSeen);
    c.on('batch', (e) => events.push(e));
    await eventually(
      () => events.reduce((s, e) => s + e.applied + e.duplicates, 0) === 2,
      'both entries handled',
    );
    expect(events.reduce((s, e) => s + e.duplicates, 0)).toBe(1);
    expect(await totals(f, 'twice', 1)).toBe(1);
  });

  it('keeps streams and dedup tables within their retention bounds', async () => {
    const f = await fixture();
    await f.topics.ensure('ret', { partitions: 1, maxLen: 200, dedupMax: 50 });
    const p = producer(f);
    const n = 3000;
    for (let i = 0; i < n; i += 500)
      await Promise.all(
        Array.from({ length: 500 }, (_, j) => p.publish('ret', 'x', { key: `k${i + j}` })),
      );
    // MAXLEN ~ trims whole stream nodes (stream-node-max-entries = 100), so "about 200".
    const len = await f.redis.xlen(f.mkeys.stream('ret', 0));
    expect(len).toBeGreaterThanOrEqual(200);
    expect(len).toBeLessThanOrEqual(300);
    expect(await f.redis.zcard(f.mkeys.publishAt('ret', 0))).toBeLessThanOrEqual(51);
    expect(await f.redis.hlen(f.mkeys.publishIds('ret', 0))).toBeLessThanOrEqual(51);
    await consumer(f, 'ret', countSeen);
    await eventually(
      async () => (await totals(f, 'ret', 1)) >= len,
      'the retained messages consumed',
    );
    expect(await f.redis.zcard(f.mkeys.done('ret', 0, 'g'))).toBeLessThanOrEqual(50);
  });

  it('trims messages older than the age bound', async () => {
    const f = await fixture({ 'messaging.linger_ms': 0 });
    await f.topics.ensure('aged', { partitions: 1, maxAgeMs: 1 });
    const p = producer(f);
    for (let i = 0; i < 300; i++) await p.publish('aged', `m${i}`);
    // Everything but the newest stream node (<= 100 entries) is older than 1 ms.
    expect(await f.redis.xlen(f.mkeys.stream('aged', 0))).toBeLessThanOrEqual(100);
  });

  it('applies a changed batch size to running producers and consumers', async () => {
    const f = await fixture({ 'messaging.linger_ms': 200 });
    await f.topics.ensure('knob', { partitions: 1 });
    const p = producer(f);
    const flushes: FlushEvent[] = [];
    p.on('flush', (e) => flushes.push(e));
    await Promise.all(Array.from({ length: 128 }, (_, i) => p.publish('knob', `a${i}`)));
    expect(flushes.map((e) => e.size)).toEqual([64, 64]);
    const batches: BatchEvent[] = [];
    const c = await consumer(f, 'knob', countSeen);
    c.on('batch', (e) => batches.push(e));
    await eventually(() => batches.reduce((s, e) => s + e.applied, 0) === 128, 'first applied');
    expect(Math.max(...batches.map((e) => e.size))).toBe(64);

    await f.setKnob('messaging.batch_size', 8);
    await eventually(() => f.knobs.get('messaging.batch_size') === 8, 'knob client sees 8');
    flushes.length = 0;
    batches.length = 0;
    await Promise.all(Array.from({ length: 40 }, (_, i) => p.publish('knob', `b${i}`)));
    expect(flushes.map((e) => e.size)).toEqual([8, 8, 8, 8, 8]);
    await eventually(() => batches.reduce((s, e) => s + e.applied, 0) === 40, 'next 40 applied');
    expect(await totals(f, 'knob', 1)).toBe(168);
    expect(Math.max(...batches.map((e) => e.size))).toBeLessThanOrEqual(8);
  });

  it('applies a changed linger to a running producer', async () => {
    const f = await fixture({ 'messaging.linger_ms': 0 });
    await f.topics.ensure('linger', { partitions: 1 });
    const p = producer(f);
    const flushes: number[] = [];
    p.on('flush', (e) => flushes.push(e.size));
    // No linger: the first message leaves at once and the others follow without waiting for a
    // batch to fill: never one batch of three. (Whether the last two share a batch depends on
    // how fast the first round trip returns, so that is not asserted.)
    await Promise.all([1, 2, 3].map((i) => p.publish('linger', `a${i}`)));
    expect(flushes[0]).toBe(1);
    expect(flushes.reduce((a, b) => a + b, 0)).toBe(3);
    await f.setKnob('messaging.linger_ms', 250);
    await eventually(() => f.knobs.get('messaging.linger_ms') === 250, 'knob client sees 250');
    flushes.length = 0;
    // Lingering: all three wait in one batch (flush() sends it without waiting the 250 ms).
    const sent = Promise.all([1, 2, 3].map((i) => p.publish('linger', `b${i}`)));
    await p.flush();
    await sent;
    expect(flushes).toEqual([3]);
  });

  it('grows a topic when the partitions knob goes up, and running consumers follow', async () => {
    const f = await fixture();
    await f.topics.ensure('grow', { partitions: 2 });
    const p = producer(f);
    await p.publish('grow', 'before');
    const c = await consumer(f, 'grow', countSeen);
    expect(c.partitions()).toEqual([0, 1]);
    await f.setKnob('messaging.partitions', 8);
    await eventually(async () => (await f.topics.get('grow')).partitions === 8, 'topic grown');
    await eventually(() => c.partitions().length === 8, 'consumer serves 8 partitions');
    const acks = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        p.publish('grow', `after${i}`, { partitionKey: `${i}` }),
      ),
    );
    expect(acks.some((a) => a.partition >= 2)).toBe(true);
    await eventually(async () => (await totals(f, 'grow', 8)) === 41, 'all applied');
    await expect(f.topics.grow('grow', 3)).rejects.toBeInstanceOf(ShrinkRefusedError);
  });

  it('refuses bad input with typed errors', async () => {
    const f = await fixture();
    const p = producer(f);
    await expect(p.publish('nope', 'x')).rejects.toBeInstanceOf(TopicNotFoundError);
    await expect(f.topics.ensure('bad topic')).rejects.toBeInstanceOf(MessagingOptionError);
    await f.topics.ensure('ok', { partitions: 2 });
    await expect(p.publish('ok', 'x', { partition: 2 })).rejects.toMatchObject({
      code: 'KNOBOS_MESSAGING_INVALID',
      field: 'partition',
    });
    await expect(consumer(f, 'ok', countSeen, { group: 'a:b{c}' })).rejects.toBeInstanceOf(
      MessagingOptionError,
    );
    // A handler that is not a function (a caller without the types) and a bad consumer name
    // are refused before anything is created (review: every message was dead-lettered).
    const base = {
      redis: f.redis,
      keys: f.mkeys,
      knobs: f.knobs,
      topic: 'ok',
      group: 'fresh',
      handler: countSeen,
    };
    for (const [field, over] of [
      ['handler', { handler: undefined }],
      ['name', { name: '' }],
      ['name', { name: 'a b' }],
    ] as const)
      await expect(
        Consumer.start({ ...base, ...over } as unknown as ConsumerOptions),
      ).rejects.toMatchObject({ code: 'KNOBOS_MESSAGING_INVALID', field });
    for (const part of [0, 1]) expect(await f.redis.exists(f.mkeys.stream('ok', part))).toBe(0);
    // A write to a name that cannot be a key is the handler's failure: retried, then dead.
    await consumer(
      f,
      'ok',
      (_m, out) => {
        out.hset('bad name', 'f', 1);
      },
      { visibilityMs: 20, claimIntervalMs: 10, maxDeliveries: 2 },
    );
    await p.publish('ok', 'y', { partition: 0 });
    await eventually(
      async () => (await readDeadLetters(f.redis, f.mkeys, 'ok', 0)).length === 1,
      'dead-lettered after the refused write',
    );
    const [dead] = await readDeadLetters(f.redis, f.mkeys, 'ok', 0);
    expect(dead?.reason).toMatch(/output\.name/);
  });

  it('writes per-second metrics and arrival traces the simulator can replay', async () => {
    const f = await fixture();
    await f.topics.ensure('tele', { partitions: 2 });
    const telemetry = new MessagingTelemetry({
      redis: f.redis,
      keys: f.keys,
      instance: 'test',
      traceSampleRate: 1,
    });
    const p = producer(f, { telemetry });
    const c = await consumer(f, 'tele', countSeen, { telemetry });
    await Promise.all(Array.from({ length: 50 }, (_, i) => p.publish('tele', `payload-${i}`)));
    await p.publish('tele', 'dup', { key: 'd' });
    await p.publish('tele', 'dup', { key: 'd' });
    await eventually(async () => (await totals(f, 'tele', 2)) === 51, 'consumed');
    await telemetry.arrivals.flush();
    const fields = await telemetry.metrics.flush();
    expect(fields['produced']).toBe(51);
    expect(fields['publish_duplicates']).toBe(1);
    expect(fields['consumed']).toBe(51);
    expect(fields['acked']).toBe(51);
    expect(fields['produced_per_s']).toBeGreaterThan(0);
    expect(fields['e2e_latency_ms_count']).toBe(51);
    const stored = await telemetryEntries(f.redis, f.keys, 'messaging', 0, Date.now() + 1000);
    expect(stored.at(-1)?.fields['consumed']).toBe('51');

    const arrivals = await readArrivals(f.redis, f.keys, { topic: 'tele' });
    expect(arrivals).toHaveLength(51);
    expect(arrivals[0]).toMatchObject({ topic: 'tele', bytes: 'payload-0'.length });
    const msgs = arrivalsToMessages(arrivals);
    checkMessages(msgs);
    const metrics = simulateMessaging(
      fixedSource('live', msgs),
      { batchSize: 8, lingerMs: 5, partitions: 2 },
      1,
    );
    expect(metrics['throughput_per_s']).toBeGreaterThan(0);
    await c.stop();
  });
});
