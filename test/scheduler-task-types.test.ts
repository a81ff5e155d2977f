// Typed routing: a worker runs only the task types it has handlers for, and the scheduler sends
// it nothing else. The policies' fit check refuses a worker that does not run a task's type;
// the claim and the speculative copy check it again in Redis; a fleet of workers with disjoint
// handlers runs every task on the right worker at its first attempt (before, any worker could
// be sent any task and failed those it had no handler for, burning their retries).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { afterPlacing, fits } from '../policies/gpu/fit.ts';
import {
  createSchedulingPolicy,
  SCHEDULING_POLICY_NAMES,
  type TaskView,
  type WorkerView,
} from '../policies/scheduling/index.ts';
import { eventually, startTestRedis, type TestRedis } from './helpers/redis.ts';
import {
  claim,
  dispatchArgs,
  dispatchOne,
  startScheduler,
  type SchedulerHarness,
} from './helpers/scheduler-harness.ts';
import { SchedulerClient } from '../controlplane/scheduler/client.ts';
import { wallClock } from './helpers/api-server.ts';
import { startRegistryApi } from './helpers/registry-fixtures.ts';
import {
  DEEP_RETRY_MS,
  DEEP_RETRY_PER_ROUND_MS,
  DEEP_ROUNDS_PER_LOOK,
  type Pending,
} from '../controlplane/scheduler/dispatcher.ts';

/** The longest a look that found nothing waits before it is repeated for new arrivals. */
const RETRY_MAX_MS = DEEP_RETRY_MS + DEEP_RETRY_PER_ROUND_MS * DEEP_ROUNDS_PER_LOOK;
import { ManualClock } from '../controlplane/knobs/clock.ts';
import type { SchedulerServiceOptions } from '../controlplane/scheduler/service.ts';
import type { SchedShard } from '../controlplane/scheduler/shard.ts';

const T0 = 1_700_000_000_000;

function worker(id: string, types?: string[]): WorkerView {
  const w: WorkerView = {
    id,
    free: { cpu: 4, memMb: 4096, gpu: 0 },
    capacity: { cpu: 4, memMb: 4096, gpu: 0 },
  };
  if (types) w.types = types;
  return w;
}

function task(id: string, type: string | undefined, at: number): TaskView {
  return {
    id,
    jobId: id,
    tenant: 't',
    priority: 0,
    demand: { cpu: 1, memMb: 10, gpu: 0, ...(type !== undefined ? { type } : {}) },
    jobRemainingWorkMs: 0,
    criticalPathMs: 0,
    submittedAt: at,
    readyAt: at,
    attempts: 0,
    stageDepth: 0,
    tenantRunning: 0,
    tenantServedMs: 0,
  };
}

// One redis-server for the file's scheduler tests (each scheduler has keys of its own).
let redis: TestRedis;
beforeAll(async () => {
  redis = await startTestRedis('single');
});
afterAll(async () => {
  await redis?.stop();
});

describe('task types in the policies', () => {
  it('fits a task only on a worker that runs its type (a worker without types runs all)', () => {
    const d = { cpu: 1, memMb: 10, gpu: 0, type: 'resize' };
    expect(fits(d, worker('any'))).toBe(true);
    expect(fits(d, worker('img', ['resize', 'crop']))).toBe(true);
    expect(fits(d, worker('mail', ['send']))).toBe(false);
    expect(fits(d, worker('none', []))).toBe(false);
    // A task of no known type runs only where every type does.
    const untyped = { cpu: 1, memMb: 10, gpu: 0 };
    expect(fits(untyped, worker('any'))).toBe(true);
    expect(fits(untyped, worker('mail', ['send']))).toBe(false);
    // The worker after a placement still runs what it ran.
    expect(afterPlacing(worker('mail', ['send']), d, []).types).toEqual(['send']);
  });

  for (const name of SCHEDULING_POLICY_NAMES) {
    it(`${name}: places each task on a worker of its type, and a type nobody runs blocks no other`, () => {
      const policy = createSchedulingPolicy(name);
      // The oldest task is of a type no worker runs: it fits nowhere, and a task asking as much
      // of another type must not be skipped as if it could not fit either.
      const tasks = [
        task('x1', 'x', 1),
        task('a1', 'a', 2),
        task('b1', 'b', 3),
        task('a2', 'a', 4),
      ];
      const picked = policy.pick(tasks, [worker('wa', ['a']), worker('wb', ['b'])], 10);
      const where = Object.fromEntries(picked.map((p) => [p.taskId, p.workerId]));
      expect(where).toEqual({ a1: 'wa', b1: 'wb', a2: 'wa' });
    });
  }
});

