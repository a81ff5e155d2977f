// Fixes of a review of the scheduler (2026-11): each test failed before its fix. A parent listed
// twice (or reached twice through an idempotency alias) is one edge; a job of several tasks
// named after a task is refused; a router batch is checked whole before any shard commits; a
// throwing `onSettled` does not wedge a worker; GPU devices of a claim are distinct device
// indexes; idle workers past the first page of busy ones are seen; a job whose every task is
// upstream_failed at submit finishes; a malformed assignment string writes nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashShard } from '../policies/placement/hash.ts';
import { SchedulerClient } from '../controlplane/scheduler/client.ts';
import { ManualClock } from '../controlplane/knobs/clock.ts';
import { SchedulerInputError } from '../controlplane/scheduler/errors.ts';
import { SchedulerRouter } from '../controlplane/scheduler/router.ts';
import { SchedShard, type DispatchArgs } from '../controlplane/scheduler/shard.ts';
import { normalizeBatch } from '../controlplane/scheduler/tasks.ts';
import type { Telemetry } from '../controlplane/telemetry/metrics.ts';
import type { TraceWriter } from '../controlplane/telemetry/traces.ts';
import type { TaskSpec } from '../controlplane/scheduler/types.ts';
import { placementKnobs } from './helpers/placement-knobs.ts';
import { eventually, startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';
import { startScheduler } from './helpers/scheduler-harness.ts';

const T0 = 1_000_000;
const SETTLE = { durationsKept: 101, usageBucketMs: 10_000, usageTtlMs: 1e9, jobTtlMs: 60_000 };

describe('scheduler review fixes', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis('single');
  });
  afterAll(async () => redis?.stop());

  function shardUnderTest(o: { telemetry?: Telemetry; jobs?: TraceWriter } = {}) {
    const shard = new SchedShard(redis.client(), uniqueKeys(), '0');
    const client = new SchedulerClient({ shard, clock: new ManualClock(T0), ...o });
    const beat = (id: string, now: number, slots = 4, gpu = 0) =>
      shard.heartbeat(
        {
          workerId: id,
          heartbeatMs: 1_000,
          capacity: { cpu: 4, memMb: 1_000, gpu },
          slots,
          host: 'h',
          pid: 1,
          renew: [],
        },
        now,
      );
    const dispatch = (now: number, extra: Partial<DispatchArgs> = {}) =>
      shard.dispatch(
        {
          leaseMs: 1_000,
          retryLimit: 2,
          backoffMs: 100,
          window: 100,
          workersMax: 100,
          windowPerSlot: 10,
          windowMin: 32,
          assignments: [],
          ...extra,
        },
        now,
      );
    const leaseOf = async (id: string) => String((await client.get(id))?.lease);
    /** Claims `id` on `worker` and completes it. */
    const run = async (id: string, worker: string, now: number) => {
      const r = await dispatch(now, { assignments: [{ taskId: id, workerId: worker }] });
      expect(r.claims).toEqual(['ok']);
      const [s] = await shard.settle(
        [{ taskId: id, token: await leaseOf(id), outcome: 'ok', detail: 1 }],
        SETTLE,
        now + 10,
      );
      return s!;
    };
    return { shard, client, beat, dispatch, leaseOf, run };
  }

  const inputError = async (p: Promise<unknown>) => {
    try {
      await p;
    } catch (err) {
      expect(err).toBeInstanceOf(SchedulerInputError);
      return err as SchedulerInputError;
    }
    throw new Error('accepted');
  };

  it('counts a parent listed twice, or reached twice through an alias, as one edge', async () => {
    const s = shardUnderTest();
    await s.client.submitMany([
      { id: 'p', type: 't', idempotencyKey: 'kp' },
      { id: 'c', type: 't', parents: ['p', 'p'] },
    ]);
    // 'p2' is an alias of 'p' (same idempotency key): c2 names one parent twice.
    const [alias] = await s.client.submitMany([
      { id: 'p2', type: 't', idempotencyKey: 'kp' },
      { id: 'c2', type: 't', parents: ['p', 'p2'] },
    ]);
    expect(alias).toEqual({ id: 'p', created: false });
    for (const id of ['c', 'c2'])
      expect(await s.client.get(id)).toMatchObject({ state: 'pending', pending: 1, parents: 'p' });
    await s.beat('w', T0);
    expect((await s.run('p', 'w', T0)).status).toBe('ok');
    for (const id of ['c', 'c2']) expect((await s.client.get(id))?.state).toBe('runnable');
    // The batch check keeps one of each parent, in order.
    const [, c] = normalizeBatch(
      [
        { id: 'a', type: 't' },
        { id: 'b', type: 't', parents: ['a', 'x', 'a', 'x'] },
      ],
      () => 'gen',
      { payloadBytesMax: 1024 },
    );
    expect(c!.parents).toEqual(['a', 'x']);
  });

  it('refuses a job of several tasks named after a task, in the batch or in the shard', async () => {
    const s = shardUnderTest();
    for (const batch of [
      [
        { id: 'build', type: 't', jobId: 'build' },
        { id: 'b2', type: 't', jobId: 'build', parents: ['build'] },
      ],
      [
        { id: 'b2', type: 't', jobId: 'build' },
        { id: 'build', type: 't' },
      ],
    ] as TaskSpec[][]) {
      const err = await inputError(s.client.submitMany(batch));
      expect(err).toMatchObject({ field: 'jobId', rule: 'not_task_id' });
      expect(err.message).toContain('b2');
    }
    // Across batches: the script refuses it before writing anything.
    await s.client.submit({ id: 'build', type: 't' });
    const err = await inputError(
      s.client.submitMany([
        { id: 'b3', type: 't', jobId: 'J' },
        { id: 'b2', type: 't', jobId: 'build', parents: ['build'] },
      ]),
    );
    expect(err).toMatchObject({ field: 'jobId', rule: 'not_task_id' });
    expect(await s.client.get('b2')).toBeNull();
    expect(await s.client.get('b3')).toBeNull();
    expect(await s.shard.redis.exists(s.shard.k.job('build'), s.shard.k.job('J'))).toBe(0);
    // A task's own id as its job (given or not) and a job named after no task stay fine.
    await s.client.submitMany([
      { id: 'solo', type: 't', jobId: 'solo' },
      { id: 'j1', type: 't', jobId: 'J' },
      { id: 'j2', type: 't', jobId: 'J', parents: ['j1'] },
    ]);
    expect(await s.shard.redis.hget(s.shard.k.job('J'), 'total')).toBe('2');
  });

  it('checks a router batch whole: a later parent on another shard writes nothing', async () => {
    const client = redis.client();
    const keys = uniqueKeys();
    const { knobs } = await placementKnobs(client, keys, 2_000);
    const router = new SchedulerRouter({ redis: client, knobs, keys, shards: ['0', '1', '2'] });
    try {
      const a = 'acme';
      let b = 'bob';
      for (let i = 0; hashShard(a, 3) === hashShard(b, 3); i++) b = `bob${i}`;
      const later = await inputError(
        router.submitMany([
          { id: 'child', type: 't', tenant: a, parents: ['par'] },
          { id: 'par', type: 't', tenant: b },
        ]),
      );
      expect(later).toMatchObject({ field: 'parents', rule: 'same_shard' });
      // One id on two shards would pass each shard's own check.
      const twice = await inputError(
        router.submitMany([
          { id: 'dup', type: 't', tenant: a },
          { id: 'dup', type: 't', tenant: b },
        ]),
      );
      expect(twice).toMatchObject({ field: 'id', rule: 'unique' });
      for (const id of ['child', 'par', 'dup']) expect(await router.get(id)).toBeNull();
    } finally {
      router.close();
      await knobs.close();
    }
  });

  it('keeps a worker running when its onSettled callback throws', async () => {
    const h = await startScheduler(redis);
    try {
      let calls = 0;
      const w = await h.worker({
        id: 'w',
        concurrency: 1,
        handlers: { t: () => 1 },
        onSettled: () => {
          calls++;
          if (calls === 1) throw new Error('callback bug');
        },
      });
      await h.service.client.submitMany(['a', 'b', 'c'].map((id) => ({ id, type: 't' })));
      await eventually(
        async () => {
          const rows = await Promise.all(['a', 'b', 'c'].map((id) => h.service.client.get(id)));
          return rows.every((r) => r?.state === 'done');
        },
        'every task done after a throwing callback',
        5_000,
      );
      await eventually(() => w.busy === 0 && calls === 3, 'slots released, every settle reported');
      expect(w.settled.get('ok')).toBe(3);
    } finally {
      await h.stop();
    }
  });

  it('refuses a GPU device named twice, at claim and for a speculative copy', async () => {
    const s = shardUnderTest();
    await s.client.submitMany([
      { id: 'g', type: 't', demand: { gpu: 2, gpuMilli: 1000 } },
      { id: 'h', type: 't', demand: { gpu: 2, gpuMilli: 500 } },
    ]);
    await s.beat('w', T0, 4, 2);
    await s.beat('v', T0, 4, 2);
    const gpuFree = async (w: string) => s.shard.redis.hget(s.shard.k.worker(w), 'gpu_free');
    let r = await s.dispatch(T0, { assignments: [{ taskId: 'g', workerId: 'w', gpus: [0, 0] }] });
    expect(r.claims).toEqual(['full']);
    expect(await gpuFree('w')).toBe('1000,1000');
    r = await s.dispatch(T0, { assignments: [{ taskId: 'h', workerId: 'w', gpus: [0, 1] }] });
    expect(r.claims).toEqual(['ok']);
    const spec = await s.shard.speculate(
      { leaseMs: 1_000, retryLimit: 2, backoffMs: 100 },
      [{ taskId: 'h', seenToken: await s.leaseOf('h'), workerId: 'v', gpus: [1, 1] }],
      T0 + 5,
    );
    expect(spec[0]?.status).toBe('full');
    expect(await gpuFree('v')).toBe('1000,1000');
  });

  it('sees an idle worker behind a first page of busy ones', async () => {
    const s = shardUnderTest();
    await s.client.submitMany(['a', 'b', 'c'].map((id) => ({ id, type: 't' })));
    // Deadlines in this order: x1 and x2 come first in the workers index.
    await s.beat('x1', T0, 1);
    await s.beat('x2', T0 + 1, 1);
    await s.beat('x3', T0 + 2, 1);
    const r = await s.dispatch(T0 + 5, {
      workersMax: 2,
      assignments: [
        { taskId: 'a', workerId: 'x1' },
        { taskId: 'b', workerId: 'x2' },
      ],
    });
    expect(r.claims).toEqual(['ok', 'ok']);
    expect(r.workers.map((w) => w.view.id)).toEqual(['x3']);
    expect(r.tasks.map((t) => t.id)).toEqual(['c']);
  });

  it('finishes and reports a job whose every task is upstream_failed at submit', async () => {
    const observed: [string, number][] = [];
    const jobs: Record<string, unknown>[] = [];
    const telemetry = {
      inc: () => undefined,
      observe: (name: string, v: number) => void observed.push([name, v]),
    } as unknown as Telemetry;
    const writer = { record: (r: Record<string, unknown>) => void jobs.push(r) };
    const s = shardUnderTest({ telemetry, jobs: writer as unknown as TraceWriter });
    await s.client.submit({ id: 'p', type: 't' });
    await s.beat('w', T0);
    await s.dispatch(T0, { assignments: [{ taskId: 'p', workerId: 'w' }] });
    const [dead] = await s.shard.settle(
      [{ taskId: 'p', token: await s.leaseOf('p'), outcome: 'final', detail: 'boom' }],
      SETTLE,
      T0 + 5,
    );
    expect(dead?.status).toBe('dead');
    await s.client.submitMany([
      { id: 'c1', type: 't', jobId: 'J', tenant: 'acme', parents: ['p'] },
      { id: 'c2', type: 't', jobId: 'J', tenant: 'acme', parents: ['p'] },
    ]);
    expect((await s.client.get('c1'))?.state).toBe('upstream_failed');
    const k = s.shard.k.job('J');
    expect(await s.shard.redis.hmget(k, 'remaining', 'dead', 'finished_at')).toEqual([
      '0',
      '2',
      String(T0),
    ]);
    expect(await s.shard.redis.pttl(k)).toBeGreaterThan(0);
    expect(observed).toEqual([['job_completion_ms', 0]]);
    expect(jobs).toMatchObject([{ job: 'J', tenant: 'acme', completion_ms: 0, failed: true }]);
    // More tasks open it again; their end finishes it again.
    await s.client.submit({ id: 'c3', type: 't', jobId: 'J' });
    expect(await s.shard.redis.hget(k, 'finished_at')).toBeNull();
    expect(await s.shard.redis.pttl(k)).toBe(-1);
    const done = await s.run('c3', 'w', T0 + 20);
    expect(done).toMatchObject({ status: 'ok', jobCompletionMs: 30 });
  });

  it('writes nothing when the assignment string is malformed after a good claim', async () => {
    const s = shardUnderTest();
    await s.client.submitMany(['a', 'b'].map((id) => ({ id, type: 't' })));
    await s.beat('w', T0);
    const seq = await s.shard.redis.get(s.shard.k.seq());
    // A task id with a newline breaks the second line of the packed string.
    await expect(
      s.dispatch(T0, {
        assignments: [
          { taskId: 'a', workerId: 'w' },
          { taskId: 'b\nzzz', workerId: 'w' },
        ],
      }),
    ).rejects.toThrow(/malformed/);
    expect(await s.client.get('a')).toMatchObject({ state: 'runnable' });
    expect(await s.client.get('a').then((r) => r?.lease)).toBeFalsy();
    expect(await s.shard.redis.zscore(s.shard.k.runnable(), 'a')).not.toBeNull();
    expect(await s.shard.redis.get(s.shard.k.seq())).toBe(seq);
    // The shard carries on: the same claim, well formed, goes through.
    const r = await s.dispatch(T0, { assignments: [{ taskId: 'a', workerId: 'w' }] });
    expect(r.claims).toEqual(['ok']);
  });
});
