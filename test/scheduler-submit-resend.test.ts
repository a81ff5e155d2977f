// A submit whose reply a dropped connection lost: ioredis resends the unanswered script after
// reconnecting, with the same arguments, and the first run had created the tasks. The resend
// reports them as created (review of the same bug in messaging: it reported "existed
// already", so the client skipped their arrivals trace and submit count), while a task that
// existed before the call is still reported as such.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SchedulerClient } from '../controlplane/scheduler/client.ts';
import { SchedShard } from '../controlplane/scheduler/shard.ts';
import { ManualClock } from '../controlplane/scheduler/clock.ts';
import { throughDropper } from './helpers/reply-dropper.ts';
import { startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';

describe('a submit whose reply was lost', () => {
  let test: TestRedis;
  beforeAll(async () => {
    test = await startTestRedis('single');
  });
  afterAll(async () => {
    await test?.stop();
  });

  it('reports the tasks its first run created as created when ioredis resends it', async () => {
    const { proxy, client: viaProxy, close } = await throughDropper(test);
    const keys = uniqueKeys();
    const clock = new ManualClock(1_700_000_000_000);
    const direct = new SchedulerClient({ shard: new SchedShard(test.client(), keys, '0'), clock });
    const client = new SchedulerClient({ shard: new SchedShard(viaProxy, keys, '0'), clock });
    try {
      await direct.submit({ id: 'old', type: 't' });
      clock.advance(5);
      await client.submit({ id: 'warm', type: 't' }); // scripts loaded through the proxy
      proxy.armed = true;
      const got = await client.submitMany([
        { id: 'a', type: 't' },
        { id: 'old', type: 't' },
        { id: 'b', type: 't', parents: ['a'] },
      ]);
      expect(proxy.dropped).toBe(1);
      expect(got).toEqual([
        { id: 'a', created: true },
        { id: 'old', created: false },
        { id: 'b', created: true },
      ]);
      const counts = await test
        .client()
        .zcard(new SchedShard(test.client(), keys, '0').k.runnable());
      expect(counts).toBe(3); // old, warm, a (b waits for a)
    } finally {
      await close();
    }
  });
});
