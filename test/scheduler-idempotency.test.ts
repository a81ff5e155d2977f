// Idempotency keys against a real redis-server: a key (or an id) sent again with the same task
// is a retry and answers the existing task; with another task under it (type, priority,
// payload, job...) the batch is refused naming the field that differs, and nothing of it is
// written. Retries without an id (a new generated id each time) and jobs of several tasks are
// retries too.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SchedulerClient } from '../controlplane/scheduler/client.ts';
import { SchedShard } from '../controlplane/scheduler/shard.ts';
import type { TaskSpec } from '../controlplane/scheduler/types.ts';
import { startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';

describe('scheduler idempotency keys', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis('single');
  });
  afterAll(async () => {
    await redis?.stop();
  });
  function bare() {
    const shard = new SchedShard(redis.client(), uniqueKeys(), '0');
    return { shard, client: new SchedulerClient({ shard }) };
  }

  it('answers a retry (no id: a new generated one) with the existing task', async () => {
    const { client } = bare();
    const task = { type: 'mail', idempotencyKey: 'k1', payload: { to: 'a' }, priority: 2 };
    const [first] = await client.submitMany([task]);
    expect(first?.created).toBe(true);
    expect(await client.submitMany([task])).toEqual([{ id: first?.id, created: false }]);
    // A job of several tasks, sent again with its parent named.
    await client.submit({ id: 'p', type: 'x', jobId: 'J' });
    const child = { type: 'x', jobId: 'J', parents: ['p'], idempotencyKey: 'kc' };
    const [c] = await client.submitMany([child]);
    expect(await client.submitMany([child])).toEqual([{ id: c?.id, created: false }]);
  });

  it('refuses another task under a known key, naming the field, and writes nothing', async () => {
    const { shard, client } = bare();
    const [first] = await client.submitMany([
      { type: 'mail', idempotencyKey: 'k1', payload: { to: 'a' }, priority: 2 },
    ]);
    const cases: [TaskSpec, string][] = [
      [{ type: 'mail', payload: { to: 'b' }, priority: 2 }, 'payload'],
      [{ type: 'sms', payload: { to: 'a' }, priority: 2 }, 'type'],
      [{ type: 'mail', payload: { to: 'a' }, priority: 3 }, 'priority'],
      [{ type: 'mail', payload: { to: 'a' }, priority: 2, jobId: 'J2' }, 'job'],
      [{ type: 'mail', payload: { to: 'a' }, priority: 2, tenant: 'other' }, 'tenant'],
    ];
    for (const [task, differs] of cases) {
      const before = await shard.redis.dbsize();
      await expect(
        client.submitMany([
          { id: 'fresh', type: 'x' },
          { ...task, idempotencyKey: 'k1' },
        ]),
      ).rejects.toMatchObject({
        code: 'KNOBOS_SCHEDULER_IDEMPOTENCY_CONFLICT',
        status: 409,
        details: {
          field: 'idempotencyKey',
          rule: 'same_content',
          existing: first?.id,
          differs,
        },
      });
      // The batch's other task was not written either.
      expect(await client.get('fresh')).toBeNull();
      expect(await shard.redis.dbsize()).toBe(before);
    }
  });

  it('refuses another task under a known id, and within one batch', async () => {
    const { client } = bare();
    await client.submit({ id: 'a', type: 'x', payload: 1 });
    await expect(client.submit({ id: 'a', type: 'y', payload: 1 })).rejects.toMatchObject({
      details: { field: 'id', rule: 'same_content', differs: 'type' },
    });
    expect(await client.submit({ id: 'a', type: 'x', payload: 1 })).toEqual({
      id: 'a',
      created: false,
    });
    await expect(
      client.submitMany([
        { type: 'x', idempotencyKey: 'kb', payload: 1 },
        { type: 'x', idempotencyKey: 'kb', payload: 2 },
      ]),
    ).rejects.toMatchObject({ details: { differs: 'payload' } });
    const [one, two] = await client.submitMany([
      { type: 'x', idempotencyKey: 'kb', payload: 1 },
      { type: 'x', idempotencyKey: 'kb', payload: 1 },
    ]);
    expect(one?.created).toBe(true);
    expect(two).toEqual({ id: one?.id, created: false });
  });

  it('takes a payload with its keys in another order and GPU models in another order as the same', async () => {
    const { client } = bare();
    const [a] = await client.submitMany([
      {
        type: 'x',
        idempotencyKey: 'ko',
        payload: { a: 1, b: [1, { c: 2, d: null }] },
        demand: { gpu: 1, gpuModels: ['a100', 'h100'] },
      },
    ]);
    expect(
      await client.submitMany([
        {
          type: 'x',
          idempotencyKey: 'ko',
          payload: { b: [1, { d: null, c: 2 }], a: 1 },
          demand: { gpu: 1, gpuModels: ['h100', 'a100'] },
        },
      ]),
    ).toEqual([{ id: a?.id, created: false }]);
    await expect(
      client.submit({
        type: 'x',
        idempotencyKey: 'ko',
        payload: { a: 1, b: [{ c: 2, d: null }, 1] },
        demand: { gpu: 1, gpuModels: ['a100', 'h100'] },
      }),
    ).rejects.toMatchObject({ details: { differs: 'payload' } });
  });

  it('names the id, not a new key, when the id matched', async () => {
    const { client } = bare();
    await client.submit({ id: 'idm', type: 'x' });
    await expect(
      client.submit({ id: 'idm', type: 'y', idempotencyKey: 'new-key' }),
    ).rejects.toMatchObject({ details: { field: 'id', differs: 'type' } });
  });
});
