// A counter a handler bumps through Output.incr / hincr by a fractional amount and later by a
// whole one: the whole one goes out as INCRBY (HINCRBY), which Redis refuses on the float
// value; the commit makes it as INCRBYFLOAT (HINCRBYFLOAT) rather than losing it (review).
import { describe, expect, it } from 'vitest';
import { Consumer, type ConsumerOptions } from '../controlplane/messaging/consumer.ts';
import type { BatchEvent } from '../controlplane/messaging/partition-worker.ts';
import { messagingSuite } from './helpers/messaging-fixture.ts';
import { eventually } from './helpers/redis.ts';

describe('mixed fractional and whole increments', () => {
  const { fixture, producer, track } = messagingSuite('single');
  type Fixture = Awaited<ReturnType<typeof fixture>>;

  /** A consumer of `topic` in group g, and the batch events it reports. */
  async function consume(f: Fixture, topic: string, handler: ConsumerOptions['handler']) {
    const events: BatchEvent[] = [];
    const c = track(
      await Consumer.start({
        redis: f.redis,
        keys: f.mkeys,
        knobs: f.knobs,
        topic,
        group: 'g',
        blockMs: 50,
        handler,
      }),
    );
    c.on('batch', (e) => events.push(e));
    return events;
  }

  it('applies every increment of a counter that holds a fractional sum', async () => {
    const f = await fixture();
    await f.topics.ensure('mix', { partitions: 1 });
    const p = producer(f);
    const events = await consume(f, 'mix', (m, out) => {
      const by = Number(m.data);
      out.incr('sum', by);
      out.incr('sum', by); // a run of two whole increments, summed in one INCRBY
      out.hincr('h', 'sum', by);
    });
    const applied = () => events.reduce((s, e) => s + e.applied, 0);
    for (const [i, v] of ['2.5', '1', '3'].entries()) {
      await p.publish('mix', v);
      await eventually(() => applied() === i + 1, `message ${i + 1} applied`);
    }
    expect(events.reduce((s, e) => s + e.writeErrors, 0)).toBe(0);
    expect(Number(await f.redis.get(f.mkeys.output('mix', 0, 'sum')))).toBe(13);
    expect(Number(await f.redis.hget(f.mkeys.output('mix', 0, 'h'), 'sum'))).toBe(6.5);
  });

  it('still counts a write no number can take as a write error', async () => {
    const f = await fixture();
    await f.topics.ensure('bad', { partitions: 1 });
    await f.redis.set(f.mkeys.output('bad', 0, 'sum'), 'text');
    const p = producer(f);
    const events = await consume(f, 'bad', (_m, out) => {
      out.incr('sum', 1);
    });
    await p.publish('bad', 'x');
    await eventually(() => events.reduce((s, e) => s + e.applied, 0) === 1, 'applied');
    expect(events.reduce((s, e) => s + e.writeErrors, 0)).toBe(1);
    expect(await f.redis.get(f.mkeys.output('bad', 0, 'sum'))).toBe('text');
  });
});
