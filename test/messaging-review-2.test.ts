// Second review of the messaging service, against a real redis-server: a lost group made again
// in stream-id order (dedup records scored by publish time, so a lagging consumer's backlog
// and consumer clock skew neither skip nor re-apply messages), commit retries reporting
// exactly what their lost attempt did, and topics grown on load only by a knob raised above
// the value their row saw.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Clock } from '../controlplane/knobs/clock.ts';
import { KnobClient } from '../controlplane/knobs/client.ts';
import { KnobTable } from '../controlplane/knobs/table.ts';
import type { BatchEvent, Handler } from '../controlplane/messaging/partition-worker.ts';
import { messagingScripts } from '../controlplane/messaging/scripts.ts';
import { TopicCache } from '../controlplane/messaging/topic-cache.ts';
import { messagingSuite, type MessagingFixture } from './helpers/messaging-fixture.ts';
import { eventually } from './helpers/redis.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const countSeen: Handler = (m, out) => {
  out.hincr('seen', m.data);
};

const silent = { warn: () => {}, info: () => {}, error: () => {}, debug: () => {} };

describe('messaging review 2 on single redis', () => {
  const { fixture, producer, track, consumer } = messagingSuite('single', { blockMs: 50 });
  afterEach(() => {
    vi.restoreAllMocks();
  });
  async function seen(f: MessagingFixture, topic: string): Promise<Record<string, string>> {
    return f.redis.hgetall(f.mkeys.output(topic, 0, 'seen'));
  }
  /** A fixture whose batch size is 1 (64 -> 8 -> 1: the knob moves by at most x8 a step). */
  async function batchOfOne(): Promise<MessagingFixture> {
    const f = await fixture();
    await f.setKnob('messaging.batch_size', 8);
    await f.setKnob('messaging.batch_size', 1);
    await eventually(() => f.knobs.get('messaging.batch_size') === 1, 'batch size 1');
    return f;
  }
  async function waitForGroup(f: MessagingFixture, topic: string): Promise<void> {
    const stream = f.mkeys.stream(topic, 0);
    await eventually(
      async () => ((await f.redis.xinfo('GROUPS', stream)) as unknown[]).length === 1,
      'group recreated',
    );
  }

  it('(1) applies a lagging consumer backlog once when its group is lost', async () => {
    const f = await batchOfOne();
    await f.topics.ensure('lag', { partitions: 1, dedupMax: 3 });
    const p = producer(f);
    const names = Array.from({ length: 20 }, (_, i) => `m${i}`);
    // One millisecond each: a lost group restarts after the millisecond of its oldest kept
    // record (records are scored by stream-id milliseconds).
    for (const d of names) {
      await p.publish('lag', d);
      await sleep(2);
    }
    // Slow: most of the backlog is still unread when the group is lost.
    await consumer(f, 'lag', async (m, out) => {
      out.hincr('seen', m.data);
      await sleep(30);
    });
    await sleep(200);
    await f.redis.xgroup('DESTROY', f.mkeys.stream('lag', 0), 'g');
    await eventually(
      async () => Object.keys(await seen(f, 'lag')).length === 20,
      'the whole backlog applied',
      5_000,
    );
    await sleep(200);
    const got = await seen(f, 'lag');
    expect(Object.keys(got).sort()).toEqual([...names].sort());
    expect(Object.values(got).every((v) => v === '1')).toBe(true);
  });

  it('(1b) applies a backlog published within one millisecond once when its group is lost', async () => {
    const f = await batchOfOne();
    await f.topics.ensure('burst', { partitions: 1, dedupMax: 3 });
    const names = Array.from({ length: 20 }, (_, i) => `b${i}`);
    // Published in one millisecond (as a publish batch often is): stream ids <ms>-0 .. <ms>-19.
    const ms = Date.now();
    for (const [i, d] of names.entries())
      await f.redis.xadd(f.mkeys.stream('burst', 0), `${ms}-${i}`, 'd', d, 't', String(ms));
    await consumer(f, 'burst', async (m, out) => {
      out.hincr('seen', m.data);
      await sleep(30);
    });
    await eventually(
      async () => Object.keys(await seen(f, 'burst')).length >= 5,
      'part of the backlog applied',
    );
    await f.redis.xgroup('DESTROY', f.mkeys.stream('burst', 0), 'g');
    // Before, the group was made again after the millisecond of its oldest kept record: the
    // rest of the burst, published in that millisecond, was skipped.
    await eventually(
      async () => Object.keys(await seen(f, 'burst')).length === 20,
      'the whole burst applied',
      5_000,
    );
    await sleep(200);
    const got = await seen(f, 'burst');
    expect(
      Object.values(got).every((v) => v === '1'),
      JSON.stringify(got),
    ).toBe(true);
  });

  it('(1c) never re-applies messages whose whole-millisecond records were partly trimmed', async () => {
    const f = await fixture();
    await f.topics.ensure('legacy', { partitions: 1 });
    const stream = f.mkeys.stream('legacy', 0);
    const done = f.mkeys.done('legacy', 0, 'g');
    const ms = Date.now();
    const names = Array.from({ length: 20 }, (_, i) => `l${i}`);
    for (const [i, d] of names.entries()) await f.redis.xadd(stream, `${ms}-${i}`, 'd', d, 't', ms);
    await consumer(f, 'legacy', countSeen);
    await eventually(async () => Object.keys(await seen(f, 'legacy')).length === 20, 'applied');
    // Records as scripts before the sequence was scored wrote them (every one at the whole
    // millisecond), then a count trim: within the tie it goes by member, so ms-0, ms-1 and
    // ms-10..17 are gone while ms-2..9, ms-18 and ms-19 stay.
    await f.redis.del(done);
    await f.redis.zadd(done, ...names.flatMap((_, i) => [ms, `${ms}-${i}`]));
    await f.redis.zremrangebyrank(done, 0, 9);
    await f.redis.xgroup('DESTROY', stream, 'g');
    await waitForGroup(f, 'legacy');
    await sleep(300);
    // Before, the group restarted at the millisecond's start: ten were applied twice.
    const got = await seen(f, 'legacy');
    expect(
      Object.values(got).every((v) => v === '1'),
      JSON.stringify(got),
    ).toBe(true);
  });

  it('(2) makes a lost group again in stream order whatever the consumer clock says', async () => {
    const f = await fixture();
    const p = producer(f);
    for (const [topic, skewMs, extra] of [
      // Ahead: with dedupMs short, now - dedupMs is past every stream id.
      ['ahead', 5_000, { dedupMs: 1_000 }],
      ['behind', -5_000, { dedupMax: 3 }],
    ] as const) {
      await f.topics.ensure(topic, { partitions: 1, ...extra });
      const clock: Clock = { now: () => Date.now() + skewMs };
      const c = await consumer(f, topic, countSeen, { clock });
      for (let i = 0; i < 6; i++) await p.publish(topic, `old${i}`);
      await eventually(async () => Object.keys(await seen(f, topic)).length === 6, 'old applied');
      await f.redis.xgroup('DESTROY', f.mkeys.stream(topic, 0), 'g');
      await waitForGroup(f, topic);
      for (let i = 0; i < 3; i++) await p.publish(topic, `new${i}`);
      await eventually(
        async () => Object.keys(await seen(f, topic)).length === 9,
        `${topic}: new messages applied`,
        3_000,
      );
      await sleep(300);
      const got = await seen(f, topic);
      expect(
        Object.values(got).every((v) => v === '1'),
        JSON.stringify(got),
      ).toBe(true);
      await c.stop(1_000);
    }
  });

  it('(3) reports a duplicate committed in the same ms as its twin as a duplicate on a retry', async () => {
    const f = await batchOfOne();
    await f.topics.ensure('twins', { partitions: 1 });
    const stream = f.mkeys.stream('twins', 0);
    // Two entries of one identity (a keyed retry after the producer's dedup expired).
    await f.redis.xadd(stream, '*', 'd', 'twin', 'k', 'twin', 't', String(Date.now()));
    const second = await f.redis.xadd(
      stream,
      '*',
      'd',
      'twin',
      'k',
      'twin',
      't',
      String(Date.now()),
    );
    const run = messagingScripts.run.bind(messagingScripts);
    let lost = 0;
    vi.spyOn(messagingScripts, 'run').mockImplementation(async (client, name, keys, argv) => {
      const reply = await run(client, name, keys, argv);
      // The second twin's first attempt runs; its reply is lost.
      if (name === 'commit' && argv.includes(second as string) && lost++ === 0)
        throw new Error('connection lost');
      return reply;
    });
    const T = Date.now();
    const events: BatchEvent[] = [];
    const c = await consumer(f, 'twins', countSeen, { clock: { now: () => T } });
    c.on('batch', (e) => events.push(e));
    await eventually(() => events.length === 2, 'both committed', 3_000);
    expect(lost).toBe(2); // the second twin committed twice
    expect(events.map((e) => [e.applied, e.duplicates])).toEqual([
      [1, 0],
      [0, 1],
    ]);
    expect(await seen(f, 'twins')).toEqual({ twin: '1' });
  });

  it('(4) grows a topic on load only when the knob went above the value its row saw', async () => {
    const f = await fixture(); // messaging.partitions: 4
    await f.topics.ensure('small', { partitions: 1 });
    const fresh = async () => {
      const knobs = track(
        await KnobClient.start({
          table: new KnobTable(f.redis, { keys: f.keys }),
          names: ['messaging.batch_size', 'messaging.linger_ms', 'messaging.partitions'],
          resyncIntervalMs: 0,
        }),
      );
      const cache = new TopicCache(f.topics, knobs, silent as never, 0);
      const row = await cache.get('small');
      cache.close();
      return row;
    };
    // Lowered (and written back to its value): a topic made small on purpose stays small.
    await f.setKnob('messaging.partitions', 2);
    expect((await fresh()).partitions).toBe(1);
    await f.setKnob('messaging.partitions', 4);
    expect((await fresh()).partitions).toBe(1);
    // Raised above what the row saw: grown to it.
    await f.setKnob('messaging.partitions', 6);
    expect((await fresh()).partitions).toBe(6);
  });

  it('(4) grows cached topics on a knob change only when the knob went up', async () => {
    const f = await fixture(); // messaging.partitions: 4
    await f.topics.ensure('cached', { partitions: 1 });
    const cache = new TopicCache(f.topics, f.knobs, silent as never, 0);
    await cache.get('cached');
    await f.setKnob('messaging.partitions', 2);
    await eventually(() => f.knobs.get('messaging.partitions') === 2, 'knob seen');
    await sleep(100);
    expect((await f.topics.get('cached')).partitions).toBe(1);
    // Back to the value the row saw: still not above it.
    await f.setKnob('messaging.partitions', 4);
    await eventually(() => f.knobs.get('messaging.partitions') === 4, 'knob seen');
    await sleep(100);
    expect((await f.topics.get('cached')).partitions).toBe(1);
    await f.setKnob('messaging.partitions', 5);
    await eventually(
      async () => (await f.topics.get('cached')).partitions === 5,
      'grown by the raise',
    );
    cache.close();
  });
});
