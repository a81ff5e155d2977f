// Cancelling a whole job, against a real redis-server: every task of it that has not ended is
// cancelled (queued, waiting on parents, running), its dependents become upstream_failed, ended
// tasks and other jobs are left as they are, a job of one task is named by its id, and unknown
// jobs, another tenant's job and bad input are refused; over the API (operators; a tenant's
// token only its own jobs). The CLI's `knobos tasks cancel-job`: test/cli-args.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SchedulerClient } from '../controlplane/scheduler/client.ts';
import { SchedShard } from '../controlplane/scheduler/shard.ts';
import { wallClock } from './helpers/api-server.ts';
import { startRegistryApi } from './helpers/registry-fixtures.ts';
import { startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';
import { claim, heartbeatWorker, startScheduler } from './helpers/scheduler-harness.ts';

const by = { actor: 'alice', reason: 'wrong input' };
const SETTLE = { durationsKept: 10, usageBucketMs: 1_000, usageTtlMs: 60_000, jobTtlMs: 0 };

describe('scheduler job cancel', () => {
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

  it('cancels every open task of a job, whatever its state, and leaves the rest alone', async () => {
    const { shard, client } = bare();
    const job = { jobId: 'j', tenant: 'acme' };
    // done -> running; queued; waiting on the running one; waiting on a task of another job.
    await client.submitMany([
      { id: 'o', type: 'noop', tenant: 'acme' },
      { id: 'done', type: 'noop', ...job },
      { id: 'run', type: 'noop', parents: ['done'], ...job },
      { id: 'queued', type: 'noop', ...job },
      { id: 'child', type: 'noop', parents: ['run'], ...job },
      { id: 'waits', type: 'noop', parents: ['o'], ...job },
      { id: 'other', type: 'noop', parents: ['queued'], jobId: 'k', tenant: 'acme' },
    ]);
    const now = Date.now();
    await heartbeatWorker(shard, 'w', now);
    const t = await claim(shard, 'done', 'w', now, 60_000);
    await shard.settle([{ taskId: 'done', token: t, outcome: 'ok' }], SETTLE, now + 1);
    await claim(shard, 'run', 'w', now + 2, 60_000);

    const r = await client.cancelJob('j', by);
    // Sorted ids, in turn: 'child' is cancelled before its parent 'run' fails it upstream.
    expect(r).toEqual({
      job: 'j',
      cancelled: ['child', 'queued', 'run', 'waits'],
      dependents: 1, // 'other', of job k, downstream of 'queued'
      ended: 1, // 'done'
    });
    const states = Object.fromEntries(
      await Promise.all(
        ['o', 'done', 'run', 'queued', 'child', 'waits', 'other'].map(
          async (id) => [id, (await client.mustGet(id)).state] as const,
        ),
      ),
    );
    expect(states).toEqual({
      o: 'runnable',
      done: 'done',
      run: 'cancelled',
      queued: 'cancelled',
      child: 'cancelled',
      waits: 'cancelled',
      other: 'upstream_failed',
    });
    // The running copy's capacity is back, the job has ended (failed).
    expect(await shard.redis.hget(shard.k.worker('w'), 'used_slots')).toBe('0');
    expect(await shard.redis.hmget(shard.k.job('j'), 'remaining', 'dead')).toEqual(['0', '4']);
    // Again: nothing is left to cancel.
    expect(await client.cancelJob('j', by)).toEqual({
      job: 'j',
      cancelled: [],
      dependents: 0,
      ended: 5,
    });
  });

  it('names a job of one task by its id, and refuses unknown jobs, another tenant and bad input', async () => {
    const { client } = bare();
    await client.submitMany([
      { id: 'solo', type: 'noop', tenant: 'acme' },
      { id: 'm1', type: 'noop', tenant: 'acme', jobId: 'multi' },
    ]);
    const missing = { code: 'KNOBOS_SCHEDULER_UNKNOWN_TASK', status: 404 };
    await expect(client.cancelJob('nope', by)).rejects.toMatchObject(missing);
    // A task of a job of several tasks does not name a job.
    await expect(client.cancelJob('m1', by)).rejects.toMatchObject(missing);
    await expect(client.cancelJob('multi', { ...by, tenant: 'globex' })).rejects.toMatchObject(
      missing,
    );
    await expect(client.cancelJob('multi', { actor: '', reason: 'x' })).rejects.toMatchObject({
      code: 'KNOBOS_SCHEDULER_INVALID',
      field: 'actor',
    });
    await expect(client.cancelJob('bad job', by)).rejects.toMatchObject({
      code: 'KNOBOS_SCHEDULER_INVALID',
      field: 'job',
    });
    expect((await client.mustGet('m1')).state).toBe('runnable');
    expect(await client.cancelJob('solo', { ...by, tenant: 'acme' })).toEqual({
      job: 'solo',
      cancelled: ['solo'],
      dependents: 0,
      ended: 0,
    });
    expect((await client.mustGet('solo')).state).toBe('cancelled');
  });

  it('keeps the set of a finished job as long as its row, and reopens both with a new task', async () => {
    const { shard, client } = bare();
    const ttl = { ...SETTLE, jobTtlMs: 60_000 };
    await client.submitMany([{ id: 'f1', type: 'noop', jobId: 'f' }]);
    const now = Date.now();
    await heartbeatWorker(shard, 'w', now);
    const t = await claim(shard, 'f1', 'w', now, 60_000);
    await shard.settle([{ taskId: 'f1', token: t, outcome: 'ok' }], ttl, now + 1);
    const expiry = async () => [
      await shard.redis.pttl(shard.k.job('f')),
      await shard.redis.pttl(shard.k.jobTasks('f')),
    ];
    const [row, set] = await expiry();
    expect(row).toBeGreaterThan(0);
    expect(set).toBeGreaterThan(0);
    await client.submit({ id: 'f2', type: 'noop', jobId: 'f' });
    expect(await expiry()).toEqual([-1, -1]);
    expect((await shard.redis.smembers(shard.k.jobTasks('f'))).sort()).toEqual(['f1', 'f2']);
  });

  it('cancels over the API', async () => {
    const h = await startScheduler(redis, { service: { background: false } });
    const api = await startRegistryApi(redis, { knobs: h.table, clock: wallClock() });
    try {
      const c = h.service.client;
      await c.submitMany([
        { id: 'a1', type: 'x', tenant: 'acme', jobId: 'ja' },
        { id: 'a2', type: 'x', tenant: 'acme', jobId: 'ja' },
        { id: 'g1', type: 'x', tenant: 'globex', jobId: 'jg' },
      ]);
      const viewer = api.bearer(await api.token('viewer', 'acme'));
      const operator = api.bearer(await api.token('operator', 'acme'));
      const cancel = (job: string, headers: Record<string, string>, payload: object) =>
        api.app.inject({
          method: 'POST',
          url: `/api/services/scheduler/jobs/${job}/cancel`,
          headers,
          payload,
        });
      const why = { reason: 'not needed' };
      expect((await cancel('ja', viewer, why)).statusCode).toBe(403);
      expect((await cancel('ja', operator, {})).statusCode).toBe(400);
      expect((await cancel('jg', operator, why)).statusCode).toBe(404);
      expect((await cancel('none', operator, why)).statusCode).toBe(404);
      expect((await c.mustGet('g1')).state).toBe('runnable');
      const res = await cancel('ja', operator, why);
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ job: 'ja', cancelled: ['a1', 'a2'], dependents: 0, ended: 0 });
      expect((await c.mustGet('a1')).cancelled_by).toMatch(/#/);
    } finally {
      await api.close();
      await h.stop();
    }
  });
  it('leaves alone a task whose id retention freed and another task took', async () => {
    const { shard, client } = bare();
    await client.submitMany([
      { id: 'step1', type: 'noop', tenant: 'acme', jobId: 'J' },
      { id: 'step2', type: 'noop', tenant: 'acme', jobId: 'J' },
    ]);
    const now = Date.now();
    await heartbeatWorker(shard, 'w', now);
    const t = await claim(shard, 'step1', 'w', now, 60_000);
    await shard.settle([{ taskId: 'step1', token: t, outcome: 'ok' }], SETTLE, now + 1);
    // Retention removes step1's row; a task of another tenant and job takes the id.
    await shard.redis.del(shard.k.task('step1'));
    await shard.redis.zrem(shard.k.done(), 'step1');
    await client.submit({ id: 'step1', type: 'noop', tenant: 'globex' });
    expect(await client.cancelJob('J', by)).toEqual({
      job: 'J',
      cancelled: ['step2'],
      dependents: 0,
      ended: 1, // the step1 of J, removed by retention
    });
    expect((await client.mustGet('step1')).state).toBe('runnable');
  });

  it('cancels a job whose done tasks retention removed, also after one was submitted again', async () => {
    const { shard, client } = bare();
    await client.submitMany([
      { id: 's1', type: 'noop', jobId: 'R' },
      { id: 's2', type: 'noop', jobId: 'R' },
    ]);
    const now = Date.now();
    await heartbeatWorker(shard, 'w', now);
    const t = await claim(shard, 's1', 'w', now, 60_000);
    await shard.settle([{ taskId: 's1', token: t, outcome: 'ok' }], SETTLE, now + 1);
    await shard.prune(
      { doneBefore: now + 10, doneMax: 0, deadBefore: 0, deadMax: 0, budget: 100 },
      now + 10,
    );
    expect(await client.get('s1')).toBeNull();
    // The batch sent again: s1 is a new task of R (its total grows, its set already names it).
    await client.submitMany([
      { id: 's1', type: 'noop', jobId: 'R' },
      { id: 's2', type: 'noop', jobId: 'R' },
    ]);
    expect(await client.cancelJob('R', by)).toEqual({
      job: 'R',
      cancelled: ['s1', 's2'],
      dependents: 0,
      ended: 0,
    });
  });

  it("leaves alone another tenant's task submitted with the job's id", async () => {
    const { client } = bare();
    await client.submit({ id: 'a1', type: 'noop', tenant: 'acme', jobId: 'J' });
    await client.submit({ id: 'e1', type: 'noop', tenant: 'evil', jobId: 'J' });
    expect(await client.cancelJob('J', by)).toEqual({
      job: 'J',
      cancelled: ['a1'],
      dependents: 0,
      ended: 0,
    });
    expect((await client.mustGet('e1')).state).toBe('runnable');
  });

  it('refuses a job whose tasks are not all indexed, cancelling nothing', async () => {
    const { shard, client } = bare();
    await client.submitMany([
      { id: 'o1', type: 'noop', jobId: 'old' },
      { id: 'o2', type: 'noop', jobId: 'old' },
    ]);
    // As a job submitted before its tasks were indexed: a row without the mark, no set.
    await shard.redis.hdel(shard.k.job('old'), 'tasks_indexed');
    await shard.redis.del(shard.k.jobTasks('old'));
    await expect(client.cancelJob('old', by)).rejects.toMatchObject({
      code: 'KNOBOS_STATE',
      status: 409,
      details: { field: 'job', rule: 'indexed' },
    });
    expect((await client.mustGet('o1')).state).toBe('runnable');
  });
});
