// The scheduler service against real redis-server processes, on one node and on a 3-node
// cluster: submit, dispatch, run and complete; idempotent submit; DAG order; retries then dead
// letters; stale completions ignored; knob changes applied live; stragglers and speculation.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UnknownParentError, SchedulerInputError } from '../controlplane/scheduler/errors.ts';
import { PermanentTaskError } from '../controlplane/scheduler/worker.ts';
import { eventually, startTestRedis, type Backend, type TestRedis } from './helpers/redis.ts';
import { startScheduler, type SchedulerHarness } from './helpers/scheduler-harness.ts';

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

  it('dead-letters at once on a permanent error', async () => {
    const h = await harness();
    await h.worker({
      concurrency: 1,
      handlers: {
        bad: () => {
          throw new PermanentTaskError('malformed input');
        },
      },
    });
    const { id } = await h.service.client.submit({ type: 'bad' });
    await eventually(async () => (await h.service.client.mustGet(id)).state === 'dead', 'dead');
    expect((await h.service.client.mustGet(id)).attempts).toBe(1);
  });
});