describe('task types in the scheduler', () => {
  const harnesses: SchedulerHarness[] = [];
  afterAll(async () => {
    for (const h of harnesses) await h.stop();
  });
  async function harness(opts: Parameters<typeof startScheduler>[1] = {}) {
    const h = await startScheduler(redis, opts);
    harnesses.push(h);
    return h;
  }
  async function register(shard: SchedShard, id: string, types?: string[]) {
    await shard.heartbeat(
      {
        workerId: id,
        heartbeatMs: 60_000,
        capacity: { cpu: 4, memMb: 1024 },
        slots: 4,
        host: 'test',
        pid: 1,
        ...(types ? { types } : {}),
        renew: [],
      },
      T0,
    );
  }

  it('refuses a claim on a worker that does not run the type, and shows the types in the snapshot', async () => {
    const h = await harness({ service: { background: false } });
    const shard = h.service.shard;
    await register(shard, 'mail', ['send']);
    await register(shard, 'any');
    await h.service.client.submit({ id: 'r1', type: 'resize' });
    expect((await dispatchOne(shard, 'r1', 'mail', T0)).status).toBe('unhandled');
    const row = await h.service.client.mustGet('r1');
    expect(row.state).toBe('runnable');
    expect(row.attempts).toBe(0);
    expect(await h.redis.hget(shard.k.worker('mail'), 'used_slots')).toBe('0');
    const snap = await shard.dispatch({ ...dispatchArgs([]), window: 10 }, T0);
    const views = Object.fromEntries(snap.workers.map((w) => [w.view.id, w.view.types]));
    expect(views).toEqual({ mail: ['send'], any: undefined });
    // A worker registered without types (as before they existed) runs every type.
    await claim(shard, 'r1', 'any', T0);
    expect((await h.service.client.mustGet('r1')).state).toBe('leased');
    const loads = await h.service.queries.workerLoads(T0);
    expect(Object.fromEntries(loads.map((l) => [l.id, l.types]))).toEqual({
      mail: ['send'],
      any: undefined,
    });
  });

  it('starts no speculative copy on a worker that does not run the type', async () => {
    const h = await harness({ service: { background: false } });
    const shard = h.service.shard;
    await register(shard, 'img1', ['resize']);
    await register(shard, 'mail', ['send']);
    await register(shard, 'img2', ['resize']);
    await h.service.client.submit({ id: 'r2', type: 'resize' });
    const token = await claim(shard, 'r2', 'img1', T0);
    const knobs = { leaseMs: 1_000, retryLimit: 3, backoffMs: 10 };
    const seen = { taskId: 'r2', seenToken: token };
    const [refused] = await shard.speculate(knobs, [{ ...seen, workerId: 'mail' }], T0 + 10);
    expect(refused?.status).toBe('unhandled');
    expect(await h.redis.hget(shard.k.task('r2'), 'spec_lease')).toBeNull();
    const [ok] = await shard.speculate(knobs, [{ ...seen, workerId: 'img2' }], T0 + 10);
    expect(ok?.status).toBe('ok');
    expect(await h.redis.hget(shard.k.task('r2'), 'spec_lease')).toMatch(/^\d+\timg2\t/);
  });

  it('runs every task of a mixed fleet on a worker of its type, at its first attempt', async () => {
    const h = await harness({ knobs: { 'scheduler.retry_limit': 3 } });
    const ran: Record<string, string[]> = { img: [], mail: [] };
    const img = await h.worker({
      concurrency: 4,
      handlers: { resize: (ctx) => void ran['img']!.push(ctx.id) },
    });
    const mail = await h.worker({
      concurrency: 4,
      handlers: { send: (ctx) => void ran['mail']!.push(ctx.id) },
    });
    const ids = Array.from({ length: 60 }, (_, i) => `m${i}`);
    await h.service.client.submitMany(
      ids.map((id, i) => ({ id, type: i % 2 === 0 ? 'resize' : 'send' })),
    );
    for (const id of ids)
      await eventually(async () => (await h.service.client.get(id))?.state === 'done', id);
    for (const [i, id] of ids.entries()) {
      const row = await h.service.client.mustGet(id);
      expect(row.attempts, id).toBe(1);
      expect(row.worker, id).toBe(i % 2 === 0 ? img.id : mail.id);
    }
    expect(ran['img']!.sort()).toEqual(ids.filter((_, i) => i % 2 === 0).sort());
    expect(ran['mail']!.sort()).toEqual(ids.filter((_, i) => i % 2 === 1).sort());
  });
});

