// How the loop calibrates its simulators from the live trace streams (from a review; each test
// fails on the code before it):
// - a sampled trace says so (each record carries its rate, `sr`), and a calibration of the
//   scheduler policy or the files cache from sampled records says why it cannot calibrate
//   instead of calibrating a thinner workload; a cache shadow fed a sampled stream gives no
//   verdict;
// - a window holding more than `maxRecords` keeps its newest part, and all streams of one
//   calibration are cut to the same span;
// - the files-cache shadow warms its ghosts on the records calibration reads;
// - the scheduler fit compares predicted and observed completion times over the same jobs (those
//   seen to complete), and says how many were left out as still running;
// - a task's GPU share and models reach the simulator (every GPU task was a whole GPU), a record
//   that is no number is left out (NaN reached the estimates; a files access without a usable
//   size too, in calibration and shadow), and a window of more arrivals
//   than a call takes arguments calibrates (Math.min(...all) overflowed the stack).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniformWorkers } from '../envs/scheduler/index.ts';
import { FileService } from '../controlplane/files/service.ts';
import { ROOT } from '../controlplane/files/types.ts';
import { KnobClient } from '../controlplane/knobs/client.ts';
import { KnobTable } from '../controlplane/knobs/table.ts';
import { FilesCacheTarget, ShadowCacheRun } from '../controlplane/loop/targets/files-cache.ts';
import { workloadFromTraces } from '../controlplane/loop/targets/scheduler-calibration.ts';
import { SchedulerPolicyTarget } from '../controlplane/loop/targets/scheduler-policy.ts';
import type { Calibration, NoCalibration } from '../controlplane/loop/target.ts';
import type { RedisClient } from '../controlplane/redis/connect.ts';
import { traceWriters } from '../controlplane/scheduler/service.ts';
import type { Keys } from '../controlplane/store/keys.ts';
import { traceRecords } from '../controlplane/telemetry/read.ts';
import { TraceWriter } from '../controlplane/telemetry/traces.ts';
import { startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A trace record written at a chosen time (stream id `ms-seq`), as a TraceWriter writes one. */
function put(
  redis: RedisClient,
  keys: Keys,
  service: string,
  kind: string,
  ms: number,
  fields: Record<string, string | number>,
  seq = 0,
) {
  const flat = Object.entries(fields).flatMap(([k, v]) => [k, String(v)]);
  return redis.xadd(keys.trace(service, kind), `${ms}-${seq}`, ...flat);
}

/** A single-task job's arrival, in the scheduler's arrivals shape. */
function arrival(id: string, at: number, estimateMs = 500) {
  return {
    at,
    id,
    job: id,
    tenant: 't',
    priority: 0,
    cpu: 1,
    mem_mb: 0,
    gpu: 0,
    estimate_ms: estimateMs,
    parents: '',
  };
}

function calibrated<T extends Calibration>(got: T | NoCalibration | null): T {
  if (!got || 'why' in got) throw new Error(`no calibration: ${JSON.stringify(got)}`);
  return got;
}

describe('calibration from live trace streams', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis('single');
  });
  afterAll(async () => {
    await redis?.stop();
  });

  async function knobTable() {
    const keys = uniqueKeys();
    const table = new KnobTable(redis.client(), { keys });
    await table.seed();
    return table;
  }

  function schedulerTarget(knobs: KnobTable, maxRecords = 10_000) {
    return new SchedulerPolicyTarget({
      knobs,
      workers: uniformWorkers(50, { cpu: 1, memMb: 1000, gpu: 0 }),
      windowMs: 60_000,
      minJobs: 1,
      maxRecords,
      shadowMs: 1_000,
      shadowMinRounds: 1,
    });
  }

  function cacheTarget(knobs: KnobTable, maxRecords = 10_000) {
    return new FilesCacheTarget({
      knobs,
      memoryPricePerGiB: 0,
      windowMs: 60_000,
      minRecords: 1,
      maxRecords,
      budget: 2,
      shadowMs: 1_000,
      shadowMinRequests: 1,
    });
  }

  it('a sampled trace record carries its sample rate; an unsampled one is unchanged', async () => {
    const keys = uniqueKeys();
    const c = redis.client();
    const write = async (sampleRate: number, kind: string) => {
      const w = new TraceWriter({
        redis: c,
        keys,
        service: 'svc',
        kind,
        sampleRate,
        rand: () => 0,
      });
      w.record({ key: 'k', size: 1 });
      await w.flush();
      return (await traceRecords(c, keys, 'svc', kind))[0]?.fields;
    };
    expect(await write(0.1, 'sampled')).toEqual({ key: 'k', size: '1', sr: '0.1' });
    expect(await write(1, 'whole')).toEqual({ key: 'k', size: '1' });
  });

  it("the scheduler target refuses the service's default (sampled) traces, saying what to set", async () => {
    const knobs = await knobTable();
    // The writers the scheduler's services and workers create, at their default rates.
    const traces = traceWriters(knobs.redis, knobs.keys);
    const now = Date.now();
    for (let i = 0; i < 400; i++) {
      const id = `j${i}`;
      traces.arrivals.record(arrival(id, now - 3_000 + i));
      traces.durations.record({ at: now - 2_000 + i, id, job: id, duration_ms: 20, outcome: 'ok' });
    }
    await Promise.all([traces.arrivals.flush(), traces.durations.flush()]);
    const got = await schedulerTarget(knobs).calibrate();
    expect(got).toEqual({ why: expect.any(String) });
    const why = (got as NoCalibration).why;
    expect(why).toMatch(new RegExp(escape(knobs.keys.trace('scheduler', 'arrivals'))));
    expect(why).toMatch(/sampled at rate 0\.1/);
    expect(why).toMatch(/sample rate to 1/);
  });

  it("the files cache target refuses the service's default 1% access trace", async () => {
    const knobs = await knobTable();
    const client = await KnobClient.start({ table: knobs, resyncIntervalMs: 0 });
    const files = await FileService.start({
      redis: redis.client(),
      keys: knobs.keys,
      knobs: client,
    });
    try {
      await files.mkdir(ROOT, '/d');
      const paths = Array.from({ length: 20 }, (_, i) => `/d/f${i}`);
      for (const p of paths) {
        await files.create(ROOT, p);
        await files.write(ROOT, p, 0, Buffer.alloc(100, 1));
      }
      // About 3,000 accesses at 1%: 30 records kept on average, none at odds of 1 in 10^13.
      for (let i = 0; i < 2_960; i++) await files.read(ROOT, paths[i % paths.length] as string);
      await files.flush();
      const target = cacheTarget(knobs);
      const got = await target.calibrate();
      expect(got).toEqual({ why: expect.any(String) });
      const why = (got as NoCalibration).why;
      expect(why).toMatch(new RegExp(escape(knobs.keys.trace('files', 'access'))));
      expect(why).toMatch(/sampled at rate 0\.01/);
      expect(why).toMatch(/sample rate to 1/);
    } finally {
      await files.close();
      await client.close();
    }
  });

  it('a cache shadow fed sampled accesses gives no verdict', async () => {
    const keys = uniqueKeys();
    const c = redis.client();
    const since = Date.now();
    const w = new TraceWriter({
      redis: c,
      keys,
      service: 'files',
      kind: 'access',
      sampleRate: 0.5,
      rand: () => 0,
    });
    // Rereads of four keys: a cache of four hits on all but the first, one of one never.
    for (let i = 0; i < 40; i++) w.record({ key: `k${i % 4}`, size: 100, op: 'read' });
    await w.flush();
    const run = await ShadowCacheRun.start(
      c,
      keys.trace('files', 'access'),
      [
        { policy: 'lru', cacheBytes: 100 },
        { policy: 'lru', cacheBytes: 400 },
      ],
      since,
      { price: 0, minRequests: 1, minEffect: 0 },
    );
    try {
      const report = await run.report();
      expect(report.verdict).toBe('inconclusive');
      expect(report.details).toMatchObject({ sampled: 40 });
    } finally {
      await run.stop();
    }
  });

  it('a cut window keeps its newest part, every stream cut to the same span', async () => {
    const knobs = await knobTable();
    const c = knobs.redis;
    const t0 = Date.now() - 5_000;
    // 100 jobs, one every 10 ms; each ran twice (a retry, then ok in 7 ms): the durations
    // stream holds twice the arrivals' records, so 60 of each cover different spans.
    for (let i = 0; i < 100; i++) {
      const at = t0 + i * 10;
      await put(c, knobs.keys, 'scheduler', 'arrivals', at, arrival(`j${i}`, at));
      const ran = { id: `j${i}`, job: `j${i}` };
      await put(c, knobs.keys, 'scheduler', 'durations', at + 3, {
        ...ran,
        at: at + 3,
        duration_ms: 3,
        outcome: 'retry',
      });
      await put(c, knobs.keys, 'scheduler', 'durations', at + 5, {
        ...ran,
        at: at + 5,
        duration_ms: 7,
        outcome: 'ok',
      });
    }
    const w = await workloadFromTraces(knobs, {
      fromMs: t0 - 1_000,
      toMs: Date.now(),
      maxRecords: 60,
      durationSource: 'measured',
    });
    // The newest 60 run records are those of j70..j99, from j70's retry on: the arrivals are
    // cut there too (j71 on), and every job kept has its measured run time, none an estimate.
    const ids = w.workload.jobs.map((j) => j.id);
    expect(ids).toEqual(Array.from({ length: 29 }, (_, k) => `j${71 + k}`));
    expect(w.workload.jobs.map((j) => j.stages[0]?.durationsMs[0])).toEqual(ids.map(() => 7));
  });

  it('the cache shadow warms its ghosts on the very records calibration reads: the newest', async () => {
    const knobs = await knobTable();
    const c = knobs.redis;
    const t0 = Date.now() - 5_000;
    // 100 distinct keys read once each, told apart by their sizes.
    for (let i = 0; i < 100; i++)
      await put(c, knobs.keys, 'files', 'access', t0 + i * 10, {
        time: t0 + i * 10,
        key: `v:k${i}`,
        size: 1_000 + i,
        op: 'read',
      });
    const target = cacheTarget(knobs, 30);
    const cal = calibrated(await target.calibrate());
    const sizes = [...(cal.data.sizes ?? [])];
    expect(sizes).toEqual(Array.from({ length: 30 }, (_, k) => 1_070 + k));
    const live = { 'files.cache_bytes': 1_000_000, 'files.cache_policy': 'lru' };
    const run = await target.startShadow(live, live, Date.now());
    try {
      // Each key calibration read, read again after shadow began: a hit in a ghost warmed on
      // the records calibration read, every time.
      for (const size of sizes)
        await c.xadd(
          knobs.keys.trace('files', 'access'),
          '*',
          'key',
          `v:k${size - 1_000}`,
          'size',
          size,
          'op',
          'read',
        );
      const report = await run.report();
      expect(report.details).toMatchObject({ incumbent: { requests: 30, hits: 30 } });
    } finally {
      await run.stop();
    }
  });

  it('the files cache leaves out an access record without a usable size, calibrating and in shadow', async () => {
    const knobs = await knobTable();
    const c = knobs.redis;
    const t0 = Date.now() - 5_000;
    const access = (i: number, size?: string | number) => ({
      time: t0 + i,
      key: `v:k${i}`,
      ...(size === undefined ? {} : { size }),
      op: 'read',
    });
    await put(c, knobs.keys, 'files', 'access', t0, access(0, 100));
    await put(c, knobs.keys, 'files', 'access', t0 + 1, access(1, 'x'));
    await put(c, knobs.keys, 'files', 'access', t0 + 2, access(2));
    await put(c, knobs.keys, 'files', 'access', t0 + 3, access(3, 300));
    const target = cacheTarget(knobs);
    const cal = calibrated(await target.calibrate());
    expect([...(cal.data.sizes ?? [])]).toEqual([100, 300]);
    const live = { 'files.cache_bytes': 1_000_000, 'files.cache_policy': 'lru' };
    const run = await target.startShadow(live, live, Date.now());
    try {
      const reads: [string, string][] = [
        ['v:k0', '100'],
        ['v:k1', 'x'],
        ['v:k3', ''],
      ];
      for (const [key, size] of reads)
        await c.xadd(
          knobs.keys.trace('files', 'access'),
          '*',
          'key',
          key,
          'size',
          size,
          'op',
          'read',
        );
      const report = await run.report();
      // Only the usable record is replayed (a hit: its key was warmed).
      expect(report.details).toMatchObject({ incumbent: { requests: 1, hits: 1 } });
    } finally {
      await run.stop();
    }
  });

  it('the scheduler fit compares the same jobs on both sides and counts those still running', async () => {
    const knobs = await knobTable();
    const c = knobs.redis;
    const t0 = Date.now() - 5_000;
    // 20 single-task jobs on 50 free slots: no queueing, each job's completion time is its run
    // time. The even ones ran 100 ms; the odd ones (5 s by their estimates) are still running.
    for (let i = 0; i < 20; i++) {
      const at = t0 + i;
      await put(c, knobs.keys, 'scheduler', 'arrivals', at, arrival(`j${i}`, at, 5_000));
      if (i % 2 === 0)
        await put(c, knobs.keys, 'scheduler', 'durations', at + 100, {
          at: at + 100,
          id: `j${i}`,
          job: `j${i}`,
          duration_ms: 100,
          outcome: 'ok',
        });
    }
    const cal = calibrated(await schedulerTarget(knobs).calibrate());
    expect(cal.records).toBe(20);
    expect(cal.fit).toMatchObject({ observed: 100, compared: 10, stillRunning: 10, failed: 0 });
    // Before, the simulated side counted the long jobs the observed side could not: 2,550 ms
    // predicted against 100 observed.
    expect(cal.fit.predicted).toBeCloseTo(100, 0);
    expect(cal.fit.relativeError).toBeLessThan(0.01);
    // The simulator's workload still holds every job: the still-running ones take capacity.
    expect(cal.data.jobs).toHaveLength(20);
  });

  it('calibrates on what follows the newest sampled record once the rate is 1', async () => {
    const knobs = await knobTable();
    const c = knobs.redis;
    const t0 = Date.now() - 10_000;
    // Written while the trace was sampled: one arrival, older than the rest of the window.
    await put(c, knobs.keys, 'scheduler', 'arrivals', t0, { ...arrival('old', t0), sr: '0.1' });
    for (let i = 0; i < 20; i++) {
      const at = t0 + 1_000 + i;
      await put(c, knobs.keys, 'scheduler', 'arrivals', at, arrival(`j${i}`, at));
      await put(c, knobs.keys, 'scheduler', 'durations', at + 50, {
        at: at + 50,
        id: `j${i}`,
        job: `j${i}`,
        duration_ms: 50,
        outcome: 'ok',
      });
    }
    const cal = calibrated(await schedulerTarget(knobs).calibrate());
    expect(cal.data.jobs.map((j) => j.id)).toEqual(Array.from({ length: 20 }, (_, i) => `j${i}`));
    // Too few records after it: why names the sampled record and when it leaves the window.
    const thin = new SchedulerPolicyTarget({
      ...(
        schedulerTarget(knobs) as unknown as {
          o: ConstructorParameters<typeof SchedulerPolicyTarget>[0];
        }
      ).o,
      minJobs: 21,
    });
    const got = await thin.calibrate();
    expect(got).toEqual({
      why: expect.stringMatching(
        /1 records sampled at rate 0\.1, the newest at .*leaves the window at /,
      ),
    });
  });

  it('the scheduler fit leaves out a job the window cut in two', async () => {
    const knobs = await knobTable();
    const c = knobs.redis;
    const t0 = Date.now() - 5_000;
    // Job m: task m.a (before the window) then m.b, its child (in it); it completed in 2 s,
    // counted from m.a. Job n: both tasks in the window, 300 ms.
    const task = (id: string, job: string, at: number, parents = '') => ({
      ...arrival(id, at),
      job,
      parents,
    });
    await put(
      c,
      knobs.keys,
      'scheduler',
      'arrivals',
      t0 + 1_000,
      task('m.b', 'm', t0 + 1_000, 'm.a'),
    );
    await put(c, knobs.keys, 'scheduler', 'arrivals', t0 + 1_001, task('n.a', 'n', t0 + 1_001));
    await put(c, knobs.keys, 'scheduler', 'arrivals', t0 + 1_002, task('n.b', 'n', t0 + 1_002));
    // Job k: one task in the window and no parents named, but begun 1.5 s before it.
    await put(c, knobs.keys, 'scheduler', 'arrivals', t0 + 1_003, task('k.b', 'k', t0 + 1_003));
    for (const [id, job, at] of [
      ['n.a', 'n', 1_200],
      ['n.b', 'n', 1_300],
      ['k.b', 'k', 1_400],
      ['m.b', 'm', 1_500],
    ] as const)
      await put(c, knobs.keys, 'scheduler', 'durations', t0 + at, {
        at: t0 + at,
        id,
        job,
        duration_ms: 100,
        outcome: 'ok',
      });
    await put(c, knobs.keys, 'scheduler', 'jobs', t0 + 1_501, {
      at: t0 + 1_500,
      job: 'm',
      tenant: 't',
      completion_ms: 2_000,
      failed: 'false',
    });
    await put(c, knobs.keys, 'scheduler', 'jobs', t0 + 1_502, {
      at: t0 + 1_301,
      job: 'n',
      tenant: 't',
      completion_ms: 300,
      failed: 'false',
    });
    await put(c, knobs.keys, 'scheduler', 'jobs', t0 + 1_503, {
      at: t0 + 1_400,
      job: 'k',
      tenant: 't',
      completion_ms: 1_900,
      failed: 'false',
    });
    const cal = calibrated(await schedulerTarget(knobs).calibrate());
    expect(cal.fit).toMatchObject({ observed: 300, compared: 1, partial: 2, stillRunning: 0 });
  });

  it("keeps a task's GPU share and models, and leaves out records that are no numbers", async () => {
    const knobs = await knobTable();
    const c = knobs.redis;
    const t0 = Date.now() - 5_000;
    // Four tasks of 250 milli of one GPU each (one GPU serves all four live), on A10s.
    for (let i = 0; i < 4; i++) {
      const id = `g${i}`;
      await put(c, knobs.keys, 'scheduler', 'arrivals', t0 + i, {
        ...arrival(id, t0 + i),
        gpu: 1,
        gpu_milli: 250,
        gpu_models: 'A10',
      });
      await put(c, knobs.keys, 'scheduler', 'durations', t0 + 1_000 + i, {
        at: t0 + 1_000 + i,
        id,
        job: id,
        duration_ms: 100,
        outcome: 'ok',
      });
    }
    // A garbled arrival (left out) and a run time that is no number (not measured: the task
    // runs for its estimate).
    await put(c, knobs.keys, 'scheduler', 'arrivals', t0 + 10, {
      ...arrival('bad', t0 + 10),
      cpu: 'x',
    });
    await put(c, knobs.keys, 'scheduler', 'arrivals', t0 + 11, arrival('e', t0 + 11, 700));
    await put(c, knobs.keys, 'scheduler', 'durations', t0 + 1_011, {
      at: t0 + 1_011,
      id: 'e',
      job: 'e',
      duration_ms: '',
      outcome: 'ok',
    });
    const w = await workloadFromTraces(knobs, {
      fromMs: t0 - 60_000,
      toMs: Date.now(),
      maxRecords: 1_000,
      durationSource: 'measured',
    });
    expect(w.garbled).toBe(1);
    expect(w.workload.jobs.map((j) => j.id)).toEqual(['g0', 'g1', 'g2', 'g3', 'e']);
    for (const j of w.workload.jobs.slice(0, 4))
      expect(j.stages[0]?.demand).toEqual({
        cpu: 1,
        memMb: 0,
        gpu: 1,
        gpuMilli: 250,
        gpuModels: ['A10'],
      });
    expect(w.workload.jobs[4]?.stages[0]?.durationsMs).toEqual([700]);
  });

  it('calibrates a window of more arrivals than a call takes arguments', async () => {
    const knobs = await knobTable();
    const c = knobs.redis;
    const n = 130_000;
    const t0 = Date.now() - 50_000;
    const stream = knobs.keys.trace('scheduler', 'arrivals');
    for (let from = 0; from < n; from += 10_000) {
      const p = c.pipeline();
      for (let i = from; i < from + 10_000; i++) {
        const ms = t0 + Math.floor(i / 8);
        p.xadd(stream, `${ms}-${i % 8}`, 'at', String(ms), 'id', `j${i}`, 'estimate_ms', '50');
      }
      await p.exec();
    }
    const w = await workloadFromTraces(knobs, {
      fromMs: t0 - 1_000,
      toMs: Date.now(),
      maxRecords: n,
      durationSource: 'estimates',
    });
    expect(w.jobs).toBe(n);
    expect(w.workload.jobs[0]?.arrivalMs).toBe(0);
    expect(w.workload.jobs.at(-1)?.arrivalMs).toBe(Math.floor((n - 1) / 8));
  }, 120_000);
});
