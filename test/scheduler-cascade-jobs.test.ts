// A task's death (its lease expired with its retries spent, or a failed settle on its last
// attempt) marks its dependents upstream_failed; when that ends another job (its last open task
// was such a dependent), the job's end is reported as the task's own job's is: in the reaper's
// jobsEnded, and with the settle item (review: the job row was finished but its completion
// never reported, while cancel and the reaper's cascade continuation reported theirs).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SchedulerClient } from '../controlplane/scheduler/client.ts';
import { ManualClock } from '../controlplane/scheduler/clock.ts';
import { SchedShard } from '../controlplane/scheduler/shard.ts';
import { startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';

const T0 = 1_000_000;

describe('a death whose cascade ends another job', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis('single');
  });
  afterAll(async () => redis?.stop());

  async function setup() {
    const shard = new SchedShard(redis.client(), uniqueKeys(), '0');
    const client = new SchedulerClient({ shard, clock: new ManualClock(T0) });
    await client.submitMany([
      { id: 'p', type: 't' }, // a job of its own
      { id: 'c', type: 't', jobId: 'J', parents: ['p'] }, // job J's only task
    ]);
    await shard.heartbeat(
      {
        workerId: 'w',
        heartbeatMs: 60_000,
        capacity: { cpu: 4, memMb: 1_000 },
        slots: 4,
        host: 'h',
        pid: 1,
        renew: [],
      },
      T0,
    );
    const r = await shard.dispatch(
      {
        leaseMs: 1_000,
        retryLimit: 0,
        backoffMs: 100,
        window: 0,
        workersMax: 10,
        windowPerSlot: 2,
        windowMin: 0,
        assignments: [{ taskId: 'p', workerId: 'w' }],
      },
      T0,
    );
    expect(r.claims).toEqual(['ok']);
    return { shard, client };
  }

  it('the reaper reports it with the dead task own job', async () => {
    const { shard, client } = await setup();
    const r = await shard.reap(
      { max: 100, jobTtlMs: 60_000, retryLimit: 0, backoffMs: 100 },
      T0 + 5_000,
    );
    expect(r.dead).toBe(1);
    expect((await client.get('c'))?.state).toBe('upstream_failed');
    expect(await shard.redis.hget(shard.k.job('J'), 'finished_at')).toBe(String(T0 + 5_000));
    expect(r.jobsEnded.map((j) => j.jobId).sort()).toEqual(['J', 'p']);
  });

  it('a final failure settled reports it with the item', async () => {
    const { shard, client } = await setup();
    const token = String((await client.get('p'))?.lease);
    const [res] = await shard.settle(
      [{ taskId: 'p', token, outcome: 'final', detail: 'boom', retryLimit: 0, backoffMs: 100 }],
      { durationsKept: 101, usageBucketMs: 10_000, usageTtlMs: 1e9, jobTtlMs: 60_000 },
      T0 + 10,
    );
    expect(res?.status).toBe('dead');
    expect(res?.jobId).toBe('p');
    expect(await shard.redis.hget(shard.k.job('J'), 'finished_at')).toBe(String(T0 + 10));
    expect(res?.othersEnded).toEqual([
      { taskId: 'p', jobId: 'J', tenant: 'default', completionMs: 10 },
    ]);
  });
});
