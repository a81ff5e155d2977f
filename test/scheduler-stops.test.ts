// A worker's stop list against a real redis-server: a stop that reaches the worker before its
// copy's run entry (they travel on different lists) keeps that copy from ever starting; and a
// blocking pop ends when its list is closed, also while Redis is away (the stop list's loop
// has one in flight at all times, so a stop() then hung for ever).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlockingList } from '../controlplane/scheduler/doorbell.ts';
import { eventually, startTestRedis, type TestRedis } from './helpers/redis.ts';
import { startScheduler, type SchedulerHarness } from './helpers/scheduler-harness.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('worker stop list', () => {
  let redis: TestRedis;
  let h: SchedulerHarness;
  beforeAll(async () => {
    redis = await startTestRedis('single');
    h = await startScheduler(redis);
  });
  afterAll(async () => {
    await h?.stop();
    await redis?.stop();
  });

  it('drops a run entry whose stop came first', async () => {
    const ran: string[] = [];
    let release: () => void = () => {};
    const w = await h.worker({
      concurrency: 1,
      handlers: {
        hold: () => new Promise((r) => (release = () => r('held'))),
        work: (ctx) => void ran.push(ctx.id),
      },
    });
    const c = h.service.client;
    await c.submit({ id: 'held1', type: 'hold' });
    await eventually(async () => (await c.get('held1'))?.state === 'leased', 'held1 leased');
    // With its one slot busy the worker reads no run entry; the stop list it reads at once.
    const shard = h.service.shard;
    await shard.redis.rpush(shard.k.inbox(w.id), '9999\tghost\twork\t1\t60000\t3\t10\tnull');
    await shard.redis.rpush(shard.k.stops(w.id), '!9999\tghost');
    await eventually(
      async () => (await shard.redis.llen(shard.k.stops(w.id))) === 0,
      'the stop read',
    );
    release();
    await eventually(
      async () => (await shard.redis.llen(shard.k.inbox(w.id))) === 0,
      'the run entry read',
    );
    await c.submit({ id: 'after', type: 'work' });
    await eventually(async () => (await c.get('after'))?.state === 'done', 'after done');
    expect(ran).toEqual(['after']);
  });

  it('forgets the stops it kept when it registers anew (its lists are gone, tokens may come again)', async () => {
    const ran: string[] = [];
    const w = await h.worker({
      concurrency: 1,
      handlers: { work: (ctx) => void ran.push(ctx.id) },
    });
    const shard = h.service.shard;
    await shard.redis.rpush(shard.k.stops(w.id), '!7777\tghost2');
    await eventually(
      async () => (await shard.redis.llen(shard.k.stops(w.id))) === 0,
      'the stop read',
    );
    // Declared dead (as the reaper does it): its next beat registers a new incarnation.
    const inc = await shard.redis.hget(shard.k.worker(w.id), 'inc');
    await shard.redis.del(shard.k.worker(w.id));
    await eventually(async () => {
      const now = await shard.redis.hget(shard.k.worker(w.id), 'inc');
      return now !== null && now !== inc;
    }, 'registered anew');
    await shard.redis.rpush(shard.k.inbox(w.id), '7777\tghost2\twork\t1\t60000\t3\t10\tnull');
    await eventually(() => ran.includes('ghost2'), 'the copy with the reused token ran');
  });

  it('ends a pop in flight when the list closes while Redis is away', async () => {
    const own = await startTestRedis('single');
    const client = own.client();
    const list = new BlockingList(client, 'knobos-test:stops-away');
    const popped = list.pop(1, 30_000);
    await sleep(100);
    await own.stop();
    await sleep(600);
    list.close();
    const outcome = await Promise.race([popped, sleep(3_000).then(() => 'still pending')]);
    expect(outcome).toEqual([]);
    client.disconnect();
  });

  it('ends a wait (a retry backoff) when the list closes', async () => {
    const list = new BlockingList(redis.client(), 'knobos-test:stops-wait');
    const waited = list.wait(10_000).then(() => 'ended');
    await sleep(50);
    list.close();
    expect(await Promise.race([waited, sleep(2_000).then(() => 'still waiting')])).toBe('ended');
    expect(list['waiting'].size).toBe(0);
  });

  it('keeps nothing per pop once the pop ended', async () => {
    const client = redis.client();
    const key = 'knobos-test:stops-many';
    await client.rpush(key, ...Array.from({ length: 200 }, (_, i) => `e${i}`));
    const list = new BlockingList(client, key);
    for (let i = 0; i < 200; i++) expect(await list.pop(1, 1_000)).toEqual([`e${i}`]);
    // Each pop's close hook is gone with it (a shared close promise kept one reaction per pop).
    expect(list['waiting'].size).toBe(0);
    list.close();
  });
});
