// A partition added by a topic's growth whose worker fails to start once (a Redis hiccup while
// its group is made) is started again at the next topic refresh: it was retried only on the
// next topic version change, which may never come, and its messages waited unconsumed until
// retention trimmed them.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Consumer } from '../controlplane/messaging/consumer.ts';
import { messagingSuite } from './helpers/messaging-fixture.ts';
import { eventually } from './helpers/redis.ts';

describe('a grown partition whose first start failed', () => {
  const { fixture, producer, track } = messagingSuite('single');
  afterEach(() => vi.restoreAllMocks());

  it('is served after the next refresh', async () => {
    const f = await fixture();
    await f.topics.ensure('grow', { partitions: 1 });
    const c = track(
      await Consumer.start({
        redis: f.redis,
        keys: f.mkeys,
        knobs: f.knobs,
        topic: 'grow',
        group: 'g',
        blockMs: 50,
        topicRefreshMs: 50,
        handler: (_m, out) => {
          out.incr('n');
        },
      }),
    );
    expect(c.partitions()).toEqual([0]);
    // One transient failure while partition 1's group is made (a dropped connection).
    const stream1 = f.mkeys.stream('grow', 1);
    const xgroup = f.redis.xgroup.bind(f.redis);
    let failed = 0;
    vi.spyOn(f.redis, 'xgroup').mockImplementation(((...args: unknown[]) => {
      if (args[1] === stream1 && failed === 0) {
        failed++;
        return Promise.reject(new Error('Connection is closed.'));
      }
      return (xgroup as (...a: unknown[]) => Promise<unknown>)(...args);
    }) as never);
    await f.topics.grow('grow', 2);
    await eventually(() => failed === 1, 'the transient failure');
    await producer(f).publish('grow', 'x', { partition: 1 });
    await eventually(
      async () => (await f.redis.get(f.mkeys.output('grow', 1, 'n'))) === '1',
      'the message on the grown partition applied',
    );
    expect(c.partitions()).toEqual([0, 1]);
  });
});
