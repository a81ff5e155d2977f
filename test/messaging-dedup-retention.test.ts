// Dedup records past their retention, and writes too wide to commit. A key's record older than
// the topic's dedupMs is forgotten whether or not a trim has removed it yet: the producer
// stores the key again, and the consumer applies the new message (it was dropped as a
// duplicate of the old one: a lost message). An append too wide for the commit script is
// refused in the handler (retried, then dead-lettered), never acknowledged half applied. A
// message the claim step dead-letters counts as acknowledged, as one a commit dead-letters.
import { describe, expect, it } from 'vitest';
import { Consumer } from '../controlplane/messaging/consumer.ts';
import { readDeadLetters } from '../controlplane/messaging/dead-letters.ts';
import { MAX_APPEND_FIELDS, Output } from '../controlplane/messaging/output.ts';
import type { BatchEvent, Handler } from '../controlplane/messaging/partition-worker.ts';
import { messagingScripts } from '../controlplane/messaging/scripts.ts';
import { MessagingTelemetry } from '../controlplane/messaging/telemetry.ts';
import { messagingSuite } from './helpers/messaging-fixture.ts';
import { eventually } from './helpers/redis.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const silent = { warn: () => {}, info: () => {}, error: () => {}, debug: () => {} } as never;

describe('messaging dedup retention and commit bounds', () => {
  const { fixture, producer, track, consumer } = messagingSuite('single', {
    blockMs: 50,
    log: silent,
  });

  it('a publish whose key was recorded before the retention window is stored again', async () => {
    const f = await fixture();
    await f.topics.ensure('pubkey', { partitions: 1, dedupMs: 200 });
    const p = producer(f);
    const first = await p.publish('pubkey', 'first', { key: 'K' });
    const again = await p.publish('pubkey', 'again', { key: 'K' });
    expect({ duplicate: again.duplicate, id: again.id }).toEqual({ duplicate: true, id: first.id });
    await sleep(400); // past dedupMs, nothing published meanwhile (no trim ran)
    const second = await p.publish('pubkey', 'second', { key: 'K' });
    expect(second.duplicate).toBe(false);
    expect(second.id).not.toBe(first.id);
    expect(await f.redis.xlen(f.mkeys.stream('pubkey', 0))).toBe(2);
  });

  it('a keyed message published again after the retention window is applied, not dropped', async () => {
    const f = await fixture();
    await f.topics.ensure('rekey', { partitions: 1, dedupMs: 200 });
    const p = producer(f);
    const seenKey = f.mkeys.output('rekey', 0, 'seen');
    const countSeen: Handler = (m, out) => void out.hincr('seen', m.data);
    const c1 = await consumer(f, 'rekey', countSeen);
    await p.publish('rekey', 'first', { key: 'K' });
    await eventually(async () => (await f.redis.hget(seenKey, 'first')) === '1', 'first');
    await c1.stop();
    await sleep(400); // past dedupMs: the group's record of K is stale, not yet trimmed
    await p.publish('rekey', 'other');
    const second = await p.publish('rekey', 'second', { key: 'K' });
    expect(second.duplicate).toBe(false);
    const events: BatchEvent[] = [];
    const c2 = await consumer(f, 'rekey', countSeen);
    c2.on('batch', (e) => events.push(e));
    await eventually(async () => (await f.redis.hget(seenKey, 'second')) === '1', 'second');
    expect(await f.redis.hgetall(seenKey)).toEqual({ first: '1', other: '1', second: '1' });
    expect(events.reduce((s, e) => s + e.duplicates, 0)).toBe(0);
  });

  it('refuses an append too wide to commit in the handler: retried, then dead-lettered', async () => {
    const wide = Object.fromEntries(
      Array.from({ length: MAX_APPEND_FIELDS + 1 }, (_, i) => [`f${i}`, 'v']),
    );
    expect(() => new Output().append('log', wide)).toThrow(
      /append\.fields.*at most 1000 fields per entry, got 1001/,
    );
    const f = await fixture();
    await f.topics.ensure('wide', { partitions: 1 });
    const p = producer(f);
    const handler: Handler = (m, out) => {
      out.incr('count');
      if (m.data === 'wide') {
        out.set('before', 'x');
        out.append('log', wide);
        out.set('after', 'y');
      }
    };
    await p.publish('wide', 'a');
    await p.publish('wide', 'wide');
    await consumer(f, 'wide', handler, { maxDeliveries: 2, visibilityMs: 200 });
    const k = (n: string) => f.mkeys.output('wide', 0, n);
    await eventually(
      async () => (await readDeadLetters(f.redis, f.mkeys, 'wide', 0)).length === 1,
      'the wide message dead-lettered',
      10_000,
    );
    // Before, the commit failed in Lua part way: both messages acknowledged, the wide one
    // with only its first writes, no dedup records, every result 'stale'.
    expect({
      count: await f.redis.get(k('count')),
      before: await f.redis.get(k('before')),
      after: await f.redis.get(k('after')),
      log: await f.redis.exists(k('log')),
    }).toEqual({ count: '1', before: null, after: null, log: 0 });
  });

  it('the commit script refuses a write with too many arguments before writing anything', async () => {
    const f = await fixture();
    await f.topics.ensure('direct', { partitions: 1 });
    const stream = f.mkeys.stream('direct', 0);
    await f.redis.xgroup('CREATE', stream, 'g', '0', 'MKSTREAM');
    const id = (await f.redis.xadd(stream, '*', 'd', 'x')) as string;
    await f.redis.xreadgroup('GROUP', 'g', 'c', 'STREAMS', stream, '>');
    const args = Array.from({ length: 5000 }, (_, i) => (i % 2 ? 'v' : `f${i}`));
    const out = f.mkeys.output('direct', 0, 'log');
    const err = await f.redis
      .eval(
        messagingScripts.source('commit'),
        5,
        stream,
        f.mkeys.output('direct', 0, 'dedup'),
        f.mkeys.output('direct', 0, 'dead'),
        f.mkeys.output('direct', 0, 'results'),
        out,
        ...['g', Date.now(), 0, 1000, 100, 1, 0, 60_000],
        ...[id, '', 1, 'XADD', 5, args.length + 1, '*', ...args],
      )
      .catch((e: unknown) => e);
    expect(String(err)).toMatch(/more than 4000/);
    expect(await f.redis.exists(out)).toBe(0);
    expect(((await f.redis.xpending(stream, 'g')) as unknown[])[0]).toBe(1);
  });

  it('counts a message the claim step dead-lettered (and acknowledged) in acked, as a commit does', async () => {
    const f = await fixture();
    await f.topics.ensure('cd', { partitions: 1 });
    const p = producer(f);
    const a = await p.publish('cd', 'worn');
    const stream = f.mkeys.stream('cd', 0);
    await f.redis.xgroup('CREATE', stream, 'g', '0', 'MKSTREAM');
    await f.redis.call('XREADGROUP', 'GROUP', 'g', 'crashed', 'COUNT', 10, 'STREAMS', stream, '>');
    await f.redis.call('XCLAIM', stream, 'g', 'crashed', 0, a.id, 'RETRYCOUNT', 3);
    await sleep(30);
    const telemetry = new MessagingTelemetry({ redis: f.redis, keys: f.keys, instance: 't' });
    const events: BatchEvent[] = [];
    const handler: Handler = (m, out) => void out.hincr('seen', m.data);
    const c = track(
      await Consumer.start({
        redis: f.redis,
        keys: f.mkeys,
        knobs: f.knobs,
        topic: 'cd',
        group: 'g',
        handler,
        maxDeliveries: 3,
        visibilityMs: 20,
        claimIntervalMs: 10,
        telemetry,
        log: silent,
      }),
    );
    c.on('batch', (e) => events.push(e));
    await eventually(
      async () => (await readDeadLetters(f.redis, f.mkeys, 'cd', 0)).length === 1,
      'dead',
    );
    await eventually(() => events.some((e) => e.deadLettered === 1), 'event');
    // It was acknowledged in Redis:
    expect(Number(((await f.redis.xpending(stream, 'g')) as unknown[])[0])).toBe(0);
    const fields = await telemetry.metrics.flush();
    expect(fields['dead_lettered']).toBe(1);
    expect(fields['acked'] ?? 0).toBe(1);
  });
});
