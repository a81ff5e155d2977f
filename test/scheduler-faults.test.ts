// Faults against real processes, on one node and on a 3-node cluster: a worker process killed
// with SIGKILL in the middle of a task (the task still completes, exactly once), and Redis
// killed with SIGKILL and restarted from its append-only file with `appendfsync always` (no
// acknowledged submission or completion is lost).
import { afterEach, describe, expect, it } from 'vitest';
import { SchedShard } from '../controlplane/scheduler/shard.ts';
import type { SettleResult } from '../controlplane/scheduler/types.ts';
import { eventually, startTestRedis, type Backend, type TestRedis } from './helpers/redis.ts';
import { forkWorker, type ForkedWorker } from './helpers/scheduler-fork.ts';
import { claim, startScheduler, type SchedulerHarness } from './helpers/scheduler-harness.ts';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanup.length)
    await cleanup
      .pop()?.()
      .catch(() => undefined);
});

async function setup(backend: Backend, opts: Parameters<typeof startTestRedis>[1] = {}) {
  const redis = await startTestRedis(backend, opts);
  cleanup.push(() => redis.stop());
  return redis;
}

async function scheduler(redis: TestRedis, knobs: Record<string, number> = {}) {
  const h = await startScheduler(redis, { knobs });
  cleanup.push(() => h.stop());
  return h;
}

