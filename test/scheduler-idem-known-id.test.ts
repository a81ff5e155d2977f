// An idempotency key sent with a known id (answered "exists"): the key names that task from
// then on, as it would had it come with the task. It was recorded nowhere: a retry under the
// key alone made a second task, and the key later in the same batch took another task's
// content. A task has one key: a known id sent with another key than its own is refused.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SchedulerClient } from '../controlplane/scheduler/client.ts';
import { SchedShard } from '../controlplane/scheduler/shard.ts';
import { startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';

describe('an idempotency key sent with a known id', () => {
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
  const task = { type: 'x', payload: { n: 1 } };

  it('names that task afterwards: a retry under the key alone answers it', async () => {
    const { client, shard } = bare();
    await client.submit({ id: 'a', ...task });
    expect(await client.submit({ id: 'a', ...task, idempotencyKey: 'k1' })).toEqual({
      id: 'a',
      created: false,
    });
    expect(await client.submit({ ...task, idempotencyKey: 'k1' })).toEqual({
      id: 'a',
      created: false,
    });
    expect(await shard.redis.hget(shard.k.task('a'), 'idempotency_key')).toBe('k1');
  });

  it('in one batch, the key answers that task: another content under it is refused', async () => {
    const { client } = bare();
    await client.submit({ id: 'a', ...task });
    await expect(
      client.submitMany([
        { id: 'a', ...task, idempotencyKey: 'k' },
        { id: 'b', type: 'x', payload: { n: 2 }, idempotencyKey: 'k' },
      ]),
    ).rejects.toMatchObject({ code: 'KNOBOS_SCHEDULER_IDEMPOTENCY_CONFLICT' });
    // Nothing written: the key is bound to nothing, b does not exist.
    expect(await client.get('b')).toBeNull();
    expect(await client.submit({ ...task, idempotencyKey: 'k' })).toMatchObject({ created: true });
  });

  it('refuses a known id sent with another key than its own', async () => {
    const { client } = bare();
    await client.submit({ id: 'a', ...task, idempotencyKey: 'k0' });
    await expect(client.submit({ id: 'a', ...task, idempotencyKey: 'k1' })).rejects.toMatchObject({
      code: 'KNOBOS_SCHEDULER_IDEMPOTENCY_CONFLICT',
      details: { differs: 'idempotencyKey' },
    });
    expect(await client.submit({ ...task, idempotencyKey: 'k0' })).toEqual({
      id: 'a',
      created: false,
    });
  });
});
