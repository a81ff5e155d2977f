// Bad input and partial failures of the messaging service against a real redis-server:
// numeric write arguments refused at the Output call (the message is retried and
// dead-lettered, not acknowledged with its write lost), a consumer that fails to start
// leaves nothing running, and a producer's own resend of a batch whose reply was lost
// reports each message as the attempt that stored it did.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Consumer, type ConsumerOptions } from '../controlplane/messaging/consumer.ts';
import { readDeadLetters } from '../controlplane/messaging/dead-letters.ts';
import { MessagingOptionError } from '../controlplane/messaging/errors.ts';
import { Output } from '../controlplane/messaging/output.ts';
import type { BatchEvent, Handler } from '../controlplane/messaging/partition-worker.ts';
import type { FlushEvent } from '../controlplane/messaging/producer.ts';
import { messagingScripts } from '../controlplane/messaging/scripts.ts';
import { MessagingTelemetry } from '../controlplane/messaging/telemetry.ts';
import { readArrivals } from '../controlplane/messaging/trace.ts';
import { messagingSuite, type MessagingFixture } from './helpers/messaging-fixture.ts';
import { eventually } from './helpers/redis.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('messaging input checks and partial failures on single redis', () => {
  const { fixture, producer, track } = messagingSuite('single');
  afterEach(() => {
    vi.restoreAllMocks();
  });
  function consumerOpts(
    f: MessagingFixture,
    topic: string,
    handler: Handler,
    extra: Partial<ConsumerOptions> = {},
  ): ConsumerOptions {
    return { redis: f.redis, keys: f.mkeys, knobs: f.knobs, topic, group: 'g', handler, ...extra };
  }
  async function clientCount(f: MessagingFixture): Promise<number> {
    const list = (await f.redis.client('LIST')) as string;
    return list.trim().split('\n').length;
  }

  it('refuses non-finite, unsafe and non-positive numeric write arguments, naming the field', () => {
    const o = new Output();
    const refused: [string, () => unknown][] = [
      ['incr.by', () => o.incr('a', NaN)],
      ['incr.by', () => o.incr('a', Infinity)],
      ['incr.by', () => o.incr('a', 2 ** 60)],
      ['hincr.by', () => o.hincr('h', 'f', -Infinity)],
      ['hincr.by', () => o.hincr('h', 'f', 1e21)],
      ['zincr.by', () => o.zincr('z', 'm', NaN)],
      ['expire.ttlMs', () => o.expire('a', 0)],
      ['expire.ttlMs', () => o.expire('a', -1)],
      ['expire.ttlMs', () => o.expire('a', 1.5)],
      ['expire.ttlMs', () => o.expire('a', NaN)],
      ['append.maxLen', () => o.append('s', { x: 1 }, 0)],
      ['append.maxLen', () => o.append('s', { x: 1 }, 2.5)],
      ['append.maxLen', () => o.append('s', { x: 1 }, Infinity)],
    ];
    for (const [field, call] of refused) {
      let err: unknown;
      try {
        call();
      } catch (e) {
        err = e;
      }
      expect(err, field).toBeInstanceOf(MessagingOptionError);
      expect(err).toMatchObject({ code: 'KNOBOS_MESSAGING_INVALID', field });
    }
    expect(o.writes).toHaveLength(0); // nothing of a refused call is kept
    o.incr('a', -7)
      .incr('a', 0.25)
      .hincr('h', 'f', 2 ** 53 - 1)
      .zincr('z', 'm', 1e21);
    o.expire('a', 1).append('s', { x: 1 }, 1);
    expect(o.writes.map((w) => w.command)).toEqual([
      'INCRBY',
      'INCRBYFLOAT',
      'HINCRBY',
      'ZINCRBY',
      'PEXPIRE',
      'XADD',
    ]);
  });

  it('dead-letters a message whose write argument is bad instead of acknowledging it', async () => {
    const f = await fixture();
    await f.topics.ensure('bad-args', { partitions: 1 });
    const state = f.mkeys.output('bad-args', 0, 'state');
    await f.redis.set(state, 'precious');
    const events: BatchEvent[] = [];
    const c = await Consumer.start(
      consumerOpts(
        f,
        'bad-args',
        (m, out) => {
          out.incr('handled');
          if (m.data === 'neg-ttl') out.expire('state', -1);
          else if (m.data === 'nan') out.incr('cnt', NaN);
        },
        { visibilityMs: 20, claimIntervalMs: 10, maxDeliveries: 2 },
      ),
    );
    track(c);
    c.on('batch', (e) => events.push(e));
    const p = producer(f);
    await p.publish('bad-args', 'neg-ttl');
    await p.publish('bad-args', 'nan');
    await p.publish('bad-args', 'fine');
    await eventually(
      async () => (await readDeadLetters(f.redis, f.mkeys, 'bad-args', 0)).length === 2,
      'both bad messages dead-lettered',
    );
    const dead = await readDeadLetters(f.redis, f.mkeys, 'bad-args', 0);
    expect(dead.map((d) => d.data).sort()).toEqual(['nan', 'neg-ttl']);
    expect(dead.find((d) => d.data === 'neg-ttl')?.reason).toMatch(/expire\.ttlMs/);
    expect(dead.find((d) => d.data === 'nan')?.reason).toMatch(/incr\.by/);
    // The negative TTL did not delete the key; only the good message's writes were applied.
    expect(await f.redis.get(state)).toBe('precious');
    expect(await f.redis.get(f.mkeys.output('bad-args', 0, 'handled'))).toBe('1');
    expect(await f.redis.exists(f.mkeys.output('bad-args', 0, 'cnt'))).toBe(0);
    expect(events.reduce((s, e) => s + e.applied, 0)).toBe(1);
    expect(events.reduce((s, e) => s + e.writeErrors, 0)).toBe(0);
    expect(events.reduce((s, e) => s + e.failed, 0)).toBeGreaterThanOrEqual(4);
  });

  it('checks every consumer option before creating anything', async () => {
    const f = await fixture();
    await f.topics.ensure('opts', { partitions: 2 });
    const listeners = f.knobs.listenerCount('change');
    const telemetryStart = vi.spyOn(MessagingTelemetry.prototype, 'start');
    const bad: Partial<ConsumerOptions>[] = [
      { visibilityMs: 1 },
      { maxDeliveries: 0 },
      { blockMs: NaN },
      { commitAttempts: 1000 },
      { partitions: [-1] },
      { partitions: [2] }, // out of range: known only once the topic row is read
    ];
    for (const extra of bad) {
      await expect(
        Consumer.start(consumerOpts(f, 'opts', () => {}, extra)),
        JSON.stringify(extra),
      ).rejects.toBeInstanceOf(MessagingOptionError);
      expect(f.knobs.listenerCount('change'), JSON.stringify(extra)).toBe(listeners);
    }
    expect(telemetryStart).not.toHaveBeenCalled();
  });

  it('stops what it started when a partition fails to start, and rethrows', async () => {
    const f = await fixture();
    await f.topics.ensure('half', { partitions: 3 });
    // Partition 1's stream key holds a string: making its group fails with WRONGTYPE.
    await f.redis.set(f.mkeys.stream('half', 1), 'not a stream');
    const listeners = f.knobs.listenerCount('change');
    const clients = await clientCount(f);
    const telemetryStop = vi.spyOn(MessagingTelemetry.prototype, 'stop');
    let handled = 0;
    await expect(
      Consumer.start(
        consumerOpts(f, 'half', (_m, out) => {
          handled++;
          out.incr('n');
        }),
      ),
    ).rejects.toThrow(/WRONGTYPE/);
    expect(f.knobs.listenerCount('change')).toBe(listeners);
    expect(telemetryStop).toHaveBeenCalledTimes(1); // the telemetry it made for itself
    await eventually(async () => (await clientCount(f)) === clients, 'no connection left');
    // Partition 0's worker had started before partition 1 failed: it must not read on.
    const p = producer(f);
    await p.publish('half', 'x', { partition: 0 });
    await sleep(300);
    expect(handled).toBe(0);
    expect(await f.redis.exists(f.mkeys.output('half', 0, 'n'))).toBe(0);
    // A shared telemetry is the caller's: not stopped.
    telemetryStop.mockClear();
    const shared = new MessagingTelemetry({ redis: f.redis, keys: f.keys, instance: 'shared' });
    await expect(
      Consumer.start(consumerOpts(f, 'half', () => {}, { telemetry: shared })),
    ).rejects.toThrow(/WRONGTYPE/);
    expect(telemetryStop).not.toHaveBeenCalled();
  });

  it('reports a resent batch as stored by its first attempt when the reply was lost', async () => {
    const f = await fixture({ 'messaging.linger_ms': 50 });
    await f.topics.ensure('lost', { partitions: 1 });
    const stream = f.mkeys.stream('lost', 0);
    // An earlier publish with key k1 (no arrival sampled): k1 is a keyed duplicate below.
    const quiet = new MessagingTelemetry({
      redis: f.redis,
      keys: f.keys,
      instance: 'quiet',
      traceSampleRate: 0,
    });
    const first = await producer(f, { telemetry: quiet }).publish('lost', 'k1 first', {
      key: 'k1',
    });
    const telemetry = new MessagingTelemetry({
      redis: f.redis,
      keys: f.keys,
      instance: 'lost',
      traceSampleRate: 1,
    });
    const p = producer(f, { telemetry });
    const flushes: FlushEvent[] = [];
    p.on('flush', (e) => flushes.push(e));
    // The first publish.lua call is applied by Redis, but its reply is lost.
    const run = messagingScripts.run.bind(messagingScripts);
    let publishCalls = 0;
    vi.spyOn(messagingScripts, 'run').mockImplementation(async (client, name, keys, argv) => {
      const reply = await run(client, name, keys, argv);
      if (name === 'publish' && ++publishCalls === 1) throw new Error('connection lost');
      return reply;
    });
    const before = await f.redis.xlen(stream);
    const results = await Promise.all([
      p.publish('lost', 'a'),
      p.publish('lost', 'k1 again', { key: 'k1' }),
      p.publish('lost', 'b'),
    ]);
    expect(publishCalls).toBe(2); // one batch, sent twice
    expect(await f.redis.xlen(stream)).toBe(before + 2); // stored exactly once
    expect(results.map((r) => r.duplicate)).toEqual([false, true, false]);
    expect(results[1]?.id).toBe(first.id);
    const stored = await f.redis.xrange(stream, '-', '+');
    expect(results[0]?.id).toBe(stored.at(-2)?.[0]);
    expect(results[2]?.id).toBe(stored.at(-1)?.[0]);
    expect(flushes).toEqual([{ topic: 'lost', partition: 0, size: 3, duplicates: 1 }]);
    await telemetry.arrivals.flush();
    const fields = await telemetry.metrics.flush();
    expect(fields['produced']).toBe(2);
    expect(fields['publish_duplicates']).toBe(1);
    expect(await readArrivals(f.redis, f.keys, { topic: 'lost' })).toHaveLength(2);
  });
});