describe.each<Backend>(['single', 'cluster'])('scheduler faults on %s redis', (backend) => {
  it('completes a task exactly once after its worker process is killed mid-task', async () => {
    const redis = await setup(backend);
    const h: SchedulerHarness = await scheduler(redis, { 'scheduler.lease_ms': 500 });
    const doomed: ForkedWorker = forkWorker({
      target: redis.target,
      prefix: h.keys.prefix,
      id: 'doomed',
      concurrency: 1,
      mode: 'hang',
    });
    cleanup.push(() => doomed.kill());
    await doomed.next((m) => m.type === 'ready', 'ready');
    const { id } = await h.service.client.submit({ type: 'job', idempotencyKey: 'once' });
    const started = await doomed.next((m) => m.type === 'started' && m.id === id, 'started');
    await doomed.kill();

    const ran: string[] = [];
    const settled: SettleResult[] = [];
    const survivor = await h.worker({
      id: 'survivor',
      concurrency: 1,
      handlers: { job: (t) => (ran.push(t.id), 'done by survivor') },
      onSettled: (_item, r) => settled.push(r),
    });
    await eventually(
      async () => (await h.service.client.mustGet(id)).state === 'done',
      'done',
      20_000,
    );

    const row = await h.service.client.mustGet(id);
    expect(row.worker).toBe(survivor.id);
    expect(row.attempts).toBe(2);
    expect(JSON.parse(row.result!)).toBe('done by survivor');
    expect(ran).toEqual([id]);
    expect(settled.map((r) => r.status)).toEqual(['ok']);
    expect((await h.service.queries.counts()).done).toBe(1);
    // The killed worker's copy can no longer complete it.
    const late = await h.service.shard.settle(
      [{ taskId: id, token: started.token!, outcome: 'ok', detail: 'late' }],
      { durationsKept: 10, usageBucketMs: 1_000, usageTtlMs: 60_000, jobTtlMs: 60_000 },
      Date.now(),
    );
    expect(late[0]!.status).toBe('stale');
    expect(JSON.parse((await h.service.client.mustGet(id)).result!)).toBe('done by survivor');
    expect(await h.service.queries.staleCompletions()).toBe(1);
  });

  it('loses no acknowledged submission or completion when Redis is killed and restarted', async () => {
    const redis = await setup(backend, { appendfsync: 'always' });
    const h = await scheduler(redis);
    const ackedSubmit = new Set<string>();
    const ackedDone = new Set<string>();
    const runs = new Map<string, number>();
    await h.worker({
      concurrency: 8,
      handlers: { job: (t) => void runs.set(t.id, (runs.get(t.id) ?? 0) + 1) },
      onSettled: (item, r) => {
        if (r.status === 'ok' || r.status === 'again') ackedDone.add(item.taskId);
      },
    });
    const batches = 12;
    const perBatch = 25;
    const submitBatch = async (b: number) => {
      const tasks = Array.from({ length: perBatch }, (_, j) => ({
        id: `t${b}-${j}`,
        type: 'job',
        idempotencyKey: `k${b}-${j}`,
      }));
      // A call that failed may or may not have run: resubmitting the same keys is safe.
      for (let attempt = 0; ; attempt++) {
        try {
          for (const r of await h.service.client.submitMany(tasks)) ackedSubmit.add(r.id);
          return;
        } catch (err) {
          if (attempt > 200) throw err;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    };
    for (let b = 0; b < batches / 2; b++) await submitBatch(b);
    await eventually(() => ackedDone.size >= 20, 'some completions before the crash');

    const node =
      redis.single ?? (await redis.cluster!.primaryForSlot(await shardSlot(h.service.shard)));
    const doneBefore = new Set(ackedDone);
    const submittedBefore = new Set(ackedSubmit);
    await node.kill();
    await new Promise((r) => setTimeout(r, 200));
    await node.restart();
    if (redis.cluster) await redis.cluster.waitReady();

    // Nothing acknowledged before the crash is gone.
    const reader = redis.client();
    for (const id of submittedBefore)
      expect(await reader.exists(h.service.shard.k.task(id))).toBe(1);
    for (const id of doneBefore) expect((await h.service.client.mustGet(id)).state).toBe('done');

    for (let b = batches / 2; b < batches; b++) await submitBatch(b);
    const total = batches * perBatch;
    await eventually(
      async () => (await h.service.queries.counts()).done === total,
      'all done',
      60_000,
    );
    expect(ackedSubmit.size).toBe(total);
    for (const id of ackedDone) expect((await h.service.client.mustGet(id)).state).toBe('done');
    expect((await h.service.queries.counts()).done).toBe(total);
    // A task may run twice when Redis lost its worker's connection mid-task, but it is
    // recorded complete once: every row completed by one lease.
    expect(runs.size).toBe(total);
  });

  it('runs on a copy claimed under the new incarnation before the re-registering beat returns', async () => {
    const redis = await setup(backend);
    const h = await startScheduler(redis, { service: { background: false } });
    cleanup.push(() => h.stop());
    const shard = h.service.shard;
    const ran: string[] = [];
    const settled: string[] = [];
    const w = await h.worker({
      id: 'w',
      concurrency: 2,
      heartbeatMs: 200,
      idleWaitMs: 100,
      handlers: {
        job: async (t) => {
          ran.push(t.id);
          await new Promise((r) => setTimeout(r, 300));
          return 'done';
        },
      },
      onSettled: (_item, r) => settled.push(`${r.taskId}:${r.status}`),
    });
    // The worker is declared dead (its row goes); its next beat creates the row again.
    const reap = { max: 100, jobTtlMs: 1, retryLimit: 3, backoffMs: 100 };
    expect((await shard.reap(reap, Date.now() + 60_000)).workersRemoved).toBe(1);
    // Before that beat's reply arrives, the dispatcher (rung by the beat) claims a task on the
    // new incarnation and the worker accepts it.
    const wShard = w.shard as { heartbeat: SchedShard['heartbeat'] };
    const beat = wShard.heartbeat.bind(w.shard);
    let raced = false;
    wShard.heartbeat = async (a, now) => {
      const res = await beat(a, now);
      if (res.registered && !raced) {
        raced = true;
        await h.service.client.submit({ id: 'x', type: 'job' });
        await claim(shard, 'x', 'w', Date.now(), 5_000);
        await eventually(() => ran.includes('x'), 'x accepted');
      }
      return res;
    };
    await eventually(async () => (await h.service.client.get('x'))?.state === 'done', 'done');
    expect(settled).toEqual(['x:ok']);
    expect(ran).toEqual(['x']);
  });
});

/** The cluster slot of the shard's hash tag. */
async function shardSlot(shard: SchedShard): Promise<number> {
  return Number(await shard.redis.call('CLUSTER', 'KEYSLOT', shard.k.runnable()));
}
