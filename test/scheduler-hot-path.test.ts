// The hot path's packing: the hot indexes of a shard (runnable, leases) stay in Redis's skiplist
// encoding, also when they are created anew after draining, and the placeholder member that
// makes them so is never seen (includes/shard.lua, `zadd`; a listpack costs O(n) score parses
// per insert at the tail); a dispatch call's assignments travel grouped by worker and each
// status comes back to its own assignment.
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
    // A NaN time is an invalid score: the script fails at the ZADD that creates runnable (after
    // the row is written: scripts do not roll back). The placeholder used to stay, first in line.
    await expect(shard.submit(tasks('a'), NaN)).rejects.toThrow(/float/);
    expect(await shard.redis.zrange(shard.k.runnable(), 0, -1)).toEqual([]);
    await shard.submit(tasks('b'), T0);
    expect(await shard.redis.zrange(shard.k.runnable(), 0, -1)).toEqual(['b']);
    await heartbeatWorker(shard, 'w', T0);
    await claim(shard, 'b', 'w', T0);
    expect(await h.service.queries.counts()).toMatchObject({ runnable: 0, leases: 1 });
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