describe('a window full of tasks no free worker can run', () => {
  let h: SchedulerHarness;
  beforeAll(async () => {
    h = await startScheduler(redis);
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('does not hold back tasks behind it: the dispatcher looks past it for work', async () => {
    // 300 tasks of a type no worker runs fill every window (at most 128, here 32: one worker
    // of 2 slots), then tasks a worker runs. Before, the window never moved past the first.
    const c = h.service.client;
    await c.submitMany(Array.from({ length: 300 }, (_, i) => ({ id: `x${i}`, type: 'x' })));
    await c.submitMany(Array.from({ length: 10 }, (_, i) => ({ id: `a${i}`, type: 'a' })));
    const ran: string[] = [];
    await h.worker({ concurrency: 2, handlers: { a: (ctx) => void ran.push(ctx.id) } });
    await eventually(async () => ran.length === 10, 'the ten a tasks ran', 10_000);
    expect(ran.sort()).toEqual(Array.from({ length: 10 }, (_, i) => `a${i}`).sort());
    expect((await h.service.queries.counts()).runnable).toBe(300);
    // A worker for them arrives: they run too (the window starts at the head again).
    let xs = 0;
    await h.worker({ concurrency: 50, handlers: { x: () => void xs++ } });
    await eventually(async () => xs === 300, 'the x tasks ran', 20_000);
  });
});

describe('looking past the head of the queue', () => {
  it('finds work before the rank where work was last found, once a worker for it arrives', async () => {
    // No doorbell wait ends early and no lease expires: only the dispatcher's own chaining of
    // rounds can find the b tasks once their worker registers.
    const h = await startScheduler(redis, {
      knobs: { 'scheduler.lease_ms': 600_000 },
      service: { idleWaitMs: 600_000 },
    });
    try {
      const c = h.service.client;
      const shard = h.service.shard;
      const ids = (p: string, n: number) => Array.from({ length: n }, (_, i) => `${p}${i}`);
      const counts = { x: 40, b: 5, y: 40, a: 20 };
      for (const [p, type] of [
        ['x', 'x'],
        ['b', 'b'],
        ['y', 'x'],
        ['a', 'a'],
      ] as const)
        await c.submitMany(ids(p, counts[p]).map((id) => ({ id, type })));
      const beat = (workerId: string, types: string[]) =>
        shard.heartbeat(
          {
            workerId,
            heartbeatMs: 60_000,
            capacity: { cpu: 8, memMb: 1024 },
            slots: 8,
            host: 'test',
            pid: 1,
            types,
            renew: [],
          },
          Date.now(),
        );
      const leased = async (p: keyof typeof counts) => {
        let n = 0;
        for (const id of ids(p, counts[p])) if ((await c.get(id))?.state === 'leased') n++;
        return n;
      };
      // Only a worker for the a tasks (past 85 tasks no worker runs): work found 64 deep, 8
      // tasks for its 8 slots, and the other 12 wait for them.
      await beat('wa', ['a']);
      await eventually(async () => (await leased('a')) === 8, 'a tasks leased', 5_000);
      // Its registration rings the doorbell: a look from the head, then from rank 64, where
      // work was last found (it skips the b tasks at ranks 40-44), to the end: nothing. Then
      // once more from the head, every window in turn.
      await beat('wb', ['b']);
      await eventually(async () => (await leased('b')) === 5, 'the b tasks leased', 5_000);
      expect(await leased('a')).toBe(8);
      expect((await h.service.queries.counts()).runnable).toBe(92);
    } finally {
      await h.stop();
    }
  });
});

describe('looking past the head, round by round', () => {
  const ids = (p: string, n: number) =>
    Array.from({ length: n }, (_, i) => `${p}${String(i).padStart(4, '0')}`);
  async function world(
    clock = new ManualClock(Date.now()),
    service: Partial<SchedulerServiceOptions> = {},
  ) {
    const h = await startScheduler(redis, { service: { background: false, clock, ...service } });
    const d = h.service.dispatcher;
    const state = d as unknown as { again: boolean };
    let p: Pending[] = [];
    /** Rounds until the dispatcher would wait; the assignments made on the way. */
    const settle = async () => {
      const made: Pending[] = [];
      let n = 0;
      do {
        p = await d.round(p);
        made.push(...p);
        n++;
      } while ((p.length > 0 || state.again) && n < 200);
      return { made, rounds: n };
    };
    const beat = (
      id: string,
      cap: { cpu: number; memMb: number },
      slots: number,
      types?: string[],
    ) =>
      h.service.shard.heartbeat(
        {
          workerId: id,
          heartbeatMs: 600_000,
          capacity: cap,
          slots,
          host: 'test',
          pid: 1,
          ...(types ? { types } : {}),
          renew: [],
        },
        clock.now(),
      );
    const step = async () => (p = await d.round(p));
    return { h, d, settle, beat, clock, step };
  }

  /**
   * wb (type b, one core, 4 slots) runs a task that takes its core; behind 300 tasks no worker
   * runs waits bb, a b task wb has no core for.
   */
  async function busyWbBehindX(w: Awaited<ReturnType<typeof world>>) {
    const c = w.h.service.client;
    await c.submit({ id: 'run', type: 'b', demand: { cpu: 1 } });
    await w.beat('wb', { cpu: 1, memMb: 1024 }, 4, ['b']);
    expect((await w.settle()).made.map((a) => a.taskId)).toEqual(['run']);
    w.clock.advance(10);
    await c.submitMany(ids('x', 300).map((id) => ({ id, type: 'x' })));
    w.clock.advance(10);
    await c.submit({ id: 'bb', type: 'b', demand: { cpu: 1 } });
    return c;
  }

  it('never looks past tasks that only wait for room: they keep their order', async () => {
    const { h, settle, beat } = await world();
    try {
      // Every task needs 1 GB: the worker has slots and cores left, memory for two.
      await h.service.client.submitMany(
        ids('t', 100).map((id) => ({ id, type: 'a', demand: { cpu: 1, memMb: 1024 } })),
      );
      await beat('w1', { cpu: 8, memMb: 2048 }, 8);
      const first = await settle();
      expect(first.made.map((a) => a.taskId)).toEqual(['t0000', 't0001']);
      expect(first.rounds).toBe(2); // no look past the window while w1 waits for memory
      await beat('w2', { cpu: 8, memMb: 1024 }, 8);
      expect((await settle()).made.map((a) => `${a.taskId}>${a.workerId}`)).toEqual(['t0002>w2']);
    } finally {
      await h.stop();
    }
  });

  it('looks past a blocked head for tasks that ask for no cores, and not again until the queue changes', async () => {
    const { h, settle, beat, clock } = await world();
    try {
      const c = h.service.client;
      await c.submit({ id: 'big', type: 'a', demand: { cpu: 1 } });
      await beat('w', { cpu: 1, memMb: 1024 }, 8, ['a']);
      expect((await settle()).made.map((a) => a.taskId)).toEqual(['big']);
      // The worker has slots but no core left; only tasks asking for none can go there.
      await c.submitMany(ids('x', 200).map((id) => ({ id, type: 'x' })));
      await c.submitMany(
        ids('z', 5).map((id) => ({ id, type: 'a', demand: { cpu: 0, memMb: 0 } })),
      );
      expect((await settle()).made.map((a) => a.taskId)).toEqual(ids('z', 5));
      // Nothing new: the look that found nothing is not repeated (one round from the head).
      clock.advance(RETRY_MAX_MS);
      expect((await settle()).rounds).toBe(1);
      // A new task: the queue changed, and the last look is a second old: a look finds it.
      await c.submit({ id: 'z9', type: 'a', demand: { cpu: 0, memMb: 0 } });
      expect((await settle()).made.map((a) => a.taskId)).toEqual(['z9']);
    } finally {
      await h.stop();
    }
  });

  it('looks past tasks no free worker is big enough for (GPUs, memory) to work that fits', async () => {
    const { h, settle, beat, clock } = await world();
    try {
      const c = h.service.client;
      await c.submitMany(ids('g', 40).map((id) => ({ id, type: 'a', demand: { cpu: 1, gpu: 1 } })));
      clock.advance(10);
      await c.submitMany(ids('m', 40).map((id) => ({ id, type: 'a', demand: { memMb: 64_000 } })));
      clock.advance(10);
      await c.submitMany(ids('c', 5).map((id) => ({ id, type: 'a' })));
      await beat('cpu', { cpu: 8, memMb: 4096 }, 8);
      expect((await settle()).made.map((a) => a.taskId)).toEqual(ids('c', 5));
    } finally {
      await h.stop();
    }
  });

  it('finds work past the head after tasks before it left the queue', async () => {
    const { h, settle, beat, clock } = await world();
    try {
      const c = h.service.client;
      await c.submitMany(ids('x', 100).map((id) => ({ id, type: 'x' })));
      clock.advance(10);
      await c.submitMany(ids('a', 10).map((id) => ({ id, type: 'a' })));
      await beat('wa', { cpu: 1, memMb: 1024 }, 1, ['a']);
      expect((await settle()).made.map((a) => a.taskId)).toEqual(['a0000']);
      for (const id of ids('x', 100).slice(50)) await c.cancel(id, { actor: 't', reason: 'r' });
      // Another worker of the same kind: a new look finds the next one.
      await beat('wa2', { cpu: 1, memMb: 1024 }, 1, ['a']);
      expect((await settle()).made.map((a) => a.taskId)).toEqual(['a0001']);
    } finally {
      await h.stop();
    }
  });

  it('finds each kind of free worker its work when kinds take turns', async () => {
    const { h, settle, beat, clock } = await world();
    try {
      const c = h.service.client;
      // 16 windows (of 128) of tasks nobody runs before their work.
      await c.submitMany(ids('x', 2048).map((id) => ({ id, type: 'x' })));
      clock.advance(10);
      await c.submit({ id: 'deep-a', type: 'a' });
      await c.submit({ id: 'deep-b', type: 'b' });
      const made: string[] = [];
      for (let wake = 0; wake < 8 && made.length < 2; wake++) {
        // Only one of the two workers has a free slot at each wake-up, in turn.
        const [on, off] = wake % 2 === 0 ? ['wa', 'wb'] : ['wb', 'wa'];
        await beat(off, { cpu: 1, memMb: 1024 }, 0, [off === 'wa' ? 'a' : 'b']);
        await beat(on, { cpu: 1, memMb: 1024 }, 1, [on === 'wa' ? 'a' : 'b']);
        made.push(...(await settle()).made.map((a) => a.taskId));
      }
      expect(made.sort()).toEqual(['deep-a', 'deep-b']);
    } finally {
      await h.stop();
    }
  }, 30_000);

  it('finds a task put among the blocked ones by a clock behind, once the retry time passed', async () => {
    const { h, settle, beat, clock } = await world();
    try {
      const t0 = clock.now();
      const at = (ms: number) =>
        new SchedulerClient({ shard: h.service.shard, clock: { now: () => ms } });
      await at(t0 - 200_000).submitMany(ids('x', 50).map((id) => ({ id, type: 'x' })));
      await at(t0 - 100_000).submitMany(ids('y', 50).map((id) => ({ id, type: 'x' })));
      await beat('wa', { cpu: 1, memMb: 1024 }, 1, ['a']);
      await settle(); // looks to the queue's end: nothing
      await at(t0 - 150_000).submit({ id: 'late', type: 'a' }); // into the skipped stretch
      clock.advance(RETRY_MAX_MS);
      expect((await settle()).made.map((a) => a.taskId)).toEqual(['late']);
    } finally {
      await h.stop();
    }
  });

  it('looks past the head for an idle worker of another kind while one waits for room there', async () => {
    const { h, settle, beat, clock } = await world();
    try {
      const c = h.service.client;
      await c.submitMany(ids('a', 50).map((id) => ({ id, type: 'a', demand: { memMb: 1024 } })));
      clock.advance(10);
      await c.submitMany(ids('b', 5).map((id) => ({ id, type: 'b' })));
      await beat('wa', { cpu: 8, memMb: 2048 }, 8, ['a']);
      await beat('wb', { cpu: 8, memMb: 2048 }, 8, ['b']);
      const made = (await settle()).made.map((x) => `${x.taskId}>${x.workerId}`);
      // wa takes the two a tasks it has memory for and waits for more (it never takes one
      // from past the head); wb, which runs none of them, gets the b tasks behind them.
      expect(made.sort()).toEqual(
        ['a0000>wa', 'a0001>wa', ...ids('b', 5).map((id) => `${id}>wb`)].sort(),
      );
    } finally {
      await h.stop();
    }
  });

  it('repeats a look that found nothing once its worker has room, not while nothing changes', async () => {
    const w = await world();
    const { h, settle, beat, clock } = w;
    try {
      const c = await busyWbBehindX(w);
      await beat('wc', { cpu: 1, memMb: 1024 }, 1, ['c']);
      // wb meets bb but has no core for it; wc finds nothing: the look ends with nothing.
      expect((await settle()).made).toEqual([]);
      // Idle wake-ups with nothing changed: no look again.
      clock.advance(250);
      expect((await settle()).rounds).toBe(1);
      // wb's task ends (the queue's length and arrivals unchanged): its room changed, so the
      // look is repeated for it.
      await c.cancel('run', { actor: 't', reason: 'r' });
      expect((await settle()).made.map((a) => a.taskId)).toEqual(['bb']);
    } finally {
      await h.stop();
    }
  });

  it('repeats a look that found nothing once a task arrived, also when another left', async () => {
    const { h, settle, beat, clock } = await world();
    try {
      const c = h.service.client;
      await c.submitMany(ids('x', 300).map((id) => ({ id, type: 'x' })));
      await beat('wb', { cpu: 1, memMb: 1024 }, 1, ['b']);
      expect((await settle()).made).toEqual([]);
      await c.cancel('x0005', { actor: 't', reason: 'r' });
      clock.advance(10);
      await c.submit({ id: 'bnew', type: 'b' });
      clock.advance(RETRY_MAX_MS);
      expect((await settle()).made.map((a) => a.taskId)).toEqual(['bnew']);
    } finally {
      await h.stop();
    }
  });

  it('looks again when a task a worker met waiting for room leaves the queue', async () => {
    const w = await world();
    const { h, settle, clock } = w;
    try {
      const c = await busyWbBehindX(w);
      clock.advance(10);
      await c.submitMany(ids('y', 200).map((id) => ({ id, type: 'x' })));
      clock.advance(10);
      await c.submit({ id: 'bz', type: 'b', demand: { cpu: 0, memMb: 0 } });
      expect((await settle()).made).toEqual([]); // wb meets bb (no core), waits: FIFO
      await c.cancel('bb', { actor: 't', reason: 'r' });
      clock.advance(RETRY_MAX_MS + 1000);
      const soon = (await settle()).made.map((a) => a.taskId);
      expect(soon).toEqual(['bz']);
    } finally {
      await h.stop();
    }
  });

  it('looks again for a task that lands behind a look while it is under way (a clock behind)', async () => {
    const { h, settle, beat, clock, step } = await world();
    try {
      const t0 = clock.now();
      const at = (ms: number) =>
        new SchedulerClient({ shard: h.service.shard, clock: { now: () => ms } });
      await at(t0 - 200_000).submitMany(ids('x', 100).map((id) => ({ id, type: 'x' })));
      await at(t0 - 100_000).submitMany(ids('y', 400).map((id) => ({ id, type: 'x' })));
      await beat('wa', { cpu: 1, memMb: 1024 }, 1, ['a']);
      await step(); // head round: starts a look
      await step(); // first deeper window (ranks 32..159)
      await at(t0 - 150_000).submit({ id: 'late', type: 'a' }); // rank 100: already read
      await settle(); // the look goes on to the end: nothing; remembers arrivals incl. 'late'
      clock.advance(RETRY_MAX_MS + 1000);
      const soon = (await settle()).made.map((a) => a.taskId);
      expect(soon).toEqual(['late']);
    } finally {
      await h.stop();
    }
  });

  it('looks for a worker back with other task types under the same id', async () => {
    const { h, settle, beat, clock } = await world();
    try {
      const c = h.service.client;
      await c.submitMany(ids('x', 300).map((id) => ({ id, type: 'x' })));
      clock.advance(10);
      await c.submit({ id: 'deep-a', type: 'a' });
      await beat('w', { cpu: 1, memMb: 1024 }, 1, ['b']);
      expect((await settle()).made).toEqual([]);
      clock.advance(RETRY_MAX_MS + 1000);
      await beat('w', { cpu: 1, memMb: 1024 }, 1, ['a']); // redeployed with an 'a' handler
      const soon = (await settle()).made.map((a) => a.taskId);
      expect(soon).toEqual(['deep-a']);
    } finally {
      await h.stop();
    }
  });

  it('does not look again when only the room of a worker that met nothing changes', async () => {
    const { h, settle, beat, clock } = await world();
    try {
      const c = h.service.client;
      await c.submitMany(ids('r', 10).map((id) => ({ id, type: 'c', demand: { cpu: 1 } })));
      await beat('wc', { cpu: 10, memMb: 4096 }, 20, ['c']);
      expect((await settle()).made.length).toBe(10);
      clock.advance(10);
      await c.submitMany(ids('x', 33 * 128 + 64).map((id) => ({ id, type: 'x' })));
      const first = await settle();
      const rounds: number[] = [first.rounds];
      for (const id of ids('r', 10).slice(0, 5)) {
        await c.cancel(id, { actor: 't', reason: 'r' }); // a task of wc ends
        clock.advance(50);
        rounds.push((await settle()).rounds);
      }
      expect(rounds.slice(1).every((r) => r <= 2)).toBe(true);
    } finally {
      await h.stop();
    }
  }, 60_000);

  const lookOf = (d: unknown) =>
    (d as { deepFor?: { ids: Set<string>; met: Map<string, string> } }).deepFor;

  it('looks again for a worker that met work and got room while the look went on for another', async () => {
    const w = await world();
    const { h, settle, beat, clock, step, d } = w;
    try {
      const c = await busyWbBehindX(w);
      clock.advance(10);
      await c.submitMany(ids('y', 400).map((id) => ({ id, type: 'x' })));
      await beat('wc', { cpu: 1, memMb: 1024 }, 1, ['c']);
      let n = 0;
      await step(); // the head round: a look for wb and wc
      while (!lookOf(d)?.met.has('wb') && n++ < 40) await step();
      expect(lookOf(d)?.met.has('wb')).toBe(true); // wb met bb; the look goes on for wc
      await c.cancel('run', { actor: 't', reason: 'r' }); // wb has its core back, mid-look
      expect((await settle()).made).toEqual([]); // the look ends (for wc) with nothing
      clock.advance(RETRY_MAX_MS + 1000);
      expect((await settle()).made.map((a) => a.taskId)).toEqual(['bb']);
    } finally {
      await h.stop();
    }
  });

  it('looks again for a worker that left a look part way and came back', async () => {
    const { h, settle, beat, clock, step, d } = await world();
    try {
      const c = h.service.client;
      await c.submitMany(ids('x', 600).map((id) => ({ id, type: 'x' })));
      clock.advance(10);
      await c.submit({ id: 'deep-a', type: 'a' });
      await beat('wa', { cpu: 1, memMb: 1024 }, 1, ['a']);
      await beat('wc', { cpu: 1, memMb: 1024 }, 1, ['c']);
      await step(); // the head round: a look for wa and wc
      await step(); // the first deeper window
      expect([...(lookOf(d)?.ids ?? [])].sort()).toEqual(['wa', 'wc']);
      await h.service.shard.deregister('wa', clock.now()); // no leases: nothing requeued
      expect((await settle()).made).toEqual([]); // wc reads to the end: nothing
      await beat('wa', { cpu: 1, memMb: 1024 }, 1, ['a']); // back, same id and kind
      clock.advance(RETRY_MAX_MS + 1000);
      expect((await settle()).made.map((a) => a.taskId)).toEqual(['deep-a']);
    } finally {
      await h.stop();
    }
  });

  it('does not look again when the free workers shown change but their kinds do not', async () => {
    // More free workers than a round shows (workersMax 2): each beat changes which are shown.
    const { h, settle, beat, clock } = await world(new ManualClock(Date.now()), {
      workersMax: 2,
    });
    const beatC = (id: string) => beat(id, { cpu: 1, memMb: 1024 }, 1, ['c']);
    try {
      await h.service.client.submitMany(ids('x', 4000).map((id) => ({ id, type: 'x' })));
      for (let i = 0; i < 20; i++) {
        await beatC(`c${i}`);
        clock.advance(1000);
      }
      expect((await settle()).rounds).toBeGreaterThan(1); // the look, once
      const perBeat: number[] = [];
      for (let i = 0; i < 20; i++) {
        await beatC(`c${i}`);
        clock.advance(1000);
        perBeat.push((await settle()).rounds);
      }
      expect(perBeat.every((n) => n === 1)).toBe(true);
    } finally {
      await h.stop();
    }
  });

  it('keeps the head marker: a task that lands in the head window after a deeper look is seen', async () => {
    const { h, settle, beat, clock } = await world();
    try {
      const c = h.service.client;
      await c.submitMany(ids('x', 40).map((id) => ({ id, type: 'x' })));
      clock.advance(10); // the a tasks after the x tasks
      await c.submitMany(ids('a', 100).map((id) => ({ id, type: 'a' })));
      await beat('wa0', { cpu: 1, memMb: 1024 }, 1, ['a']);
      await settle();
      // A producer whose clock is behind: its task's ready time falls inside the head window.
      const skewed = new SchedulerClient({
        shard: h.service.shard,
        clock: { now: () => Date.now() - 60_000 },
      });
      await skewed.submit({ id: 'old-a', type: 'a' });
      await beat('wa1', { cpu: 1, memMb: 1024 }, 1, ['a']);
      expect((await settle()).made.map((a) => a.taskId)).toEqual(['old-a']);
    } finally {
      await h.stop();
    }
  });
});

describe('the backlog by task type', () => {
  it('counts runnable tasks per type next to the live workers that run it, over the API too', async () => {
    const h = await startScheduler(redis, { service: { background: false } });
    const api = await startRegistryApi(redis, { knobs: h.table, clock: wallClock() });
    try {
      const c = h.service.client;
      await c.submitMany([
        ...['x1', 'x2', 'x3'].map((id) => ({ id, type: 'x', tenant: 'acme' })),
        ...['a1', 'a2'].map((id) => ({ id, type: 'a', tenant: 'acme' })),
        { id: 'b1', type: 'b', tenant: 'globex' },
      ]);
      const beat = (id: string, slots: number, types?: string[]) =>
        h.service.shard.heartbeat(
          {
            workerId: id,
            heartbeatMs: 60_000,
            capacity: { cpu: slots, memMb: 1024 },
            slots,
            host: 'test',
            pid: 1,
            ...(types ? { types } : {}),
            renew: [],
          },
          Date.now(),
        );
      await beat('wa', 4, ['a']);
      await beat('wb', 2, ['b', 'c']);
      const q = h.service.queries;
      expect(await q.typeBacklog(Date.now())).toEqual({
        types: [
          { type: 'x', runnable: 3, workers: 0, freeSlots: 0 },
          { type: 'a', runnable: 2, workers: 1, freeSlots: 4 },
          { type: 'b', runnable: 1, workers: 1, freeSlots: 2 },
        ],
        scanned: 6,
        truncated: false,
      });
      // A worker that runs every type runs x too; the scan's bound; one tenant's tasks.
      await beat('any', 1);
      const bounded = await q.typeBacklog(Date.now(), { scanMax: 4 });
      // The oldest four (same ready time: by id): a1, a2, b1, x1.
      expect(bounded).toMatchObject({ scanned: 4, truncated: true });
      expect(bounded.types).toContainEqual({ type: 'x', runnable: 1, workers: 1, freeSlots: 1 });
      const viewer = api.bearer(await api.token('viewer', 'globex'));
      const res = await api.app.inject({ url: '/api/services/scheduler/types', headers: viewer });
      expect(res.statusCode).toBe(200);
      // No `scanned`: it counts every tenant's runnable tasks.
      expect(res.json()).toEqual({
        tenant: 'globex',
        types: [{ type: 'b', runnable: 1, workers: 2, freeSlots: 3 }],
        truncated: false,
      });
    } finally {
      await api.close();
      await h.stop();
    }
  });
});
