// Cancelling a task, against a real redis-server: a queued task leaves its queue, a running
// copy is stopped on its worker (its signal aborts, its slot is given back, nothing completes
// it), dependents become upstream_failed and a later child of it is upstream_failed at submit,
// its job counts it failed and ends; ended tasks, unknown ids, bad input and a tenant in a
// placement move are refused and change nothing; a second cancel writes nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SchedulerClient } from '../controlplane/scheduler/client.ts';
import { migrationKey } from '../controlplane/scheduler/migration-row.ts';
import { SchedulerRouter } from '../controlplane/scheduler/router.ts';
import { SchedShard } from '../controlplane/scheduler/shard.ts';
import { placementKnobs } from './helpers/placement-knobs.ts';
import { wallClock } from './helpers/api-server.ts';
import { startRegistryApi } from './helpers/registry-fixtures.ts';
import { eventually, startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';
import {
  claim,
  heartbeatWorker,
  startScheduler,
  type SchedulerHarness,
} from './helpers/scheduler-harness.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const by = { actor: 'alice', reason: 'wrong input' };
const SETTLE = { durationsKept: 10, usageBucketMs: 1_000, usageTtlMs: 60_000, jobTtlMs: 0 };

describe('scheduler cancel', () => {
  let redis: TestRedis;
  const harnesses: SchedulerHarness[] = [];
  beforeAll(async () => {
    redis = await startTestRedis('single');
  });
  afterAll(async () => {
    await Promise.all(harnesses.map((h) => h.stop()));
    await redis?.stop();
  });
  async function harness(opts: Parameters<typeof startScheduler>[1] = {}) {
    const h = await startScheduler(redis, opts);
    harnesses.push(h);
    return h;
  }
  /** A shard and client with no service running (nothing dispatches or reaps). */
  function bare() {
    const shard = new SchedShard(redis.client(), uniqueKeys(), '0');
    return { shard, client: new SchedulerClient({ shard }) };
  }

  it('takes a runnable task out of its queue; a second cancel changes nothing', async () => {
    const { shard, client } = bare();
    await client.submitMany([
      { id: 'a', type: 'noop' },
      { id: 'b', type: 'noop' },
    ]);
    const r = await client.cancel('a', by);
    expect(r).toEqual({ id: 'a', changed: true, dependents: 0 });
    const row = await client.mustGet('a');
    expect(row.state).toBe('cancelled');
    expect(row.cancelled_by).toBe('alice');
    expect(row.error).toBe('cancelled by alice: wrong input');
    expect(await shard.redis.zrange(shard.k.runnable(), 0, -1)).toEqual(['b']);
    expect(await shard.redis.zscore(shard.k.dead(), 'a')).not.toBeNull();
    // No dead-letter row: a cancel is not a failure to inspect.
    expect(await shard.redis.exists(shard.k.deadRow('a'))).toBe(0);

    const v = await shard.redis.hget(shard.k.task('a'), '_v');
    expect(await client.cancel('a', { actor: 'bob', reason: 'again' })).toEqual({
      id: 'a',
      changed: false,
      dependents: 0,
    });
    expect(await shard.redis.hget(shard.k.task('a'), '_v')).toBe(v);
    expect((await client.mustGet('a')).cancelled_by).toBe('alice');
  });

  it('refuses ended and unknown tasks and bad input, changing nothing', async () => {
    const { shard, client } = bare();
    await client.submitMany([
      { id: 'done1', type: 'noop' },
      { id: 'open1', type: 'noop' },
    ]);
    const now = Date.now();
    await heartbeatWorker(shard, 'w1', now);
    const token = await claim(shard, 'done1', 'w1', now);
    await shard.settle([{ taskId: 'done1', token, outcome: 'ok', detail: 1 }], SETTLE, now + 1);
    await expect(client.cancel('done1', by)).rejects.toMatchObject({
      code: 'KNOBOS_STATE',
      status: 409,
      details: { field: 'state', rule: 'not_ended', state: 'done' },
    });
    expect((await client.mustGet('done1')).state).toBe('done');
    await expect(client.cancel('nope', by)).rejects.toMatchObject({
      code: 'KNOBOS_SCHEDULER_UNKNOWN_TASK',
    });
    expect(await shard.redis.exists(shard.k.task('nope'))).toBe(0);
    await expect(client.cancel('open1', { actor: '', reason: 'x' })).rejects.toMatchObject({
      code: 'KNOBOS_SCHEDULER_INVALID',
      details: { field: 'actor', rule: 'min' },
    });
    await expect(
      client.cancel('open1', { actor: 'a', reason: 'x'.repeat(501) }),
    ).rejects.toMatchObject({ details: { field: 'reason', rule: 'max' } });
    expect((await client.mustGet('open1')).state).toBe('runnable');
  });

  it('stops a running copy on its worker and gives its slot back', async () => {
    const h = await harness();
    const aborted: string[] = [];
    let completedSlow = 0;
    const w = await h.worker({
      concurrency: 1,
      handlers: {
        slow: (ctx) =>
          new Promise((resolve) => {
            // Ignores the abort for a while, then "completes": the completion must be ignored.
            ctx.signal.addEventListener('abort', () => {
              aborted.push(ctx.id);
              setTimeout(() => {
                completedSlow++;
                resolve('late');
              }, 100);
            });
          }),
        quick: () => 'ok',
      },
    });
    await h.service.client.submit({ id: 's1', type: 'slow' });
    await eventually(
      async () => (await h.service.client.get('s1'))?.state === 'leased',
      's1 leased',
    );
    await h.service.client.submit({ id: 'q1', type: 'quick' });
    await sleep(200);
    // The one slot is held: q1 waits.
    expect((await h.service.client.get('q1'))?.state).toBe('runnable');

    await h.service.client.cancel('s1', by);
    await eventually(() => aborted.includes('s1'), 's1 aborted on its worker');
    // The slot came back to the scheduler at once: q1 runs once the worker's copy ends.
    await eventually(async () => (await h.service.client.get('q1'))?.state === 'done', 'q1 done');
    await eventually(() => completedSlow === 1, 'the cancelled handler returned');
    await sleep(200);
    const row = await h.service.client.mustGet('s1');
    expect(row.state).toBe('cancelled');
    expect(row.result).toBeUndefined();
    expect(row.lease).toBeUndefined();
    const shard = h.service.shard;
    expect(await shard.redis.zcard(shard.k.leases())).toBe(0);
    const wr = await shard.redis.hget(shard.k.worker(w.id), 'used_slots');
    expect(Number(wr)).toBe(0);
  });

  it('stops a running copy on a worker with every slot busy at once, not at its renewal', async () => {
    // A renewal is due a third of the lease after the grant: 20 s here.
    const h = await harness({ knobs: { 'scheduler.lease_ms': 60_000 } });
    const aborted: string[] = [];
    await h.worker({
      concurrency: 1,
      handlers: {
        busy: (ctx) =>
          new Promise((_, reject) =>
            ctx.signal.addEventListener('abort', () => {
              aborted.push(ctx.id);
              reject(new Error('aborted'));
            }),
          ),
      },
    });
    const c = h.service.client;
    await c.submit({ id: 'b1', type: 'busy' });
    await eventually(async () => (await c.get('b1'))?.state === 'leased', 'b1 leased');
    await c.cancel('b1', by);
    await eventually(() => aborted.includes('b1'), 'b1 aborted on its busy worker', 3_000);
  });

  it('marks dependents upstream_failed and ends the job as failed', async () => {
    const { shard, client } = bare();
    await client.submitMany([
      { id: 'p', type: 'noop', jobId: 'job1' },
      { id: 'c1', type: 'noop', jobId: 'job1', parents: ['p'] },
      { id: 'c2', type: 'noop', jobId: 'job1', parents: ['c1'] },
    ]);
    const r = await client.cancel('p', by);
    expect(r.dependents).toBe(2);
    expect((await client.mustGet('c1')).state).toBe('upstream_failed');
    expect((await client.mustGet('c2')).state).toBe('upstream_failed');
    const job = await shard.redis.hgetall(shard.k.job('job1'));
    expect(job['remaining']).toBe('0');
    expect(job['dead']).toBe('3');
    expect(job['finished_at']).toBeDefined();
    // A child submitted later of the cancelled task can never run.
    await client.submit({ id: 'late', type: 'noop', parents: ['p'] });
    expect((await client.mustGet('late')).state).toBe('upstream_failed');
  });

  it('a cancelled pending task stays cancelled when its parent completes', async () => {
    const { shard, client } = bare();
    await client.submitMany([
      { id: 'p2', type: 'noop', jobId: 'job2' },
      { id: 'k2', type: 'noop', jobId: 'job2', parents: ['p2'] },
    ]);
    await client.cancel('k2', by);
    const now = Date.now();
    await heartbeatWorker(shard, 'w2', now);
    const token = await claim(shard, 'p2', 'w2', now);
    await shard.settle([{ taskId: 'p2', token, outcome: 'ok', detail: 1 }], SETTLE, now + 1);
    expect((await client.mustGet('k2')).state).toBe('cancelled');
    expect(await shard.redis.zscore(shard.k.runnable(), 'k2')).toBeNull();
    const job = await shard.redis.hgetall(shard.k.job('job2'));
    expect(job['remaining']).toBe('0');
    expect(job['dead']).toBe('1');
  });

  it('takes a delayed task out of the retry queue for good', async () => {
    const h = await harness({ knobs: { 'scheduler.retry_backoff_ms': 60_000 } });
    await h.worker({
      concurrency: 1,
      handlers: {
        flaky: () => {
          throw new Error('boom');
        },
      },
    });
    await h.service.client.submit({ id: 'd1', type: 'flaky' });
    await eventually(
      async () => (await h.service.client.get('d1'))?.state === 'delayed',
      'd1 delayed',
    );
    await h.service.client.cancel('d1', by);
    const shard = h.service.shard;
    expect(await shard.redis.zscore(shard.k.delayed(), 'd1')).toBeNull();
    expect((await h.service.client.mustGet('d1')).state).toBe('cancelled');
  });

  it('refuses while the task tenant moves between shards, but a running task on the old one', async () => {
    const keys = uniqueKeys();
    const shard = new SchedShard(redis.client(), keys, '0');
    const client = new SchedulerClient({ shard });
    await client.submitMany([
      { id: 'm1', type: 'noop', tenant: 't1' },
      { id: 'm2', type: 'noop', tenant: 't1' },
      { id: 'n1', type: 'noop', tenant: 't2' },
    ]);
    const now = Date.now();
    await heartbeatWorker(shard, 'wm', now);
    await claim(shard, 'm2', 'wm', now, 60_000);
    const row = (phase: string, from: string, to: string) =>
      shard.redis.hset(migrationKey(keys, 't1'), {
        tenant: 't1',
        from,
        to,
        phase,
        knob_version: 2,
        started_at: Date.now(),
      });
    // The old shard during the freeze: the move marks the tenant moving there.
    await row('freeze', '0', '1');
    await shard.redis.sadd(shard.k.movingTenants(), 't1');
    await expect(client.cancel('m1', by)).rejects.toMatchObject({
      code: 'KNOBOS_SCHEDULER_TENANT_MOVING',
      status: 503,
      details: { task: 'm1', tenant: 't1' },
    });
    expect((await client.mustGet('m1')).state).toBe('runnable');
    // A running task's row is not copied before its lease ends: its cancel goes with the copy.
    expect((await client.cancel('m2', by)).changed).toBe(true);
    // Another tenant's tasks are not held up.
    expect((await client.cancel('n1', by)).changed).toBe(true);
    await shard.redis.srem(shard.k.movingTenants(), 't1');
    // The new shard before the switch, the old one after it.
    for (const [phase, from, to] of [
      ['copy', '1', '0'],
      ['clean', '0', '1'],
    ] as const) {
      await row(phase, from, to);
      await expect(client.cancel('m1', by)).rejects.toMatchObject({
        code: 'KNOBOS_SCHEDULER_TENANT_MOVING',
        details: { task: 'm1', tenant: 't1', phase },
      });
      expect((await client.mustGet('m1')).state).toBe('runnable');
    }
    await row('switched', '1', '0');
    expect((await client.cancel('m1', by)).changed).toBe(true);
  });

  it('cancels a running task through the router while its tenant moves', async () => {
    const client = redis.client();
    const keys = uniqueKeys();
    const { knobs, setMap } = await placementKnobs(client, keys, 60_000);
    const router = new SchedulerRouter({
      redis: client,
      knobs,
      keys,
      shards: ['0', '1', '2'],
      holdMaxMs: 300,
    });
    try {
      const from = router.placement.shardOf('t1');
      const to = String((Number(from) + 1) % 3);
      await router.submitMany([
        { id: 'r1', type: 'x', tenant: 't1' },
        { id: 'r2', type: 'x', tenant: 't1' },
      ]);
      const old = new SchedShard(client, keys, from);
      const now = Date.now();
      await heartbeatWorker(old, 'wr', now);
      await claim(old, 'r1', 'wr', now, 60_000);
      // The move is asked for (routers hold the tenant's submits) and frozen on the old shard.
      const version = await setMap({ t1: Number(to) });
      await client.hset(migrationKey(keys, 't1'), {
        tenant: 't1',
        from,
        to,
        phase: 'freeze',
        knob_version: version,
        started_at: now,
      });
      await client.sadd(old.k.movingTenants(), 't1');
      expect(await router.cancel('r1', 't1', by)).toEqual({
        id: 'r1',
        changed: true,
        dependents: 0,
      });
      await expect(router.cancel('r2', 't1', by)).rejects.toMatchObject({
        code: 'KNOBOS_SCHEDULER_TENANT_MOVING',
      });
      await expect(router.cancel('r2', 't2', by)).rejects.toMatchObject({
        code: 'KNOBOS_SCHEDULER_UNKNOWN_TASK',
      });
    } finally {
      router.close();
      await knobs.close();
    }
  });

  it('leaves no row behind when a cancelled child is pruned before its parent completes', async () => {
    const { shard, client } = bare();
    await client.submitMany([
      { id: 'gp', type: 'noop' },
      { id: 'gc', type: 'noop', parents: ['gp'] },
    ]);
    await client.cancel('gc', by);
    expect(await shard.redis.smembers(shard.k.children('gp'))).toEqual([]);
    const now = Date.now();
    await shard.prune(
      { doneBefore: 0, doneMax: 1_000, deadBefore: now + 1_000, deadMax: 1_000, budget: 100 },
      now,
    );
    expect(await shard.redis.exists(shard.k.task('gc'))).toBe(0);
    await heartbeatWorker(shard, 'wg', now);
    const token = await claim(shard, 'gp', 'wg', now);
    await shard.settle([{ taskId: 'gp', token, outcome: 'ok', detail: 1 }], SETTLE, now + 1);
    expect(await shard.redis.exists(shard.k.task('gc'))).toBe(0);
    // The id is free again: a new task under it is created.
    expect(await client.submit({ id: 'gc', type: 'noop' })).toEqual({ id: 'gc', created: true });
  });

  it('leaves no row behind when an upstream_failed child is pruned before its other parent completes', async () => {
    const { shard, client } = bare();
    await client.submitMany([
      { id: 'up1', type: 'noop' },
      { id: 'up2', type: 'noop' },
      { id: 'uc', type: 'noop', parents: ['up1', 'up2'] },
    ]);
    const now = Date.now();
    await heartbeatWorker(shard, 'wu', now);
    const t1 = await claim(shard, 'up1', 'wu', now);
    await shard.settle([{ taskId: 'up1', token: t1, outcome: 'final', detail: 'no' }], SETTLE, now);
    expect((await client.mustGet('uc')).state).toBe('upstream_failed');
    await shard.prune(
      { doneBefore: 0, doneMax: 1_000, deadBefore: now + 1_000, deadMax: 1_000, budget: 100 },
      now,
    );
    expect(await shard.redis.exists(shard.k.task('uc'))).toBe(0);
    const t2 = await claim(shard, 'up2', 'wu', now);
    await shard.settle([{ taskId: 'up2', token: t2, outcome: 'ok', detail: 1 }], SETTLE, now + 1);
    expect(await shard.redis.exists(shard.k.task('uc'))).toBe(0);
  });

  it('a copy still queued in its worker inbox never starts', async () => {
    const h = await harness();
    const started: string[] = [];
    let release: () => void = () => {};
    await h.worker({
      concurrency: 1,
      handlers: {
        // Holds the worker's one slot, its abort ignored, until released.
        hold: (ctx) => {
          started.push(ctx.id);
          return new Promise((resolve) => (release = () => resolve('held')));
        },
        work: (ctx) => {
          started.push(ctx.id);
          return 'ran';
        },
      },
    });
    const c = h.service.client;
    await c.submit({ id: 'h1', type: 'hold' });
    await eventually(() => started.includes('h1'), 'h1 started');
    // The scheduler frees h1's slot at once: x1 is claimed into the busy worker's inbox.
    await c.cancel('h1', by);
    await c.submit({ id: 'x1', type: 'work' });
    await eventually(async () => (await c.get('x1'))?.state === 'leased', 'x1 claimed');
    await c.cancel('x1', by);
    release();
    await c.submit({ id: 'y1', type: 'work' });
    await eventually(async () => (await c.get('y1'))?.state === 'done', 'y1 done');
    expect(started).toEqual(['h1', 'y1']);
    expect((await c.mustGet('x1')).state).toBe('cancelled');
  });

  it("reports another tenant's task missing to a caller naming its tenant", async () => {
    const { client } = bare();
    await client.submit({ id: 'ot', type: 'noop', tenant: 'acme' });
    await expect(client.cancel('ot', { ...by, tenant: 'globex' })).rejects.toMatchObject({
      code: 'KNOBOS_SCHEDULER_UNKNOWN_TASK',
    });
    expect((await client.mustGet('ot')).state).toBe('runnable');
    expect((await client.cancel('ot', { ...by, tenant: 'acme' })).changed).toBe(true);
  });

  it('cancels over the API: operators only, a tenant token only its own tasks', async () => {
    const h = await harness();
    const api = await startRegistryApi(redis, { knobs: h.table, clock: wallClock() });
    try {
      await h.service.client.submitMany([
        { id: 'api-a', type: 'later', tenant: 'acme' },
        { id: 'api-g', type: 'later', tenant: 'globex' },
      ]);
      const viewer = api.bearer(await api.token('viewer', 'acme'));
      const operator = api.bearer(await api.token('operator', 'acme'));
      const cancel = (id: string, headers: Record<string, string>, payload: object) =>
        api.app.inject({
          method: 'POST',
          url: `/api/services/scheduler/tasks/${id}/cancel`,
          headers,
          payload,
        });
      const why = { reason: 'not needed' };
      expect((await cancel('api-a', viewer, why)).statusCode).toBe(403);
      expect((await cancel('api-a', operator, {})).statusCode).toBe(400);
      const other = await cancel('api-g', operator, why);
      expect(other.statusCode).toBe(404);
      expect((await h.service.client.mustGet('api-g')).state).toBe('runnable');
      expect((await h.service.client.mustGet('api-a')).state).toBe('runnable');

      const res = await cancel('api-a', operator, why);
      expect(res.statusCode).toBe(200);
      const body = res.json<{ changed: boolean; task: { state: string; cancelled_by: string } }>();
      expect(body.changed).toBe(true);
      expect(body.task.state).toBe('cancelled');
      expect(body.task.cancelled_by).toMatch(/#/);
      const again = await cancel('api-a', operator, why);
      expect(again.json<{ changed: boolean }>().changed).toBe(false);
      // Listed as cancelled, counted with the tenant's dead tasks (as the unscoped count does).
      const listed = await api.app.inject({
        url: '/api/services/scheduler/tasks?state=cancelled',
        headers: operator,
      });
      expect(listed.json<{ tasks: { id: string }[] }>().tasks.map((t) => t.id)).toEqual(['api-a']);
      const counts = await api.app.inject({ url: '/api/services/scheduler', headers: viewer });
      expect(counts.json<{ counts: Record<string, number> }>().counts).toMatchObject({
        dead: 1,
        runnable: 0,
      });

      await h.worker({ concurrency: 1, handlers: { quick: () => 1 } });
      await h.service.client.submit({ id: 'api-done', type: 'quick', tenant: 'acme' });
      await eventually(
        async () => (await h.service.client.get('api-done'))?.state === 'done',
        'api-done done',
      );
      const ended = await cancel('api-done', operator, why);
      expect(ended.statusCode).toBe(409);
      expect(ended.json()).toMatchObject({
        error: { code: 'KNOBOS_STATE', field: 'state', rule: 'not_ended', state: 'done' },
      });
    } finally {
      await api.close();
    }
  });
});
