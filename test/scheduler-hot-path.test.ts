// The hot path's packing: the hot indexes of a shard (runnable, leases) stay in Redis's skiplist
// encoding, also when they are created anew after draining, and the placeholder member that
// makes them so is never seen (includes/shard.lua, `zadd`; a listpack costs O(n) score parses
// per insert at the tail); a dispatch call's assignments travel grouped by worker and each
// status comes back to its own assignment; a settle batch answers the usual completion (the
// only copy, ok), which takes a path of its own in settle-12.lua, as it answers every other
// item.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SchedShard } from '../controlplane/scheduler/shard.ts';
import { normalizeBatch } from '../controlplane/scheduler/tasks.ts';
import { startTestRedis, type TestRedis } from './helpers/redis.ts';
import {
  claim,
  dispatchArgs,
  heartbeatWorker,
  startScheduler,
  type SchedulerHarness,
} from './helpers/scheduler-harness.ts';

const T0 = 1_700_000_000_000;
const SETTLE = { durationsKept: 101, usageBucketMs: 1_000, usageTtlMs: 600_000, jobTtlMs: 1 };

describe('scheduler hot-path packing', () => {
  let redis: TestRedis;
  const harnesses: SchedulerHarness[] = [];
  beforeAll(async () => {
    redis = await startTestRedis('single');
  });
  afterAll(async () => {
    await Promise.all(harnesses.map((h) => h.stop()));
    await redis?.stop();
  });

  const encoding = (shard: SchedShard, key: string) =>
    shard.redis.object('ENCODING', key) as Promise<string | null>;

  it('keeps runnable and leases as skiplists, through draining, with only real members', async () => {
    const h = await startScheduler(redis, { service: { background: false } });
    harnesses.push(h);
    const shard = h.service.shard;
    await heartbeatWorker(shard, 'w', T0);
    for (const round of [1, 2]) {
      await h.service.client.submitMany([
        { id: `a${round}`, type: 'x' },
        { id: `b${round}`, type: 'x' },
      ]);
      expect(await encoding(shard, shard.k.runnable())).toBe('skiplist');
      expect(await shard.redis.zrange(shard.k.runnable(), 0, -1)).toEqual([
        `a${round}`,
        `b${round}`,
      ]);
      const ta = await claim(shard, `a${round}`, 'w', T0);
      const tb = await claim(shard, `b${round}`, 'w', T0);
      expect(await encoding(shard, shard.k.leases())).toBe('skiplist');
      expect(await shard.redis.zrange(shard.k.leases(), 0, -1)).toEqual([
        `a${round}|${ta}`,
        `b${round}|${tb}`,
      ]);
      expect(await h.service.queries.counts()).toMatchObject({ runnable: 0, leases: 2 });
      const settled = await shard.settle(
        [
          { taskId: `a${round}`, token: ta, outcome: 'ok' },
          { taskId: `b${round}`, token: tb, outcome: 'ok' },
        ],
        SETTLE,
        T0 + 10,
      );
      expect(settled.map((s) => s.status)).toEqual(['ok', 'ok']);
      // Both drained: the keys are gone, and the next round creates them again.
      expect(await shard.redis.exists(shard.k.runnable(), shard.k.leases())).toBe(0);
    }
  });

  it('creates runnable as a skiplist also when a completed parent makes its child runnable', async () => {
    const h = await startScheduler(redis, { service: { background: false } });
    harnesses.push(h);
    const shard = h.service.shard;
    await heartbeatWorker(shard, 'w', T0);
    await h.service.client.submitMany([
      { id: 'p', type: 'x' },
      { id: 'c', type: 'x', parents: ['p'] },
    ]);
    const token = await claim(shard, 'p', 'w', T0);
    expect(await shard.redis.exists(shard.k.runnable())).toBe(0);
    await shard.settle([{ taskId: 'p', token, outcome: 'ok' }], SETTLE, T0 + 10);
    expect(await encoding(shard, shard.k.runnable())).toBe('skiplist');
    expect(await shard.redis.zrange(shard.k.runnable(), 0, -1)).toEqual(['c']);
  });

  it('a submit that fails creating runnable leaves no placeholder: the next task dispatches', async () => {
    const h = await startScheduler(redis, { service: { background: false } });
    harnesses.push(h);
    const shard = h.service.shard;
    let n = 0;
    const tasks = (id: string) =>
      normalizeBatch([{ id, type: 'x' }], () => `t${n++}`, { payloadBytesMax: 65_536 });
    // A NaN time is an invalid score. The script used to fail at the ZADD that creates runnable,
    // after the row was written (scripts do not roll back), and the placeholder used to stay,
    // first in line; submit now refuses it before it writes anything.
    await expect(shard.submit(tasks('a'), NaN)).rejects.toThrow(/float/);
    expect(await shard.redis.zrange(shard.k.runnable(), 0, -1)).toEqual([]);
    expect(await shard.redis.exists(shard.k.task('a'))).toBe(0);
    await shard.submit(tasks('b'), T0);
    expect(await shard.redis.zrange(shard.k.runnable(), 0, -1)).toEqual(['b']);
    await heartbeatWorker(shard, 'w', T0);
    await claim(shard, 'b', 'w', T0);
    expect(await h.service.queries.counts()).toMatchObject({ runnable: 0, leases: 1 });
  });

  it('a submit with an estimate the job row cannot sum writes nothing', async () => {
    const h = await startScheduler(redis, { service: { background: false } });
    harnesses.push(h);
    const shard = h.service.shard;
    let n = 0;
    const batch = normalizeBatch(
      [
        { id: 'e1', type: 'x', jobId: 'J' },
        { id: 'e2', type: 'x', jobId: 'J', estimateMs: 5 },
      ],
      () => `t${n++}`,
      { payloadBytesMax: 65_536 },
    );
    // Past the client's checks (a caller of the shard directly): the script summed it into the
    // job row after writing the batch's rows, and failed there (rows written, never indexed).
    (batch[1] as { estimateMs: unknown }).estimateMs = '5ms';
    await expect(shard.submit(batch, T0)).rejects.toThrow(/malformed.*estimate 5ms/);
    expect(await shard.redis.exists(shard.k.task('e1'), shard.k.task('e2'), shard.k.job('J'))).toBe(
      0,
    );
    expect(await shard.redis.zrange(shard.k.runnable(), 0, -1)).toEqual([]);
  });

  it('settles the usual completion on its own path and every other item as before, in one batch', async () => {
    const h = await startScheduler(redis, { service: { background: false } });
    harnesses.push(h);
    const shard = h.service.shard;
    await heartbeatWorker(shard, 'w', T0);
    let n = 0;
    await shard.submit(
      normalizeBatch(
        [
          { id: 'solo', type: 'x' },
          { id: 'j1', type: 'x', jobId: 'J', tenant: 't1', estimateMs: 30 },
          { id: 'j2', type: 'x', jobId: 'J', tenant: 't1', estimateMs: 30 },
          { id: 'pre', type: 'x' },
          { id: 'f', type: 'x' },
        ],
        () => `t${n++}`,
        { payloadBytesMax: 65_536 },
      ),
      T0,
    );
    // Tokens of several digits, so that one token can be a prefix of another.
    await shard.redis.set(shard.k.seq(), 1000);
    const tok: Record<string, string> = {};
    for (const id of ['solo', 'j1', 'j2', 'pre', 'f'])
      tok[id] = await claim(shard, id, 'w', T0 + 5);
    const settled = await shard.settle(
      [
        { taskId: 'solo', token: tok['solo']!, outcome: 'ok' },
        { taskId: 'j1', token: tok['j1']!, outcome: 'ok', detail: { n: 1 } },
        // A prefix of the holder's token is another copy's token: stale, not the holder.
        { taskId: 'pre', token: tok['pre']!.slice(0, -1), outcome: 'ok' },
        {
          taskId: 'f',
          token: tok['f']!,
          outcome: 'fail',
          detail: 'boom',
          retryLimit: 3,
          backoffMs: 7,
        },
        { taskId: 'solo', token: tok['solo']!, outcome: 'ok' },
        { taskId: 'nope', token: '1', outcome: 'ok' },
      ],
      SETTLE,
      T0 + 50,
    );
    expect(settled.map((s) => [s.taskId, s.status, s.ms, s.attempts, s.jobCompletionMs])).toEqual([
      // A task that is its own job ended with it: submitted at T0, done at T0 + 50.
      ['solo', 'ok', 45, 1, 50],
      ['j1', 'ok', 45, 1, undefined],
      ['pre', 'stale', 0, 1, undefined],
      ['f', 'retry', 7, 1, undefined],
      ['solo', 'again', 0, 1, undefined],
      ['nope', 'unknown', 0, 0, undefined],
    ]);
    expect(settled[0]).toMatchObject({ jobId: 'solo', stage: 'x', tenant: 'default' });
    expect(settled[1]).toMatchObject({ jobId: 'J', stage: 'x', tenant: 't1' });
    // The job's last task reports the job's time from its row.
    const [last] = await shard.settle(
      [{ taskId: 'j2', token: tok['j2']!, outcome: 'ok' }],
      SETTLE,
      T0 + 80,
    );
    expect(last).toMatchObject({ status: 'ok', ms: 75, jobCompletionMs: 80, jobId: 'J' });
    const solo = await h.service.client.mustGet('solo');
    expect(solo).toMatchObject({
      state: 'done',
      finished_at: T0 + 50,
      duration_ms: 45,
      result: 'null',
      attempts: 1,
      worker: 'w',
    });
    expect((await h.service.client.mustGet('j1')).result).toBe('{"n":1}');
    // Only `pre` still holds its lease: the worker row and the tenant's count say so.
    const w = await shard.redis.hmget(shard.k.worker('w'), 'used_slots', 'used_cpu_m');
    const pre = await h.service.client.mustGet('pre');
    expect(w).toEqual(['1', String(pre.cpu_m)]);
    expect(await shard.redis.hgetall(shard.k.tenantRunning())).toMatchObject({
      default: '1',
      t1: '0',
    });
    expect(await shard.redis.zrange(shard.k.leases(), 0, -1)).toEqual([`pre|${tok['pre']}`]);
    expect(await shard.redis.zrange(shard.k.done(), 0, -1)).toEqual(['j1', 'solo', 'j2']);
    expect(await shard.redis.llen(shard.k.durations('x'))).toBe(3);
    expect(await shard.redis.hget(shard.k.stats(), 'stale_completions')).toBe('1');
  });

  it('answers each claim of assignments interleaved across workers in the order given', async () => {
    const h = await startScheduler(redis, { service: { background: false } });
    harnesses.push(h);
    const shard = h.service.shard;
    for (const w of ['w1', 'w2']) await heartbeatWorker(shard, w, T0, 1);
    await h.service.client.submitMany(['a', 'b', 'c', 'd', 'e'].map((id) => ({ id, type: 'x' })));
    const r = await shard.dispatch(
      dispatchArgs(
        [
          { taskId: 'a', workerId: 'w1' },
          { taskId: 'b', workerId: 'nobody' },
          { taskId: 'c', workerId: 'w1' }, // w1 has one slot
          { taskId: 'd', workerId: 'w2' },
          { taskId: 'zz', workerId: 'w2' },
        ],
        10_000,
      ),
      T0,
    );
    expect(r.claims).toEqual(['ok', 'noworker', 'full', 'ok', 'gone']);
    const rows = await Promise.all(['a', 'c', 'd'].map((id) => h.service.client.mustGet(id)));
    expect(rows.map((t) => [t.state, t.worker])).toEqual([
      ['leased', 'w1'],
      ['runnable', undefined],
      ['leased', 'w2'],
    ]);
  });
});
