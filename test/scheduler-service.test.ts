// The scheduler service against real redis-server processes, on one node and on a 3-node
// cluster: submit, dispatch, run and complete; idempotent submit; DAG order; retries with
// backoff, then dead letters; duplicate completions ignored; knob changes applied live;
// stragglers and speculation; decision-support queries; telemetry and traces. The state
// machine tests drive the shard's transitions with explicit times (no timers, no waiting).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../controlplane/knobs/clock.ts';
import { UnknownParentError, SchedulerInputError } from '../controlplane/scheduler/errors.ts';
import type { SchedShard } from '../controlplane/scheduler/shard.ts';
import { PermanentTaskError } from '../controlplane/scheduler/worker.ts';
import { traceRecords, telemetryEntries } from '../controlplane/telemetry/read.ts';
import { eventually, startTestRedis, type Backend, type TestRedis } from './helpers/redis.ts';
import {
  claim,
  dispatchOne,
  startScheduler,
  type SchedulerHarness,
} from './helpers/scheduler-harness.ts';

describe.each<Backend>(['single', 'cluster'])('scheduler on %s redis', (backend) => {
  let redis: TestRedis;
  const harnesses: SchedulerHarness[] = [];
  beforeAll(async () => {
    redis = await startTestRedis(backend);
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

  it('runs submitted tasks on a worker and records each completion once', async () => {
    const h = await harness();
    const seen: string[] = [];
    await h.worker({
      concurrency: 4,
      handlers: { echo: async (t) => (seen.push(t.id), { got: t.payload }) },
    });
    const res = await h.service.client.submitMany(
      Array.from({ length: 20 }, (_, i) => ({ type: 'echo', payload: { i } })),
    );
    expect(res.every((r) => r.created)).toBe(true);
    await eventually(async () => (await h.service.queries.counts()).done === 20, '20 done');
    expect(new Set(seen).size).toBe(20);
    const row = await h.service.client.mustGet(res[3]!.id);
    expect(row.state).toBe('done');
    expect(JSON.parse(row.result!)).toEqual({ got: { i: 3 } });
    expect(row.attempts).toBe(1);
  });

  it('stores payloads with non-ASCII text, escapes and a large body intact', async () => {
    const h = await harness({ service: { background: false } });
    const payloads = [
      { u: 'é€😀', tab: 'a\tb', nl: 'a\nb' },
      { big: 'x'.repeat(20_000) },
      null,
      'plain',
    ];
    const res = await h.service.client.submitMany(
      payloads.map((payload, i) => ({ id: `p${i}`, type: 'x', payload })),
    );
    expect(res.every((r) => r.created)).toBe(true);
    for (const [i, payload] of payloads.entries()) {
      const row = await h.service.client.mustGet(`p${i}`);
      expect(JSON.parse(row.payload)).toEqual(payload);
      expect(row.state).toBe('runnable');
    }
  });

  it('returns the existing task for a resubmitted idempotency key', async () => {
    const h = await harness({ service: { background: false } });
    const a = await h.service.client.submit({ type: 'x', idempotencyKey: 'order-42' });
    const b = await h.service.client.submit({ type: 'x', idempotencyKey: 'order-42' });
    const [c, d] = await h.service.client.submitMany([
      { type: 'x', idempotencyKey: 'order-43' },
      { type: 'x', idempotencyKey: 'order-43' },
    ]);
    expect(a.created).toBe(true);
    expect(b).toEqual({ id: a.id, created: false });
    expect(c!.created).toBe(true);
    expect(d).toEqual({ id: c!.id, created: false });
    expect((await h.service.queries.counts()).runnable).toBe(2);
  });

  it('runs a DAG in dependency order', async () => {
    const h = await harness();
    const order: string[] = [];
    await h.worker({
      concurrency: 8,
      handlers: { step: async (t) => void order.push(t.id) },
    });
    // a -> (b, c) -> d, and e depends on a task submitted in an earlier call (d).
    await h.service.client.submitMany([
      { id: 'a', type: 'step', jobId: 'j1' },
      { id: 'b', type: 'step', jobId: 'j1', parents: ['a'] },
      { id: 'c', type: 'step', jobId: 'j1', parents: ['a'] },
      { id: 'd', type: 'step', jobId: 'j1', parents: ['b', 'c'] },
    ]);
    await h.service.client.submit({ id: 'e', type: 'step', jobId: 'j1', parents: ['d'] });
    await eventually(() => order.length === 5, 'all five ran');
    const at = (id: string) => order.indexOf(id);
    expect(at('a')).toBe(0);
    expect(at('d')).toBeGreaterThan(Math.max(at('b'), at('c')));
    expect(at('e')).toBe(4);
    // A handler has returned before its completion is settled: wait for the last one.
    await eventually(async () => (await h.service.client.get('e'))?.state === 'done', 'e done');
    const job = await h.service.queries.job('j1');
    expect(job).toMatchObject({ total: 5, remaining: 0 });
    expect(job!.finished_at).toBeGreaterThan(0);
  });

  it('refuses a parent that does not exist, writing nothing', async () => {
    const h = await harness({ service: { background: false } });
    const err = await h.service.client
      .submitMany([
        { id: 'ok1', type: 'x' },
        { id: 'orphan', type: 'x', parents: ['nope'] },
      ])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnknownParentError);
    expect((err as UnknownParentError).details).toMatchObject({ field: 'parents', parent: 'nope' });
    expect(await h.service.client.get('ok1')).toBeNull();
    const bad = await h.service.client.submit({ type: 'has space' }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(SchedulerInputError);
    expect((bad as SchedulerInputError).field).toBe('type');
  });

  it('retries a failing task with backoff, then dead-letters it and its dependents', async () => {
    const h = await harness({ knobs: { 'scheduler.retry_limit': 2 } });
    let calls = 0;
    await h.worker({
      concurrency: 2,
      handlers: {
        boom: () => {
          calls++;
          throw new Error('kaput');
        },
        never: () => 'should not run',
      },
    });
    await h.service.client.submitMany([
      { id: 'f', type: 'boom' },
      { id: 'g', type: 'never', parents: ['f'] },
    ]);
    await eventually(async () => (await h.service.client.mustGet('f')).state === 'dead', 'dead');
    expect(calls).toBe(3); // the first attempt and retry_limit = 2 more
    const [dl] = await h.service.queries.deadLetters();
    expect(dl).toMatchObject({ id: 'f', attempts: 3, error: 'kaput' });
    expect((await h.service.client.mustGet('g')).state).toBe('upstream_failed');
  });

  it('marks every dependent of a dead task, also past the bound of 1,000 marks per step', async () => {
    const h = await harness();
    // 1,200 children of the root (more than one step marks), and a grandchild under five.
    const children = Array.from({ length: 1_200 }, (_, i) => ({
      id: `c${i}`,
      type: 'ok',
      jobId: 'J',
      parents: ['root'],
    }));
    const grandchildren = Array.from({ length: 5 }, (_, i) => ({
      id: `g${i}`,
      type: 'ok',
      jobId: 'J',
      parents: [`c${i}`],
    }));
    await h.service.client.submitMany([
      { id: 'root', type: 'bad', jobId: 'J' },
      ...children,
      ...grandchildren,
    ]);
    await h.worker({
      concurrency: 2,
      handlers: {
        bad: () => {
          throw new PermanentTaskError('no');
        },
        ok: () => 1,
      },
    });
    const states = async (ids: string[]) =>
      Promise.all(ids.map(async (id) => (await h.service.client.mustGet(id)).state));
    await eventually(
      async () =>
        (await states(grandchildren.map((g) => g.id))).every((s) => s === 'upstream_failed'),
      'the grandchildren past the bound are marked too',
    );
    expect(new Set(await states(children.map((c) => c.id)))).toEqual(new Set(['upstream_failed']));
    expect(await h.service.queries.counts()).toMatchObject({ runnable: 0, leases: 0, dead: 1_206 });
    expect(await h.service.queries.job('J')).toMatchObject({ remaining: 0, dead: 1_206 });
    const job = await h.service.queries.job('J');
    expect(job).toMatchObject({ remaining: 0, dead: 1_206 });
  });

  it('dead-letters at once on a permanent error', async () => {
    const h = await harness();
    await h.worker({
      concurrency: 1,
      handlers: {
        bad: () => {
          // Newlines, tabs and multi-byte characters travel intact (settle items are packed).
          throw new PermanentTaskError('malformed input\n\tat line 2: «é»');
        },
      },
    });
    const { id } = await h.service.client.submit({ type: 'bad' });
    await eventually(async () => (await h.service.client.mustGet(id)).state === 'dead', 'dead');
    const row = await h.service.client.mustGet(id);
    expect(row.attempts).toBe(1);
    expect(row.error).toBe('malformed input\n\tat line 2: «é»');
  });

  const SETTLE = {
    durationsKept: 101,
    usageBucketMs: 1_000,
    usageTtlMs: 600_000,
    jobTtlMs: 600_000,
  };
  const T0 = 1_700_000_000_000;

  /** Registers a worker at `now` (2 slots, 2 cores unless said otherwise). */
  async function register(
    shard: SchedShard,
    id: string,
    now: number,
    capacity: { cpu: number; memMb: number; gpu?: number } = { cpu: 2, memMb: 1024 },
    slots = 2,
  ) {
    return shard.heartbeat(
      { workerId: id, heartbeatMs: 1_000, capacity, slots, host: 'test', pid: 1, renew: [] },
      now,
    );
  }

  it('completes once: a duplicate completion is ignored and counted, a repeated one is answered again', async () => {
    const h = await harness({ service: { background: false } });
    const shard = h.service.shard;
    await register(shard, 'wa', T0);
    await register(shard, 'wb', T0);
    const { id } = await h.service.client.submit({ id: 'x', type: 'job' });
    const first = await claim(shard, id, 'wa', T0);
    // wa stalls; its lease (1 s) runs out; the task backs off 100 ms and is claimed by wb.
    const reaped = await shard.reap(
      { max: 100, jobTtlMs: 1, retryLimit: 3, backoffMs: 100 },
      T0 + 1_001,
    );
    expect(reaped).toMatchObject({ expired: 1, retried: 1 });
    expect(await shard.redis.lrange(shard.k.stops('wa'), 0, -1)).toContain(`!${first}\tx`);
    expect(
      (await shard.reap({ max: 100, jobTtlMs: 1, retryLimit: 3, backoffMs: 100 }, T0 + 1_101))
        .promoted,
    ).toBe(1);
    const second = await claim(shard, id, 'wb', T0 + 1_200);
    const ok = await shard.settle(
      [{ taskId: id, token: second, outcome: 'ok', detail: 'b' }],
      SETTLE,
      T0 + 1_300,
    );
    const again = await shard.settle(
      [{ taskId: id, token: second, outcome: 'ok', detail: 'b' }],
      SETTLE,
      T0 + 1_400,
    );
    const late = await shard.settle(
      [{ taskId: id, token: first, outcome: 'ok', detail: 'a' }],
      SETTLE,
      T0 + 1_500,
    );
    expect([ok[0]!.status, again[0]!.status, late[0]!.status]).toEqual(['ok', 'again', 'stale']);
    const row = await h.service.client.mustGet(id);
    expect(row).toMatchObject({ state: 'done', worker: 'wb', attempts: 2, duration_ms: 100 });
    expect(JSON.parse(row.result!)).toBe('b');
    expect(await h.service.queries.staleCompletions()).toBe(1);
    const loads = await h.service.queries.workerLoads(T0 + 1_500);
    expect(loads.map((w) => w.usedSlots)).toEqual([0, 0]);
  });

  it('backs off exponentially between attempts (retry_backoff_ms x 2^(attempt-1))', async () => {
    const h = await harness({ service: { background: false } });
    const shard = h.service.shard;
    await register(shard, 'w', T0);
    const { id } = await h.service.client.submit({ id: 'flaky', type: 'job' });
    let now = T0;
    const delays: number[] = [];
    for (let attempt = 1; attempt <= 3; attempt++) {
      const token = await claim(shard, id, 'w', now);
      const [r] = await shard.settle(
        [{ taskId: id, token, outcome: 'fail', detail: 'boom', retryLimit: 5, backoffMs: 250 }],
        SETTLE,
        now + 10,
      );
      expect(r!.status).toBe('retry');
      delays.push(r!.ms);
      expect(Number(await shard.redis.zscore(shard.k.delayed(), id))).toBe(now + 10 + r!.ms);
      now += 10 + r!.ms;
      expect(
        (await shard.reap({ max: 10, jobTtlMs: 1, retryLimit: 5, backoffMs: 250 }, now)).promoted,
      ).toBe(1);
    }
    expect(delays).toEqual([250, 500, 1_000]);
  });

  it('applies a changed policy and lease time to the running scheduler without a restart', async () => {
    const h = await harness();
    // Four waiting tasks, the newest the most urgent; no worker yet, so nothing is dispatched.
    await h.service.client.submitMany([
      ...[1, 2, 3].map((i) => ({ id: `low${i}`, type: 'job', priority: 0 })),
      { id: 'urgent', type: 'job', priority: 10 },
    ]);
    await h.setKnob('scheduler.policy', 'priority');
    await h.setKnob('scheduler.lease_ms', 5_000);
    // The worker runs copies in the order the dispatcher pushed them: the policy's order.
    const order: string[] = [];
    const w = await h.worker({
      concurrency: 2,
      handlers: {
        job: (t) => void order.push(t.id),
        // Runs until the worker stops, so its lease can be looked at.
        slow: (t) => new Promise((resolve) => t.signal.addEventListener('abort', resolve)),
      },
    });
    await eventually(() => order.length === 4, 'four ran');
    expect(order[0]).toBe('urgent');
    // The lease of a new claim is the changed one.
    await h.service.client.submit({ id: 'timed', type: 'slow' });
    await eventually(
      async () => (await h.service.client.mustGet('timed')).state === 'leased',
      'leased',
    );
    const row = await h.service.client.mustGet('timed');
    const expiry = await h.redis.zscore(h.service.shard.k.leases(), `timed|${row.lease}`);
    expect(Number(expiry) - row.leased_at!).toBe(5_000);
    await w.stop({ drain: false });
    await h.service.traces.decisions.flush();
    const decisions = await traceRecords(h.redis, h.keys, 'scheduler', 'decisions');
    expect(decisions.map((d) => d.fields['policy'])).toContain('priority');
  });

  it('claims nothing more for a draining worker: a task arriving meanwhile runs elsewhere, once', async () => {
    const h = await harness({
      knobs: { 'scheduler.retry_limit': 0, 'scheduler.lease_ms': 1_000 },
    });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const ran: string[] = [];
    const w1 = await h.worker({
      id: 'w1',
      concurrency: 2,
      handlers: { job: async (t) => (ran.push(t.id), t.id === 'A' ? gate : 1) },
    });
    await h.service.client.submit({ id: 'A', type: 'job' });
    await eventually(() => ran.includes('A'), 'A runs');
    const stopping = w1.stop({ drain: true, timeoutMs: 10_000 });
    await eventually(
      async () =>
        (await h.service.queries.workerLoads(Date.now())).find((l) => l.id === 'w1')?.slots === 0,
      'the draining row has no slots',
    );
    // w1 has a free slot, but drains: B must wait for another worker, not sit in w1's inbox.
    await h.service.client.submit({ id: 'B', type: 'job' });
    await new Promise((r) => setTimeout(r, 300));
    expect((await h.service.client.mustGet('B')).state).toBe('runnable');
    release();
    await stopping;
    expect((await h.service.client.mustGet('A')).state).toBe('done');
    await h.worker({ id: 'w2', concurrency: 1, handlers: { job: (t) => (ran.push(t.id), 2) } });
    await eventually(async () => (await h.service.client.mustGet('B')).state === 'done', 'B done');
    expect(ran).toEqual(['A', 'B']);
    expect((await h.service.client.mustGet('B')).attempts).toBe(1);
  });

  it('refuses worker settings that would spin, drop or mis-count it, naming the field', async () => {
    const h = await harness({ service: { background: false } });
    const cases: [Record<string, unknown>, string][] = [
      [{ settleBatchMax: 0 }, 'settleBatchMax'],
      [{ heartbeatMs: 0 }, 'heartbeatMs'],
      [{ heartbeatMs: -5 }, 'heartbeatMs'],
      [{ idleWaitMs: 0.5 }, 'idleWaitMs'],
      [{ capacity: { cpu: -2, memMb: 1024, gpu: 0 } }, 'capacity.cpu'],
      [{ capacity: { cpu: NaN, memMb: 1024, gpu: 0 } }, 'capacity.cpu'],
      [{ capacity: { cpu: 1, memMb: 0, gpu: 0 } }, 'capacity.memMb'],
      [{ capacity: { cpu: 1, memMb: 1024, gpu: 1.5 } }, 'capacity.gpu'],
    ];
    for (const [extra, field] of cases) {
      const err = await h
        .worker({ concurrency: 1, handlers: {}, ...extra })
        .catch((e: unknown) => e);
      expect(err, field).toBeInstanceOf(SchedulerInputError);
      expect((err as SchedulerInputError).field).toBe(field);
    }
    expect(await h.service.queries.workerRows()).toEqual([]);
  });

  it('finds a straggler, copies it to another worker, and the first copy to finish wins', async () => {
    const clock = new ManualClock(T0);
    const h = await harness({
      knobs: { 'scheduler.speculative_execution': true, 'scheduler.straggler_threshold': 3 },
      service: { background: false, clock },
    });
    const shard = h.service.shard;
    await register(shard, 'wa', T0, { cpu: 8, memMb: 1024 }, 8);
    await register(shard, 'wb', T0, { cpu: 8, memMb: 1024 }, 8);
    await h.service.client.submitMany(
      Array.from({ length: 6 }, (_, i) => ({
        id: `s${i}`,
        type: 'job',
        stage: 'map',
        tenant: 'acme',
      })),
    );
    for (let i = 0; i < 5; i++) {
      const token = await claim(shard, `s${i}`, 'wa', T0);
      await shard.settle([{ taskId: `s${i}`, token, outcome: 'ok' }], SETTLE, T0 + 100);
    }
    const primary = await claim(shard, 's5', 'wa', T0 + 100);
    clock.advance(350); // 250 ms running, under 3 x the 100 ms median
    expect(await h.service.queries.stragglers({ now: clock.now(), threshold: 3 })).toEqual([]);
    expect(await h.service.speculator.pass()).toEqual([]);
    clock.advance(650); // 900 ms: a straggler
    const [st] = await h.service.queries.stragglers({ now: clock.now(), threshold: 3 });
    expect(st).toMatchObject({
      id: 's5',
      stage: 'map',
      worker: 'wa',
      medianMs: 100,
      runningMs: 900,
    });
    expect(await h.service.speculator.pass()).toEqual(['s5']);
    const row = await h.service.client.mustGet('s5');
    expect(row.spec_worker).toBe('wb');
    const copy = row.spec_lease!;
    expect(
      (await shard.redis.lrange(shard.k.inbox('wb'), 0, -1)).some((e) =>
        e.startsWith(`${copy}\ts5\t`),
      ),
    ).toBe(true);
    // The copy finishes first; the primary is told to stop and its completion is stale.
    const [won] = await shard.settle(
      [{ taskId: 's5', token: copy, outcome: 'ok', detail: 'copy' }],
      SETTLE,
      clock.now() + 50,
    );
    expect(won!.status).toBe('ok');
    expect(await shard.redis.lrange(shard.k.stops('wa'), 0, -1)).toContain(`!${primary}\ts5`);
    const [lost] = await shard.settle(
      [{ taskId: 's5', token: primary, outcome: 'ok' }],
      SETTLE,
      clock.now() + 60,
    );
    expect(lost!.status).toBe('stale');
    const done = await h.service.client.mustGet('s5');
    expect(done).toMatchObject({ state: 'done', worker: 'wb', lease: copy });
    expect((await h.service.queries.workerLoads(clock.now())).map((w) => w.usedSlots)).toEqual([
      0, 0,
    ]);
    // Usage per tenant over the window: five 100 ms tasks and the 50 ms copy, one core each.
    const usage = await h.service.queries.tenantUsage(
      T0 - 1_000,
      clock.now() + 1_000,
      SETTLE.usageBucketMs,
    );
    expect(usage.get('acme')).toBe(550);
  });

  it('reports over- and under-loaded workers', async () => {
    const h = await harness({ service: { background: false } });
    const shard = h.service.shard;
    await register(shard, 'busy', T0, { cpu: 2, memMb: 1024 }, 2);
    await register(shard, 'idle', T0, { cpu: 2, memMb: 1024 }, 2);
    await h.service.client.submitMany([
      { id: 'a', type: 'j' },
      { id: 'b', type: 'j' },
    ]);
    await claim(shard, 'a', 'busy', T0);
    await claim(shard, 'b', 'busy', T0);
    const { overloaded, underloaded } = await h.service.queries.loadedWorkers({ now: T0 + 10 });
    expect(overloaded.map((w) => w.id)).toEqual(['busy']);
    expect(underloaded.map((w) => w.id)).toEqual(['idle']);
    expect(overloaded[0]!.utilization).toBe(1);
  });

  it('places a GPU task on a worker with a free device and accounts the device', async () => {
    const h = await harness();
    let ranOn = '';
    const cpuOnly = await h.worker({
      id: 'cpu-only',
      concurrency: 4,
      handlers: { train: () => (ranOn = 'cpu-only') },
    });
    const gpuBox = await h.worker({
      id: 'gpu-box',
      concurrency: 4,
      capacity: { cpu: 4, memMb: 4096, gpu: 2, gpuModel: 'A100' },
      handlers: { train: () => (ranOn = 'gpu-box') },
    });
    const { id } = await h.service.client.submit({
      type: 'train',
      demand: { cpu: 1, memMb: 100, gpu: 1, gpuModels: ['A100'] },
    });
    await eventually(async () => (await h.service.client.mustGet(id)).state === 'done', 'done');
    expect(ranOn).toBe('gpu-box');
    expect((await h.service.client.mustGet(id)).gpus).toBe('0');
    const rows = await h.service.queries.workerRows();
    expect(rows.find((w) => w.id === 'gpu-box')).toMatchObject({
      gpu_free: '1000,1000',
      used_gpu_m: 0,
    });
    void cpuOnly;
    void gpuBox;
  });

  it('writes telemetry and the traces the simulator replays', async () => {
    const h = await harness();
    const w = await h.worker({ concurrency: 2, handlers: { t: () => null } });
    await h.service.client.submitMany(
      Array.from({ length: 6 }, (_, i) => ({
        type: 't',
        tenant: 'acme',
        estimateMs: 5,
        demand: { cpu: 0.5 },
        payload: i,
      })),
    );
    await eventually(async () => (await h.service.queries.counts()).done === 6, 'done');
    await w.stop();
    await h.service.telemetry.flush();
    await Promise.all(Object.values(h.service.traces).map((t) => t.flush()));
    const arrivals = await traceRecords(h.redis, h.keys, 'scheduler', 'arrivals');
    expect(arrivals).toHaveLength(6);
    expect(arrivals[0]!.fields).toMatchObject({
      tenant: 'acme',
      cpu: '0.5',
      estimate_ms: '5',
      stage: 't',
    });
    const durations = await traceRecords(h.redis, h.keys, 'scheduler', 'durations');
    expect(durations).toHaveLength(6);
    expect(durations[0]!.fields).toMatchObject({ outcome: 'ok', stage: 't', tenant: 'acme' });
    const entries = await telemetryEntries(h.redis, h.keys, 'scheduler', 0, Date.now() + 1_000);
    const sum = (f: string) => entries.reduce((s, e) => s + Number(e.fields[f] ?? 0), 0);
    expect(sum('tasks_submitted')).toBe(6);
    expect(sum('tasks_started')).toBe(6);
    expect(sum('tasks_completed')).toBe(6);
    expect(entries.some((e) => e.fields['dispatch_latency_ms_p50'] !== undefined)).toBe(true);
    expect(entries.some((e) => e.fields['queue_length'] !== undefined)).toBe(true);
  });

  it('prunes completed tasks past retention, and their idempotency keys with them', async () => {
    const h = await harness({ service: { background: false } });
    const shard = h.service.shard;
    await register(shard, 'w', T0);
    const { id } = await h.service.client.submit({ type: 'job', idempotencyKey: 'nightly' });
    const token = await claim(shard, id, 'w', T0);
    await shard.settle([{ taskId: id, token, outcome: 'ok' }], SETTLE, T0 + 5);
    expect(
      await shard.prune(
        { doneBefore: T0, doneMax: 10, deadBefore: T0, deadMax: 10, budget: 10 },
        T0,
      ),
    ).toEqual({ done: 0, dead: 0 });
    expect(
      await shard.prune(
        { doneBefore: T0 + 6, doneMax: 10, deadBefore: T0, deadMax: 10, budget: 10 },
        T0,
      ),
    ).toEqual({ done: 1, dead: 0 });
    expect(await h.service.client.get(id)).toBeNull();
    const again = await h.service.client.submit({ type: 'job', idempotencyKey: 'nightly' });
    expect(again.created).toBe(true);
  });

  it('refuses a speculative copy on a full or missing GPU device, as dispatch does', async () => {
    const h = await harness({ service: { background: false } });
    const shard = h.service.shard;
    const gpuBox = { cpu: 4, memMb: 4096, gpu: 1 };
    await register(shard, 'wa', T0, gpuBox, 4);
    await register(shard, 'wb', T0, gpuBox, 4);
    await register(shard, 'wc', T0, gpuBox, 4);
    const gpuTask = { type: 'job', demand: { cpu: 1, gpu: 1, gpuMilli: 1000 } };
    await h.service.client.submitMany([
      { id: 'g1', ...gpuTask },
      { id: 'g2', ...gpuTask },
    ]);
    const g1 = await dispatchOne(shard, 'g1', 'wb', T0, { leaseMs: 10_000, gpus: [0] });
    const g2 = await dispatchOne(shard, 'g2', 'wa', T0, { leaseMs: 10_000, gpus: [0] });
    expect([g1.status, g2.status]).toEqual(['ok', 'ok']);
    const knobs = { leaseMs: 10_000, retryLimit: 3, backoffMs: 100 };
    // wb's only device is taken whole by g1; wc has no device 7.
    const res = await shard.speculate(
      knobs,
      [
        { taskId: 'g2', seenToken: g2.token, workerId: 'wb', gpus: [0] },
        { taskId: 'g1', seenToken: g1.token, workerId: 'wc', gpus: [7] },
      ],
      T0 + 2_000,
    );
    expect(res.map((r) => r.status)).toEqual(['full', 'full']);
    const rows = await h.service.queries.workerRows();
    expect(rows.find((w) => w.id === 'wb')).toMatchObject({ used_gpu_m: 1000, gpu_free: '0' });
    expect(rows.find((w) => w.id === 'wc')).toMatchObject({ used_gpu_m: 0, gpu_free: '1000' });
  });

  it('sends two stragglers of one speculation pass to different GPU devices', async () => {
    const clock = new ManualClock(T0);
    const h = await harness({
      knobs: { 'scheduler.speculative_execution': true, 'scheduler.straggler_threshold': 3 },
      service: { background: false, clock },
    });
    const shard = h.service.shard;
    await register(shard, 'wa', T0, { cpu: 8, memMb: 4096, gpu: 1 }, 8);
    await register(shard, 'wb', T0, { cpu: 8, memMb: 4096, gpu: 1 }, 8);
    await register(shard, 'wc', T0, { cpu: 8, memMb: 4096, gpu: 2 }, 8);
    const gpuTask = { type: 'job', stage: 'train', demand: { cpu: 1, gpu: 1 } };
    await h.service.client.submitMany(
      Array.from({ length: 7 }, (_, i) => ({ id: `t${i}`, ...gpuTask })),
    );
    for (let i = 0; i < 5; i++) {
      const { token } = await dispatchOne(shard, `t${i}`, 'wa', T0, { leaseMs: 10_000, gpus: [0] });
      await shard.settle([{ taskId: `t${i}`, token, outcome: 'ok' }], SETTLE, T0 + 100);
    }
    expect(
      (await dispatchOne(shard, 't5', 'wa', T0 + 100, { leaseMs: 10_000, gpus: [0] })).status,
    ).toBe('ok');
    expect(
      (await dispatchOne(shard, 't6', 'wb', T0 + 100, { leaseMs: 10_000, gpus: [0] })).status,
    ).toBe('ok');
    clock.advance(1_000);
    expect((await h.service.speculator.pass()).sort()).toEqual(['t5', 't6']);
    const copies = await Promise.all(['t5', 't6'].map((id) => h.service.client.mustGet(id)));
    expect(copies.map((r) => r.spec_worker)).toEqual(['wc', 'wc']);
    expect(copies.map((r) => r.spec_gpus).sort()).toEqual(['0', '1']);
    const wc = (await h.service.queries.workerRows()).find((w) => w.id === 'wc');
    expect(wc).toMatchObject({ used_gpu_m: 2000, gpu_free: '0,0' });
  });

  it('prunes upstream_failed tasks with the dead letters, and their idempotency keys', async () => {
    const h = await harness({ service: { background: false } });
    const shard = h.service.shard;
    const client = h.service.client;
    await register(shard, 'w', T0);
    await client.submitMany([
      { id: 'P', type: 'job', jobId: 'J' },
      { id: 'C', type: 'job', jobId: 'J', parents: ['P'], idempotencyKey: 'child-key' },
      { id: 'G', type: 'job', jobId: 'J', parents: ['C'] },
    ]);
    const token = await claim(shard, 'P', 'w', T0);
    const [r] = await shard.settle(
      [{ taskId: 'P', token, outcome: 'final', detail: 'boom' }],
      SETTLE,
      T0 + 10,
    );
    expect(r!.status).toBe('dead');
    // A child of an already dead parent is upstream_failed at submit.
    const late = await client.submit({ id: 'L', type: 'job', parents: ['P'], idempotencyKey: 'l' });
    expect(late.created).toBe(true);
    for (const id of ['C', 'G', 'L'])
      expect((await client.mustGet(id)).state).toBe('upstream_failed');
    // Kept as long as dead letters are ...
    expect(
      await shard.prune(
        { doneBefore: T0 + 1e9, doneMax: 0, deadBefore: T0, deadMax: 10, budget: 10 },
        T0 + 1e9,
      ),
    ).toEqual({ done: 0, dead: 0 });
    // ... and removed with them.
    expect(
      await shard.prune(
        { doneBefore: T0 + 1e9, doneMax: 0, deadBefore: T0 + 1e9, deadMax: 0, budget: 10 },
        T0 + 1e9,
      ),
    ).toEqual({ done: 0, dead: 4 });
    for (const id of ['P', 'C', 'G', 'L']) expect(await client.get(id)).toBeNull();
    expect(await shard.redis.hlen(shard.k.idem())).toBe(0);
    expect(await shard.redis.exists(shard.k.children('P'), shard.k.children('C'))).toBe(0);
    expect((await client.submit({ type: 'job', idempotencyKey: 'child-key' })).created).toBe(true);
  });

  it('reports the completion of a job its dead task ended through the cascade', async () => {
    const h = await harness({ service: { background: false, clock: new ManualClock(T0) } });
    const shard = h.service.shard;
    await register(shard, 'w', T0);
    await h.service.client.submitMany([
      { id: 'P', type: 'job', jobId: 'J' },
      { id: 'C', type: 'job', jobId: 'J', parents: ['P'] },
    ]);
    const token = await claim(shard, 'P', 'w', T0 + 100);
    const [r] = await shard.settle(
      [{ taskId: 'P', token, outcome: 'final', detail: 'boom' }],
      SETTLE,
      T0 + 250,
    );
    expect(r).toMatchObject({ status: 'dead', jobId: 'J', jobCompletionMs: 250 });
    expect(await h.service.queries.job('J')).toMatchObject({ remaining: 0, dead: 2 });
  });

  it('reports a job whose last task dies of lease expiry (metric and jobs trace)', async () => {
    const clock = new ManualClock(T0);
    const h = await harness({
      knobs: { 'scheduler.retry_limit': 0 },
      service: { background: false, clock },
    });
    const shard = h.service.shard;
    await register(shard, 'w', T0);
    await h.service.client.submitMany([
      { id: 'A', type: 'job', jobId: 'J', tenant: 'acme' },
      { id: 'B', type: 'job', jobId: 'J', tenant: 'acme' },
    ]);
    const a = await claim(shard, 'A', 'w', T0);
    await claim(shard, 'B', 'w', T0);
    await shard.settle([{ taskId: 'A', token: a, outcome: 'ok' }], SETTLE, T0 + 10);
    clock.advance(1_001); // B's 1 s lease runs out; no retries left
    const reaped = await h.service.reaper.pass();
    expect(reaped).toMatchObject({ expired: 1, dead: 1 });
    expect(reaped.jobsEnded).toEqual([
      { taskId: 'B', jobId: 'J', tenant: 'acme', completionMs: 1_001 },
    ]);
    await h.service.telemetry.flush();
    await h.service.traces.jobs.flush();
    const jobs = await traceRecords(h.redis, h.keys, 'scheduler', 'jobs');
    expect(jobs.map((j) => j.fields)).toEqual([
      expect.objectContaining({ job: 'J', tenant: 'acme', completion_ms: '1001', failed: 'true' }),
    ]);
    const entries = await telemetryEntries(h.redis, h.keys, 'scheduler', 0, Date.now() + 1e12);
    expect(entries.some((e) => e.fields['job_completion_ms_p50'] === '1001')).toBe(true);
  });

  it('never records a negative duration when the worker clock is behind the dispatcher', async () => {
    const h = await harness({ service: { background: false } });
    const shard = h.service.shard;
    await register(shard, 'w', T0);
    await h.service.client.submit({ id: 'a', type: 'job', stage: 's', tenant: 't1' });
    const token = await claim(shard, 'a', 'w', T0 + 100); // the dispatcher's clock
    const [r] = await shard.settle([{ taskId: 'a', token, outcome: 'ok' }], SETTLE, T0 + 95);
    expect(r).toMatchObject({ status: 'ok', ms: 0 });
    expect((await h.service.client.mustGet('a')).duration_ms).toBe(0);
    expect(await shard.redis.lrange(shard.k.durations('s'), 0, -1)).toEqual(['0']);
    expect(await shard.redis.hget(shard.k.tenantServed(), 't1')).toBe('0');
    const usage = await h.service.queries.tenantUsage(T0, T0 + 1_000, SETTLE.usageBucketMs);
    expect(usage.get('t1') ?? 0).toBe(0);
    // A failure's run time likewise.
    await h.service.client.submit({ id: 'b', type: 'job' });
    const tb = await claim(shard, 'b', 'w', T0 + 200);
    const [f] = await shard.settle(
      [{ taskId: 'b', token: tb, outcome: 'final', detail: 'x' }],
      SETTLE,
      T0 + 190,
    );
    expect(f).toMatchObject({ status: 'dead', ms: 0 });
  });

  it("accepts the completion of a copy claimed under the worker's old incarnation, once", async () => {
    const h = await harness({ service: { background: false } });
    const shard = h.service.shard;
    await register(shard, 'w', T0);
    await h.service.client.submit({ id: 'x', type: 'job' });
    const { token } = await dispatchOne(shard, 'x', 'w', T0, { leaseMs: 10_000, gpus: [] }); // a 10 s lease
    // No beat for 3 s: w is declared dead while its copy's lease still runs; then it is back.
    const reaped = await shard.reap(
      { max: 100, jobTtlMs: 1, retryLimit: 3, backoffMs: 100 },
      T0 + 3_001,
    );
    expect(reaped).toMatchObject({ workersRemoved: 1, expired: 0 });
    expect((await register(shard, 'w', T0 + 3_500)).registered).toBe(true);
    const [ok] = await shard.settle([{ taskId: 'x', token, outcome: 'ok' }], SETTLE, T0 + 3_600);
    expect(ok!.status).toBe('ok');
    expect((await h.service.client.mustGet('x')).state).toBe('done');
    // The copy was never counted on the new row: nothing is given back to it.
    const row = (await h.service.queries.workerRows()).find((w) => w.id === 'w');
    expect(row).toMatchObject({ used_slots: 0, used_cpu_m: 0 });
    const [again] = await shard.settle([{ taskId: 'x', token, outcome: 'ok' }], SETTLE, T0 + 3_700);
    expect(again!.status).toBe('again');
  });
});
