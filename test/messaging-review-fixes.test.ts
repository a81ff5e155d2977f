// Review findings of the messaging service, each against a real redis-server: integer-only
// timings, handlers rejecting with non-Errors, knob raises missed by every cache, the
// producer's buffer (Fifo) and input checks, claim rounds' dead letters in batch events,
// capped backoffs, commit retries after a lost reply, option checks, and group recreation
// that cannot re-apply messages older than the dedup retention.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Consumer, type ConsumerOptions } from '../controlplane/messaging/consumer.ts';
import { readDeadLetters } from '../controlplane/messaging/dead-letters.ts';
import {
  BackpressureError,
  MessagingOptionError,
  PublishFailedError,
} from '../controlplane/messaging/errors.ts';
import { Fifo } from '../controlplane/messaging/fifo.ts';
import type { BatchEvent, Handler } from '../controlplane/messaging/partition-worker.ts';
import { Producer, type ProducerOptions } from '../controlplane/messaging/producer.ts';
import { messagingScripts } from '../controlplane/messaging/scripts.ts';
import { Topics } from '../controlplane/messaging/topics.ts';
import { messagingSuite, type MessagingFixture } from './helpers/messaging-fixture.ts';
import { eventually } from './helpers/redis.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const countSeen: Handler = (m, out) => {
  out.hincr('seen', m.data);
};

/** Calls an option check that may throw synchronously or reject; its error. */
async function failure(call: () => unknown): Promise<unknown> {
  try {
    await call();
  } catch (err) {
    return err;
  }
  return undefined;
}

/**
 * Records the delays of setTimeout calls made directly from `file` (not from a library it
 * calls) and runs them at once, so backoffs can be read without waiting for them.
 */
function recordDelays(file: string): number[] {
  const delays: number[] = [];
  const real = globalThis.setTimeout;
  vi.spyOn(globalThis, 'setTimeout').mockImplementation(((
    fn: () => void,
    ms?: number,
    ...args: unknown[]
  ) => {
    const frames = (new Error().stack ?? '').split('\n');
    const caller = frames[frames.findIndex((l) => l.includes('@vitest/spy')) + 1] ?? '';
    if (caller.includes(file)) {
      delays.push(ms ?? 0);
      return real(fn, 0);
    }
    return real(fn, ms, ...args);
  }) as typeof setTimeout);
  return delays;
}

