// What a claim and a speculative copy check in Redis: a worker beating with other capacity than
// its row (restarted under the same id on other hardware) gets a new incarnation, so the new
// figures count (the old ones were claimed against: oversubscription); a GPU task's models are
// checked against the worker's at the claim and the copy (an h100-only task was leased on a t4
// worker re-registered under the same id since the snapshot).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SchedulerClient } from '../controlplane/scheduler/client.ts';
import { ManualClock } from '../controlplane/knobs/clock.ts';
import { SchedShard, type DispatchArgs } from '../controlplane/scheduler/shard.ts';
import { startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';

const T0 = 1_000_000;

describe('claim checks against the worker row', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis('single');
  });
  afterAll(async () => redis?.stop());

  function setup() {
    const shard = new SchedShard(redis.client(), uniqueKeys(), '0');
    const client = new SchedulerClient({ shard, clock: new ManualClock(T0) });
    const beat = (
      id: string,
      now: number,
      cap: { cpu: number; memMb: number; gpu?: number; gpuModel?: string },
      slots = 4,
    ) =>
      shard.heartbeat(
        { workerId: id, heartbeatMs: 1_000, capacity: cap, slots, host: 'h', pid: 1, renew: [] },
        now,
      );
    const dispatch = (now: number, extra: Partial<DispatchArgs> = {}) =>
      shard.dispatch(
        {
          leaseMs: 10_000,
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
    return { shard, client, beat, dispatch };
  }

  it('a heartbeat that shrinks memory/cores is applied: no claim beyond the new capacity', async () => {
    const { shard, client, beat, dispatch } = setup();
    // The worker registers with 4 cores / 1000 MB, then (restarted under the same id, or
    // resized) beats with 1 core / 500 MB.
    await beat('w1', T0, { cpu: 4, memMb: 1_000 });
    await beat('w1', T0 + 100, { cpu: 1, memMb: 500 });
    const a = await client.submit({ type: 't', demand: { cpu: 1, memMb: 400 } });
    const b = await client.submit({ type: 't', demand: { cpu: 1, memMb: 400 } });
    const snap = await dispatch(T0 + 200);
    const view = snap.workers.find((w) => w.view.id === 'w1')!.view;
    const r = await dispatch(T0 + 200, {
      window: 0,
      assignments: [
        { taskId: a.id, workerId: 'w1' },
        { taskId: b.id, workerId: 'w1' },
      ],
    });
    const row = await shard.redis.hgetall(shard.k.worker('w1'));
    expect({
      claims: r.claims,
      usedMem: Number(row.used_mem_mb),
      usedCpuM: Number(row.used_cpu_m),
      snapshotMem: view.capacity.memMb,
    }).toEqual({ claims: ['ok', 'full'], usedMem: 400, usedCpuM: 1000, snapshotMem: 500 });
  });

  it('a claim checks the GPU model the task requires (worker re-registered with another model)', async () => {
    const { shard, client, beat, dispatch } = setup();
    await beat('g1', T0, { cpu: 4, memMb: 1_000, gpu: 1, gpuModel: 'h100' });
    const t = await client.submit({
      type: 't',
      demand: { cpu: 1, memMb: 10, gpu: 1, gpuMilli: 1000, gpuModels: ['h100'] },
    });
    const snap = await dispatch(T0 + 10);
    expect(snap.workers.map((w) => w.view.gpuModel)).toEqual(['h100']);
    // Between the snapshot and the claim the worker leaves and a process with a t4 comes
    // back under the same id.
    await shard.deregister('g1', T0 + 20);
    await beat('g1', T0 + 30, { cpu: 4, memMb: 1_000, gpu: 1, gpuModel: 't4' });
    const r = await dispatch(T0 + 40, {
      window: 0,
      assignments: [{ taskId: t.id, workerId: 'g1', gpus: [0] }],
    });
    expect(r.claims[0]).toBe('full');
  });

  it('a speculative copy checks the GPU model the task requires', async () => {
    const { shard, client, beat, dispatch } = setup();
    await beat('g1', T0, { cpu: 4, memMb: 1_000, gpu: 1, gpuModel: 'h100' });
    await beat('g2', T0, { cpu: 4, memMb: 1_000, gpu: 1, gpuModel: 't4' });
    const t = await client.submit({
      type: 't',
      demand: { cpu: 1, memMb: 10, gpu: 1, gpuMilli: 1000, gpuModels: ['h100'] },
    });
    const r = await dispatch(T0 + 10, {
      window: 0,
      assignments: [{ taskId: t.id, workerId: 'g1', gpus: [0] }],
    });
    expect(r.claims).toEqual(['ok']);
    const lease = String(await shard.redis.hget(shard.k.task(t.id), 'lease')).split('\t')[0]!;
    const [s] = await shard.speculate(
      { leaseMs: 10_000, retryLimit: 2, backoffMs: 100 },
      [{ taskId: t.id, seenToken: lease, workerId: 'g2', gpus: [0] }],
      T0 + 20,
    );
    expect(s!.status).toBe('full');
  });
});
