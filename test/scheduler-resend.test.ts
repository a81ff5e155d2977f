// Scheduler scripts that ioredis resends after a dropped connection lost their reply (the same
// arguments, their time included): the resend finds what its first run wrote and must tell the
// caller what that run did (review). A proxy between the client and Redis swallows one reply.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SchedulerClient } from '../controlplane/scheduler/client.ts';
import { ManualClock } from '../controlplane/scheduler/clock.ts';
import { SchedShard } from '../controlplane/scheduler/shard.ts';
import { throughDropper } from './helpers/reply-dropper.ts';
import { startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';

const T0 = 1_700_000_000_000;
const beat = {
  workerId: 'w',
  heartbeatMs: 1_000,
  capacity: { cpu: 8, memMb: 1024 },
  slots: 4,
  host: 'test',
  pid: 1,
  renew: [],
};

describe('scheduler scripts resent after a lost reply', () => {
  let test: TestRedis;
  beforeAll(async () => {
    test = await startTestRedis('single');
  });
  afterAll(async () => {
    await test?.stop();
  });

  async function viaProxy() {
    const { proxy, client, close } = await throughDropper(test);
    const keys = uniqueKeys();
    return {
      proxy,
      keys,
      shard: new SchedShard(client, keys, '0'),
      direct: new SchedShard(test.client(), keys, '0'),
      close,
    };
  }

  it('a heartbeat that registered the worker anew says so (its void copies are stopped)', async () => {
    const s = await viaProxy();
    try {
      const first = await s.shard.heartbeat(beat, T0);
      expect(first.registered).toBe(true);
      // Declared dead: the reaper removes its row.
      await s.direct.reap({ max: 100, jobTtlMs: 1, retryLimit: 3, backoffMs: 1 }, T0 + 10_000);
      expect(await test.client().exists(s.direct.k.worker('w'))).toBe(0);
      s.proxy.armed = true;
      const got = await s.shard.heartbeat(beat, T0 + 10_001);
      expect(s.proxy.dropped).toBe(1);
      expect(got.incarnation).not.toBe(first.incarnation);
      expect(got.registered).toBe(true);
      // A later beat of the same worker is an ordinary one, even within the same millisecond
      // (a resend is known by its call's id, not its time: a frozen clock made every beat a
      // re-registration, and the worker cancelled its copies).
      expect((await s.shard.heartbeat(beat, T0 + 10_500)).registered).toBe(false);
      expect((await s.shard.heartbeat(beat, T0 + 10_001)).registered).toBe(false);
    } finally {
      await s.close();
    }
  });

  it('a cancel reports what its first run did: changed and the dependents it marked', async () => {
    const s = await viaProxy();
    try {
      const clock = new ManualClock(T0);
      const direct = new SchedulerClient({ shard: s.direct, clock });
      const client = new SchedulerClient({ shard: s.shard, clock });
      await direct.submitMany([
        { id: 'a', type: 't', jobId: 'J' },
        { id: 'b', type: 't', jobId: 'J', parents: ['a'] },
        { id: 'c', type: 't' },
      ]);
      await client.cancel('c', { actor: 'op' }); // the script loaded through the proxy
      // Armed as the script goes out (the client reads the tenant's move first).
      const cancel = s.shard.cancel.bind(s.shard);
      s.shard.cancel = (...a: Parameters<SchedShard['cancel']>) => {
        s.proxy.armed = true;
        return cancel(...a);
      };
      const got = await client.cancel('a', { actor: 'op' });
      expect(s.proxy.dropped).toBe(1);
      expect(got).toEqual({ id: 'a', changed: true, dependents: 1 });
      // A later cancel of it changes nothing, even by the same actor at the same millisecond
      // (a resend is known by its call's id).
      expect(await client.cancel('a', { actor: 'op' })).toEqual({
        id: 'a',
        changed: false,
        dependents: 0,
      });
    } finally {
      await s.close();
    }
  });
});