describe('messaging review fixes on single redis', () => {
  const { fixture, producer, consumer, consumerOptions: opts } = messagingSuite('single');
  afterEach(() => {
    vi.restoreAllMocks();
  });
  async function seen(f: MessagingFixture, topic: string): Promise<Record<string, string>> {
    return f.redis.hgetall(f.mkeys.output(topic, 0, 'seen'));
  }

  it('(1) derives integer timings and refuses fractional ones, naming the field', async () => {
    const f = await fixture();
    await f.topics.ensure('odd', { partitions: 1 });
    const p = producer(f);
    await Promise.all(['a', 'b', 'c'].map((d) => p.publish('odd', d)));
    // visibilityMs / 2 = 500.5 made every blocking read fail ("timeout is not an integer").
    await consumer(f, 'odd', countSeen, { visibilityMs: 1001 });
    await eventually(
      async () => Object.keys(await seen(f, 'odd')).length === 3,
      'all read with an odd visibilityMs',
      3_000,
    );
    const fractional: Partial<ConsumerOptions>[] = [
      { visibilityMs: 100.5 },
      { maxDeliveries: 2.5 },
      { blockMs: 1.5 },
      { claimIntervalMs: 10.5 },
      { maxClaimRounds: 1.5 },
      { deadMaxLen: 1.5 },
      { commitAttempts: 2.5 },
      { topicRefreshMs: 100.5 },
    ];
    for (const extra of fractional) {
      const field = Object.keys(extra)[0] as string;
      const err = await failure(() => Consumer.start(opts(f, 'odd', () => {}, extra)));
      expect(err, field).toBeInstanceOf(MessagingOptionError);
      expect(err).toMatchObject({ field, rule: expect.stringMatching(/integer/) as unknown });
    }
  });

  it('(2) dead-letters a message whose handler rejects with a non-Error, alone', async () => {
    const f = await fixture();
    await f.topics.ensure('reject', { partitions: 1 });
    const p = producer(f);
    await Promise.all(['u', 'n', 'o', 'x', 'y'].map((d) => p.publish('reject', d)));
    const events: BatchEvent[] = [];
    const c = await consumer(
      f,
      'reject',
      async (m, out) => {
        if (m.data === 'u') return Promise.reject(undefined);
        if (m.data === 'n') return Promise.reject(null);
        // String() of it throws: no toString.
        if (m.data === 'o') return Promise.reject(Object.create(null));
        out.hincr('seen', m.data);
      },
      { maxDeliveries: 1 },
    );
    c.on('batch', (e) => events.push(e));
    await eventually(
      async () => (await readDeadLetters(f.redis, f.mkeys, 'reject', 0)).length === 3,
      'the three rejected messages dead-lettered',
      3_000,
    );
    expect(await seen(f, 'reject')).toEqual({ x: '1', y: '1' });
    const dead = await readDeadLetters(f.redis, f.mkeys, 'reject', 0);
    expect(Object.fromEntries(dead.map((d) => [d.data, d.reason]))).toEqual({
      u: 'handler: undefined',
      n: 'handler: null',
      o: 'handler: [object Object]',
    });
    expect(events.reduce((s, e) => s + e.applied, 0)).toBe(2);
    expect(events.reduce((s, e) => s + e.failed, 0)).toBe(3);
  });

  it('(3) grows a topic on load when the partitions knob went up while nobody cached it', async () => {
    const f = await fixture();
    await f.topics.ensure('missed', { partitions: 2 });
    await f.setKnob('messaging.partitions', 8);
    await eventually(() => f.knobs.get('messaging.partitions') === 8, 'knob client sees 8');
    // Nothing had 'missed' cached when the knob went up.
    const c = await consumer(f, 'missed', countSeen);
    expect((await f.topics.get('missed')).partitions).toBe(8);
    expect(c.partitions()).toHaveLength(8);
    // A topic made small on purpose after the raise is left as made.
    await f.topics.ensure('small', { partitions: 2 });
    const s = await consumer(f, 'small', countSeen);
    expect(s.partitions()).toEqual([0, 1]);
    expect((await f.topics.get('small')).partitions).toBe(2);
  });

  it('(4) keeps no taken item in the producer queue', () => {
    const q = new Fifo<{ n: number }>();
    const internal = () => (q as unknown as { items: unknown[] }).items;
    const all = Array.from({ length: 10 }, (_, n) => ({ n }));
    for (const x of all) q.push(x);
    const first = q.take(4);
    expect(first).toEqual(all.slice(0, 4));
    for (const x of first) expect(internal()).not.toContain(x);
    expect(q.peek()).toBe(all[4]);
    expect(q.size).toBe(6);
    const rest = q.take(100);
    expect(rest).toEqual(all.slice(4));
    expect(internal()).toHaveLength(0);
    expect(q.size).toBe(0);
    q.push({ n: 99 });
    expect(q.take(1)).toEqual([{ n: 99 }]);
  });

  it('(5) refuses non-string keys and partition keys, and bad topic names, naming the field', async () => {
    const f = await fixture();
    await f.topics.ensure('typed', { partitions: 2 });
    const p = producer(f);
    const bad: [string, () => Promise<unknown>][] = [
      ['key', () => p.publish('typed', 'x', { key: 5 as unknown as string })],
      ['key', () => p.publish('typed', 'x', { key: { length: 3 } as unknown as string })],
      ['partitionKey', () => p.publish('typed', 'x', { partitionKey: 5 as unknown as string })],
      ['partition', () => p.publish('typed', 'x', { partition: '1' as unknown as number })],
      ['topic', () => p.publish('a b', 'x')],
      ['topic', () => p.publish(5 as unknown as string, 'x')],
    ];
    for (const [field, call] of bad) {
      const err = await failure(call);
      expect(err, field).toBeInstanceOf(MessagingOptionError);
      expect(err).toMatchObject({ code: 'KNOBOS_MESSAGING_INVALID', field });
    }
    expect(await f.redis.xlen(f.mkeys.stream('typed', 0))).toBe(0);
    expect(await f.redis.xlen(f.mkeys.stream('typed', 1))).toBe(0);
  });

  it('(6) reports in the batch event what a claim round both dead-lettered and handed out', async () => {
    const f = await fixture();
    await f.topics.ensure('claimdead', { partitions: 1 });
    const p = producer(f);
    const first = await p.publish('claimdead', 'worn');
    await p.publish('claimdead', 'fresh');
    // A crashed consumer holds both; the first is past its delivery limit.
    const stream = f.mkeys.stream('claimdead', 0);
    await f.redis.xgroup('CREATE', stream, 'g', '0', 'MKSTREAM');
    await f.redis.call('XREADGROUP', 'GROUP', 'g', 'crashed', 'COUNT', 10, 'STREAMS', stream, '>');
    await f.redis.call('XCLAIM', stream, 'g', 'crashed', 0, first.id, 'RETRYCOUNT', 7);
    await sleep(30);
    const events: BatchEvent[] = [];
    const c = await consumer(f, 'claimdead', countSeen, {
      maxDeliveries: 3,
      visibilityMs: 20,
      claimIntervalMs: 10,
    });
    c.on('batch', (e) => events.push(e));
    await eventually(async () => (await seen(f, 'claimdead'))['fresh'] === '1', 'fresh applied');
    expect((await readDeadLetters(f.redis, f.mkeys, 'claimdead', 0)).map((d) => d.data)).toEqual([
      'worn',
    ]);
    await eventually(
      () => events.reduce((s, e) => s + e.deadLettered, 0) === 1,
      'the dead letter reported',
      2_000,
    );
    expect(events.find((e) => e.applied === 1)).toMatchObject({
      source: 'claim',
      size: 1,
      deadLettered: 1,
    });
  });

  it('(7) caps the publish backoff and bounds attempts', async () => {
    const f = await fixture();
    await f.topics.ensure('backoff', { partitions: 1 });
    const badProducer: Partial<ProducerOptions>[] = [
      { maxAttempts: Infinity },
      { maxAttempts: 101 },
      { maxAttempts: 2.5 },
      { retryBaseMs: 0 },
      { retryBaseMs: 1.5 },
      { retryBaseMs: 5_000 },
      { retryBaseMs: NaN },
    ];
    for (const extra of badProducer) {
      const field = Object.keys(extra)[0] as string;
      const err = await failure(
        () => new Producer({ redis: f.redis, keys: f.mkeys, knobs: f.knobs, ...extra }),
      );
      expect(err, field).toBeInstanceOf(MessagingOptionError);
      expect(err).toMatchObject({ field });
    }
    await expect(
      Consumer.start(opts(f, 'backoff', () => {}, { commitAttempts: 21 })),
    ).rejects.toMatchObject({ field: 'commitAttempts' });
    const p = producer(f, { maxAttempts: 6, retryBaseMs: 1_000 });
    await p.publish('backoff', 'warm'); // the row is cached: no load in the way
    vi.spyOn(messagingScripts, 'run').mockRejectedValue(new Error('connection lost'));
    const delays = recordDelays('producer.ts');
    await expect(p.publish('backoff', 'x')).rejects.toBeInstanceOf(PublishFailedError);
    const backoffs = delays.filter((d) => d >= 1_000);
    expect(backoffs).toEqual([1_000, 2_000, 2_000, 2_000, 2_000]);
  });

  it('(7) caps the commit backoff', async () => {
    const f = await fixture();
    await f.topics.ensure('cbackoff', { partitions: 1 });
    await producer(f).publish('cbackoff', 'x');
    const run = messagingScripts.run.bind(messagingScripts);
    let commits = 0;
    vi.spyOn(messagingScripts, 'run').mockImplementation(async (client, name, keys, argv) => {
      if (name === 'commit') {
        commits++;
        throw new Error('connection lost');
      }
      return run(client, name, keys, argv);
    });
    const delays = recordDelays('partition-worker.ts');
    await consumer(f, 'cbackoff', countSeen, { commitAttempts: 8 });
    await eventually(() => commits >= 8, 'eight commit attempts', 5_000);
    // 50, 100, ..., 1600, then capped (3200 before).
    expect(delays.slice(0, 7)).toEqual([50, 100, 200, 400, 800, 1_600, 2_000]);
  });

  it('(8) counts a commit whose reply was lost as applied on its retry', async () => {
    const f = await fixture();
    await f.topics.ensure('lostack', { partitions: 1 });
    const p = producer(f);
    await p.publish('lostack', 'old', { key: 'k-old' });
    await Promise.all(['a', 'b', 'c'].map((d) => p.publish('lostack', d)));
    // 'old' was applied long ago (its record predates this batch): a true duplicate.
    const done = f.mkeys.done('lostack', 0, 'g');
    await f.redis.zadd(done, Date.now() - 60_000, 'k:k-old');
    // Two entries of one identity (as a keyed retry after the producer's dedup expired): the
    // lost attempt applied the first; the second stays a duplicate on the retry.
    const stream = f.mkeys.stream('lostack', 0);
    for (let i = 0; i < 2; i++)
      await f.redis.xadd(stream, '*', 'd', 'twin', 'k', 'twin', 't', String(Date.now()));
    const run = messagingScripts.run.bind(messagingScripts);
    let commits = 0;
    vi.spyOn(messagingScripts, 'run').mockImplementation(async (client, name, keys, argv) => {
      const reply = await run(client, name, keys, argv);
      if (name === 'commit' && ++commits === 1) throw new Error('connection lost');
      return reply;
    });
    const events: BatchEvent[] = [];
    const c = await consumer(f, 'lostack', countSeen);
    c.on('batch', (e) => events.push(e));
    await eventually(() => events.length > 0, 'the batch committed');
    expect(commits).toBe(2); // one batch, committed twice
    expect(events).toEqual([
      expect.objectContaining({ size: 6, applied: 4, duplicates: 2, stale: 0 }) as unknown,
    ]);
    expect(await seen(f, 'lostack')).toEqual({ a: '1', b: '1', c: '1', twin: '1' });
  });

  it('(9) refuses empty or non-array partitions and bad refresh periods', async () => {
    const f = await fixture();
    await f.topics.ensure('opts9', { partitions: 2 });
    const listeners = f.knobs.listenerCount('change');
    const bad: Partial<ConsumerOptions>[] = [
      { partitions: [] },
      { partitions: 1 as unknown as number[] },
      { partitions: ['0'] as unknown as number[] },
      { topicRefreshMs: -1 },
      { topicRefreshMs: NaN },
    ];
    for (const extra of bad) {
      const field = Object.keys(extra)[0] as string;
      const err = await failure(() => Consumer.start(opts(f, 'opts9', () => {}, extra)));
      expect(err, JSON.stringify(extra)).toBeInstanceOf(MessagingOptionError);
      expect(err).toMatchObject({ field });
      expect(f.knobs.listenerCount('change')).toBe(listeners);
    }
    for (const topicRefreshMs of [-1, 1.5]) {
      const err = await failure(
        () => new Producer({ redis: f.redis, keys: f.mkeys, knobs: f.knobs, topicRefreshMs }),
      );
      expect(err).toMatchObject({ field: 'topicRefreshMs' });
    }
    expect(f.knobs.listenerCount('change')).toBe(listeners);
  });

  it('(9) counts publishes waiting for a topic first load against maxBuffered', async () => {
    const f = await fixture();
    await f.topics.ensure('burst', { partitions: 1 });
    // The row's first load hangs until opened (a slow or unreachable Redis).
    const topics = new Topics(f.redis, f.mkeys, { knobs: f.knobs });
    let open = () => {};
    const gate = new Promise<void>((r) => (open = r));
    const get = topics.get.bind(topics);
    vi.spyOn(topics, 'get').mockImplementation(async (name) => {
      await gate;
      return get(name);
    });
    const p = producer(f, { maxBuffered: 5, topics });
    const outcome: string[] = [];
    const all = Array.from({ length: 20 }, (_, i) =>
      p.publish('burst', `m${i}`).then(
        () => outcome.push('stored'),
        (e: unknown) => outcome.push(e instanceof BackpressureError ? 'refused' : String(e)),
      ),
    );
    await sleep(50);
    // Refused at once, not held (with their payloads) until the load ends.
    expect(outcome).toEqual(Array.from({ length: 15 }, () => 'refused'));
    open();
    await Promise.all(all);
    expect(outcome.filter((o) => o === 'stored')).toHaveLength(5);
    expect(await f.redis.xlen(f.mkeys.stream('burst', 0))).toBe(5);
  });

  it('(10) recreates a lost group past what its dedup records cover, never re-applying', async () => {
    const f = await fixture();
    // The dedup retention far shorter than the stream's: 'a' outlives its record.
    await f.topics.ensure('regroup', { partitions: 1, dedupMs: 300 });
    const stream = f.mkeys.stream('regroup', 0);
    const done = f.mkeys.done('regroup', 0, 'g');
    const p = producer(f);
    const c = await consumer(f, 'regroup', countSeen, { blockMs: 50 });
    const a = await p.publish('regroup', 'a');
    await eventually(async () => (await seen(f, 'regroup'))['a'] === '1', 'a applied');
    await sleep(400);
    await p.publish('regroup', 'b');
    await eventually(async () => (await seen(f, 'regroup'))['b'] === '1', 'b applied');
    expect(await f.redis.zscore(done, a.id)).toBeNull(); // trimmed by b's commit
    // The group is lost while the consumer reads (NOGROUP): it makes it again.
    await f.redis.xgroup('DESTROY', stream, 'g');
    await eventually(
      async () => ((await f.redis.xinfo('GROUPS', stream)) as unknown[]).length === 1,
      'group recreated',
    );
    await p.publish('regroup', 'c');
    await eventually(async () => (await seen(f, 'regroup'))['c'] === '1', 'c applied');
    await sleep(300);
    expect(await seen(f, 'regroup')).toEqual({ a: '1', b: '1', c: '1' });
    // Lost while no consumer ran: the next start sees the dedup records and does the same.
    await c.stop();
    await sleep(400);
    await f.redis.xgroup('DESTROY', stream, 'g');
    await consumer(f, 'regroup', countSeen, { blockMs: 50 });
    await p.publish('regroup', 'd');
    await eventually(async () => (await seen(f, 'regroup'))['d'] === '1', 'd applied');
    await sleep(300);
    expect(await seen(f, 'regroup')).toEqual({ a: '1', b: '1', c: '1', d: '1' });
  });
});
