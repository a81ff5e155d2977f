import { closeSync, existsSync, mkdtempSync, openSync, readSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { checkEnv } from '../envs/core/index.ts';
import { loadAlibabaGpu, loadAlibabaNodes } from '../envs/loaders/jobs-alibaba.ts';
import { JobTraceError, sharedTrace } from '../envs/loaders/jobs-common.ts';
import { loadJobsCsv } from '../envs/loaders/jobs-csv.ts';
import {
  TPCH_DURATIONS_FILE,
  TPCH_STAGES_FILE,
  loadTpchDags,
  loadTpchDurations,
  tpchWorkload,
} from '../envs/loaders/jobs-tpch.ts';
import {
  ClusterSim,
  SCHEDULER_KNOB_NAMES,
  SchedulerEnv,
  WorkloadError,
  createSim,
  jainIndex,
  offeredLoad,
  rescaleToLoad,
  schedulerObjective,
  simulate,
  summarise,
  syntheticWorkload,
  uniformWorkers,
  type JobSpec,
  type SimConfig,
  type StageSpec,
  type Workload,
} from '../envs/scheduler/index.ts';
import {
  drawUniform,
  STREAM_FAIL_POINT,
  STREAM_SLOWDOWN,
  STREAM_STRAGGLE,
} from '../envs/scheduler/draws.ts';
import {
  createSchedulingPolicy,
  type Assignment,
  type Demand,
  type SchedulingPolicy,
} from '../policies/scheduling/index.ts';
import { TPCH_DURATIONS, TPCH_STAGES } from './helpers/tpch-fixture.ts';

const CPU1: Demand = { cpu: 1, memMb: 0, gpu: 0 };

function stage(
  durationsMs: number[],
  parents: number[] = [],
  over: Partial<StageSpec> = {},
): StageSpec {
  return { numTasks: durationsMs.length, parents, demand: CPU1, durationsMs, ...over };
}

function job(
  id: string,
  arrivalMs: number,
  stages: StageSpec[],
  over: Partial<JobSpec> = {},
): JobSpec {
  return { id, arrivalMs, tenant: 't', priority: 0, stages, ...over };
}

const single = (id: string, ms: number, at = 0, over: Partial<JobSpec> = {}) =>
  job(id, at, [stage([ms], [], { estimateMs: ms })], over);

function run(
  jobs: JobSpec[],
  policy: string | SchedulingPolicy,
  workers = 1,
  config: Partial<SimConfig> = {},
) {
  const p = typeof policy === 'string' ? createSchedulingPolicy(policy) : policy;
  return simulate({ name: 'test', jobs }, p, {
    workers: uniformWorkers(workers, { cpu: 1, memMb: 1024, gpu: 0 }),
    config,
  });
}

/** Wraps a policy and records the time and task of every assignment it makes. */
function spy(name: string): SchedulingPolicy & { log: [number, string][] } {
  const inner = createSchedulingPolicy(name);
  const log: [number, string][] = [];
  return {
    name,
    log,
    pick(r, f, now): Assignment[] {
      const out = inner.pick(r, f, now);
      for (const a of out) log.push([now, a.taskId]);
      return out;
    },
  };
}

/** The first `n` lines of a file, reading only its first 256 KiB. */
function headLines(file: string, n: number): string {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(256 * 1024);
    const got = readSync(fd, buf, 0, buf.length, 0);
    return buf.toString('utf8', 0, got).split('\n').slice(0, n).join('\n');
  } finally {
    closeSync(fd);
  }
}

function tmp(name: string, text: string | Buffer): string {
  const dir = mkdtempSync(join(tmpdir(), 'knobos-sched-'));
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

describe('completion times by hand', () => {
  // Three jobs arrive together on one one-core worker: A 10 s, B 2 s, C 5 s.
  const jobs = [single('A', 10_000), single('B', 2_000), single('C', 5_000)];

  it('FIFO runs A, B, C: completions 10, 12, 17 s', () => {
    const m = run(jobs, 'fifo');
    expect(m['mean_jct_s']).toBeCloseTo((10 + 12 + 17) / 3, 9);
    expect(m['p99_jct_s']).toBe(17);
    expect(m['makespan_s']).toBe(17);
    expect(m['utilization']).toBeCloseTo(1, 9);
  });

  it('SJF runs B, C, A: completions 2, 7, 17 s', () => {
    const m = run(jobs, 'sjf');
    expect(m['mean_jct_s']).toBeCloseTo((2 + 7 + 17) / 3, 9);
    expect(m['p50_jct_s']).toBe(7);
    // Slowdowns 17/10, 1, 7/5.
    expect(m['mean_slowdown']).toBeCloseTo((1.7 + 1 + 1.4) / 3, 9);
  });

  it('two workers: SJF 1, 2, 4, 6 s; FIFO 4, 3, 5, 5 s', () => {
    const four = [single('A', 4_000), single('B', 3_000), single('C', 2_000), single('D', 1_000)];
    expect(run(four, 'sjf', 2)['mean_jct_s']).toBeCloseTo((1 + 2 + 4 + 6) / 4, 9);
    expect(run(four, 'fifo', 2)['mean_jct_s']).toBeCloseTo((4 + 3 + 5 + 5) / 4, 9);
  });

  it('a dispatch round trip delays each batch', () => {
    const three = [single('A', 1_000), single('B', 1_000), single('C', 1_000)];
    const slow = run(three, 'fifo', 3, { dispatchRttMs: 10, dispatchBatch: 1 });
    expect(slow['mean_jct_s']).toBeCloseTo((1.01 + 1.02 + 1.03) / 3, 9);
    const batched = run(three, 'fifo', 3, {
      dispatchRttMs: 10,
      dispatchPerTaskMs: 1,
      dispatchBatch: 16,
    });
    expect(batched['mean_jct_s']).toBeCloseTo(1.013, 9);
  });
});

describe('moving between jobs (moveDelayMs)', () => {
  const move = { moveDelayMs: 500 };

  it('a worker pays the delay to reach a job, not between tasks of the job it is on', () => {
    // One worker; A has two 1 s tasks, B one. A's first task waits for the worker to arrive
    // (0.5-1.5 s), its second runs at once (1.5-2.5 s); B waits for the move back (3.0-4.0 s).
    const jobs = [job('A', 0, [stage([1_000, 1_000])]), single('B', 1_000)];
    expect(run(jobs, 'fifo', 1, move)['mean_jct_s']).toBeCloseTo((2.5 + 4) / 2, 9);
    expect(run(jobs, 'fifo', 1)['mean_jct_s']).toBeCloseTo((2 + 3) / 2, 9);
  });

  it('a task given to a worker on another job runs on a free worker already on its job', () => {
    // x (1 s) on w0 and y's first stage on w1 both end at 1.5 s. First fit gives y's second
    // stage w0, which would move (ends 3.0 s); w1 is on y and free, so it runs there (2.5 s).
    const jobs = [single('x', 1_000), job('y', 0, [stage([1_000]), stage([1_000], [0])])];
    const seen: [string, number | undefined][] = [];
    const fifo = createSchedulingPolicy('fifo');
    const policy: SchedulingPolicy = {
      name: 'fifo',
      pick(r, f, now) {
        for (const t of r) seen.push([`${now}:${t.id}`, t.jobFreeWorkers]);
        return fifo.pick(r, f, now);
      },
    };
    expect(run(jobs, policy, 2, move)['mean_jct_s']).toBeCloseTo((1.5 + 2.5) / 2, 9);
    // What the policy saw: no worker on any job at the start; at 1.5 s one free worker on y.
    expect(seen.filter(([k]) => k.startsWith('0:')).map(([, n]) => n)).toEqual([0, 0]);
    expect(seen.filter(([k]) => k.startsWith('1500:')).map(([, n]) => n)).toEqual([1]);
  });

  it('refuses a negative delay, naming the field', () => {
    expect(() => run([single('A', 1_000)], 'fifo', 1, { moveDelayMs: -1 })).toThrow(
      /moveDelayMs must be >= 0/,
    );
  });
});

describe('DAG stages', () => {
  it('a stage starts only when all its parents are done', () => {
    // 0 (two 1 s tasks) -> 1 (3 s) and 2 (1 s) -> 3 (2 s), on two workers.
    const dag = job('J', 0, [
      stage([1_000, 1_000]),
      stage([3_000], [0]),
      stage([1_000], [0]),
      stage([2_000], [1, 2]),
    ]);
    const p = spy('fifo');
    const m = run([dag], p, 2);
    const startOf = (id: string) => p.log.find(([, t]) => t === id)?.[0];
    expect(startOf('J/0/0')).toBe(0);
    expect(startOf('J/0/1')).toBe(0);
    expect(startOf('J/1/0')).toBe(1_000);
    expect(startOf('J/2/0')).toBe(1_000);
    expect(startOf('J/3/0')).toBe(4_000);
    expect(m['mean_jct_s']).toBe(6);
    expect(m['mean_slowdown']).toBe(1); // 1 + 3 + 2 s is also its critical path
  });

  it('rejects a cycle, a dangling parent and a task that fits no worker', () => {
    const sim = (j: JobSpec) =>
      new ClusterSim({ name: 'x', jobs: [j] }, uniformWorkers(1, { cpu: 1, memMb: 1, gpu: 0 }));
    expect(() => sim(job('c', 0, [stage([1], [1]), stage([1], [0])]))).toThrow(/cycle/);
    expect(() => sim(job('d', 0, [stage([1], [4])]))).toThrow(WorkloadError);
    expect(() =>
      sim(job('big', 0, [stage([1], [], { demand: { cpu: 2, memMb: 0, gpu: 0 } })])),
    ).toThrow(/fits no worker/);
  });
});

describe('failures and retries', () => {
  const always: Partial<SimConfig> = {
    failureProb: 0.999999,
    refailProb: 0,
    failureTransientMs: 0,
  };

  it('retries with doubling backoff, then gives the job up', () => {
    const p = spy('fifo');
    const m = run([single('A', 1_000)], p, 1, { ...always, retryLimit: 2, retryBackoffMs: 500 });
    expect(p.log.map(([, id]) => id)).toEqual(['A/0/0', 'A/0/0', 'A/0/0']);
    const [t0, t1, t2] = p.log.map(([t]) => t) as [number, number, number];
    expect(t0).toBe(0);
    // Each attempt fails somewhere inside its 1 s run; the next starts after 500, then 1000 ms.
    expect(t1 - t0).toBeGreaterThanOrEqual(500);
    expect(t1 - t0).toBeLessThan(1_500);
    expect(t2 - t1).toBeGreaterThanOrEqual(1_000);
    expect(t2 - t1).toBeLessThan(2_000);
    expect(m['attempts']).toBe(3);
    expect(m['retries']).toBe(2);
    expect(m['jobs_failed']).toBe(1);
    expect(m['jobs_completed']).toBe(0);
  });

  it('with retries to spare every job completes, later than without failures', () => {
    const jobs = Array.from({ length: 40 }, (_, i) => single(`j${i}`, 1_000, i * 500));
    const clean = run(jobs, 'fifo', 2);
    const flaky = run(jobs, 'fifo', 2, { failureProb: 0.3, retryLimit: 20, retryBackoffMs: 10 });
    expect(flaky['jobs_completed']).toBe(40);
    expect(flaky['retries']).toBeGreaterThan(0);
    expect(flaky['mean_jct_s']).toBeGreaterThan(clean['mean_jct_s'] as number);
  });

  it('charges a given-up job until the end of the run', () => {
    const m = run([single('bad', 1_000), single('ok', 4_000, 0, { id: 'ok' })], 'fifo', 2, {
      ...always,
      retryLimit: 0,
    });
    // Both fail at once here (every attempt fails): charged from arrival to the last event.
    expect(m['jobs_failed']).toBe(2);
    expect(m['mean_jct_s']).toBeGreaterThanOrEqual(0);
  });

  it('a job given up early is charged to the last live event, not to its killed attempts’ ends', () => {
    // One job, tasks of 1 s and 100 s on two workers, every attempt failing and no retry: the
    // first failure gives the job up and kills the other attempt, whose end event stays queued
    // (dead). Pick a seed where the short task fails first, from the declared draws.
    const failAt = (seed: number, task: number, ms: number) =>
      Math.floor(drawUniform(seed, 0, 0, task, 0, STREAM_FAIL_POINT) * ms);
    let seed = 0;
    while (!(failAt(seed, 0, 1_000) < failAt(seed, 1, 100_000))) seed++;
    const givenUp = failAt(seed, 0, 1_000);
    const w: Workload = { name: 'g', jobs: [job('bad', 0, [stage([1_000, 100_000])])] };
    const sim = createSim(w, {
      workers: uniformWorkers(2, { cpu: 1, memMb: 1024, gpu: 0 }),
      config: { ...always, seed, retryLimit: 0 },
    });
    const fifo = createSchedulingPolicy('fifo');
    sim.run((r, f, n) => fifo.pick(r, f, n));
    const m = summarise(sim);
    expect(m['jobs_failed']).toBe(1);
    expect(sim.lastEndMs).toBe(givenUp);
    // The killed attempt's end (at failAt(seed, 1, 100 s)) moves neither the clock nor the charge.
    expect(sim.now).toBe(givenUp);
    expect(sim.finished).toBe(true);
    expect(m['mean_jct_s']).toBe(givenUp / 1000);
    // Both workers were busy from the arrival to the give-up.
    expect(m['utilization']).toBe(1);
    expect(sim.jobTimeMs).toBe(givenUp);
  });
});

describe('speculative execution', () => {
  it('copies a task that runs past threshold x its stage median; the first to finish wins', () => {
    // Five tasks: four take 100 ms, one 1000 ms. After three finish the median is 100 ms, so the
    // long one is a straggler at 300 ms; its copy takes 1000 ms too and loses, and is killed.
    const j = job('S', 0, [stage([100, 100, 100, 100, 1_000])]);
    const off = run([j], 'fifo', 6);
    const on = run([j], 'fifo', 6, { speculative: true, stragglerThreshold: 3 });
    expect(off['speculative_copies']).toBe(0);
    expect(on['speculative_copies']).toBe(1);
    expect(on['speculative_wins']).toBe(0);
    expect(on['mean_jct_s']).toBe(1);
    expect(on['attempts']).toBe(6);
    // The losing copy's end (at 1300 ms) is dead: the run ends when the task does.
    const sim = createSim(
      { name: 'test', jobs: [j] },
      {
        workers: uniformWorkers(6, { cpu: 1, memMb: 1024, gpu: 0 }),
        config: { speculative: true, stragglerThreshold: 3 },
      },
    );
    const fifo = createSchedulingPolicy('fifo');
    sim.run((r, f, n) => fifo.pick(r, f, n));
    expect(sim.now).toBe(1_000);
    expect(sim.finished).toBe(true);
  });

  it('a straggler check after its attempt ended does not move the clock', () => {
    // One 1 s task on one worker: its check is due at 3 x 1 s, after it has finished.
    for (const speculative of [false, true]) {
      const m = run([single('T', 1_000)], 'fifo', 1, { speculative, stragglerThreshold: 3 });
      expect(m['utilization']).toBe(1);
      expect(m['cpu_utilization']).toBe(1);
      expect(m['makespan_s']).toBe(1);
      expect(m['mean_jct_s']).toBe(1);
      expect(m['events']).toBe(2); // the arrival and the end; the dead check is not counted
    }
  });

  it('a copy that beats a slowed original ends the task at the copy’s end', () => {
    // Every attempt straggles (Pareto, alpha 1); find a seed where the original is slowed past
    // 3x and its copy under 1.2x, from the simulator's declared draws (hash of seed and address).
    const slow = (seed: number, attempt: number) => {
      expect(drawUniform(seed, 0, 0, 0, attempt, STREAM_STRAGGLE)).toBeLessThan(1);
      return Math.min(50, 1 / (1 - drawUniform(seed, 0, 0, 0, attempt, STREAM_SLOWDOWN)));
    };
    let seed = 0;
    while (!(slow(seed, 0) > 3 && slow(seed, 1) < 1.2)) seed++;
    const cfg: Partial<SimConfig> = {
      seed,
      stragglerProb: 1,
      stragglerAlpha: 1,
      speculative: true,
      stragglerThreshold: 1.5,
    };
    const m = run([single('T', 1_000)], 'fifo', 2, cfg);
    // The check fires at 1.5 x the 1 s estimate; the copy starts then.
    expect(m['speculative_copies']).toBe(1);
    expect(m['speculative_wins']).toBe(1);
    expect(m['mean_jct_s']).toBeCloseTo((1_500 + Math.round(1_000 * slow(seed, 1))) / 1000, 9);
    expect(
      run([single('T', 1_000)], 'fifo', 2, { ...cfg, speculative: false })['mean_jct_s'],
    ).toBeCloseTo(Math.round(1_000 * slow(seed, 0)) / 1000, 9);
  });
});

describe('replay and metrics', () => {
  const workers = uniformWorkers(4, { cpu: 4, memMb: 16_384, gpu: 0 });
  const cfg: Partial<SimConfig> = {
    stragglerProb: 0.1,
    failureProb: 0.05,
    speculative: true,
    dispatchRttMs: 2,
  };

  it('the same seed gives identical results; another seed does not', () => {
    const w = syntheticWorkload({ jobs: 30, workers, seed: 3 });
    const a = simulate(w, createSchedulingPolicy('fair'), { workers, config: { ...cfg, seed: 5 } });
    const b = simulate(w, createSchedulingPolicy('fair'), { workers, config: { ...cfg, seed: 5 } });
    const c = simulate(w, createSchedulingPolicy('fair'), { workers, config: { ...cfg, seed: 6 } });
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
    expect(syntheticWorkload({ jobs: 30, workers, seed: 3 })).toEqual(w);
  });

  it('computes Jain’s index by hand', () => {
    expect(jainIndex([1, 1, 1, 1])).toBe(1);
    expect(jainIndex([1, 0, 0, 0])).toBe(0.25);
    expect(jainIndex([1, 2])).toBeCloseTo(9 / 10, 12);
  });

  it('fairness across tenants: one tenant starved by priority scores lower', () => {
    const jobs = Array.from({ length: 20 }, (_, i) =>
      single(`j${i}`, 1_000, 0, {
        tenant: i % 2 === 0 ? 'rich' : 'poor',
        priority: i % 2 === 0 ? 1 : 0,
      }),
    );
    const byPriority = run(jobs, 'priority', 2);
    const fair = run(jobs, 'fair', 2);
    expect(fair['jain_fairness']).toBeGreaterThan(byPriority['jain_fairness'] as number);
    expect(fair['jain_fairness']).toBeGreaterThan(0.99);
  });

  it('rescales arrivals to a target offered load', () => {
    const w = syntheticWorkload({ jobs: 50, workers, seed: 1, load: 0.5 });
    expect(offeredLoad(w.jobs, workers)).toBeCloseTo(0.5, 6);
    expect(offeredLoad(rescaleToLoad(w, workers, 0.9).jobs, workers)).toBeCloseTo(0.9, 2);
  });

  it('measures GPU capacity stranded by fragmentation', () => {
    // One 2-GPU node; a 0.5-GPU task runs 10 s; the workload's other tasks want whole GPUs.
    const d: Demand = { cpu: 1, memMb: 0, gpu: 1, gpuMilli: 500 };
    const w: Workload = { name: 'g', jobs: [job('g', 0, [stage([10_000], [], { demand: d })])] };
    const sim = new ClusterSim(
      w,
      uniformWorkers(1, { cpu: 8, memMb: 1, gpu: 2 }),
      {},
      {
        gpuClasses: [{ demand: { cpu: 1, memMb: 0, gpu: 1 }, weight: 1 }],
      },
    );
    const fifo = createSchedulingPolicy('fifo');
    sim.run((r, f, n) => fifo.pick(r, f, n));
    const m = summarise(sim);
    // The half-used device's free 500 is stranded: 500 of 2000 for the whole run.
    expect(m['gpu_stranded_frac']).toBeCloseTo(0.25, 9);
    expect(m['gpu_utilization']).toBeCloseTo(0.25, 9);
  });

  it('two GPU shares go on one device; a third waits for it', () => {
    const d: Demand = { cpu: 1, memMb: 0, gpu: 1, gpuMilli: 500 };
    const jobs = ['a', 'b', 'c'].map((id) => job(id, 0, [stage([1_000], [], { demand: d })]));
    const m = simulate({ name: 'g', jobs }, createSchedulingPolicy('fifo'), {
      workers: uniformWorkers(1, { cpu: 8, memMb: 1, gpu: 1 }),
    });
    expect(m['mean_jct_s']).toBeCloseTo((1 + 1 + 2) / 3, 9);
  });
});

describe('gym env and knob objective', () => {
  it('passes checkEnv', () => {
    expect(checkEnv(() => new SchedulerEnv({ window: 8 }), { maxSteps: 150 })).toBeGreaterThan(0);
  });

  it('always taking the oldest fitting task replays FIFO; the return is minus the total job time', () => {
    const env = new SchedulerEnv();
    let { info } = env.reset({ seed: 4 });
    let total = 0;
    let steps = 0;
    for (; steps < 100_000; steps++) {
      expect((info['actionMask'] as boolean[])[0]).toBe(true);
      const r = env.step(0);
      total += r.reward;
      info = r.info;
      if (r.terminated) break;
    }
    expect(() => env.step(0)).toThrow(/mask/);
    const ws = uniformWorkers(4, { cpu: 4, memMb: 16_384, gpu: 0 });
    const w = syntheticWorkload({ jobs: 20, workers: ws, seed: 4, load: 0.9 });
    const m = simulate(w, createSchedulingPolicy('fifo'), { workers: ws, config: { seed: 4 } });
    expect(m['attempts']).toBe(steps + 1);
    expect(total).toBeCloseTo(-(m['mean_jct_s'] as number) * 20, 6);
  });

  it('with jobs given up, the return is still minus the sum of the JCTs the summary counts', () => {
    // Job A (1 s and 100 s tasks) and job B (50 s) on three workers, half the attempts failing
    // and no retry: A and B are given up in some seeds. A given-up job is charged until the end
    // of the run (the last live event) in the reward as in the summary, so with no censored job
    // the return is exactly -(mean_jct_s x jobs), whatever is given up.
    const workers = uniformWorkers(3, { cpu: 1, memMb: 1024, gpu: 0 });
    const workload: Workload = {
      name: 'g',
      jobs: [job('A', 0, [stage([1_000, 100_000])]), job('B', 0, [stage([50_000])])],
    };
    const config: Partial<SimConfig> = { failureProb: 0.5, retryLimit: 0 };
    let earlyGiveUps = 0;
    for (let seed = 1; seed <= 8; seed++) {
      const env = new SchedulerEnv({ scenario: () => ({ workload, workers }), config });
      let { info } = env.reset({ seed });
      let total = 0;
      let done = false;
      while (!done) {
        const r = env.step((info['actionMask'] as boolean[]).indexOf(true));
        total += r.reward;
        info = r.info;
        done = r.terminated;
      }
      const sim = createSim(workload, { workers, config: { ...config, seed } });
      const fifo = createSchedulingPolicy('fifo');
      sim.run((r, f, n) => fifo.pick(r, f, n));
      const m = summarise(sim);
      expect(info['nowMs']).toBe(sim.now);
      expect(total).toBeCloseTo(-(m['mean_jct_s'] as number) * 2, 9);
      if (sim.failedJobs.some((j) => j.endMs < sim.now)) earlyGiveUps++;
    }
    expect(earlyGiveUps).toBeGreaterThan(0); // a job given up before the run's end was charged
  });

  it('with speculation on, taking any offered candidate is legal; a step a copy pre-empts is idle', () => {
    // A copy claims its worker before the round's pick: the pick then waits (an idle step).
    const env = new SchedulerEnv({ config: { stragglerProb: 0.1, speculative: true } });
    let r = { ...env.reset({ seed: 7 }), terminated: false };
    let steps = 0;
    let idle = 0;
    while (!r.terminated && steps++ < 100_000) {
      r = env.step(0);
      if (r.info['idle'] === true) idle++;
    }
    expect(r.terminated).toBe(true);
    expect(idle).toBeGreaterThan(0);
    expect(idle).toBeLessThan(steps / 5);
  });

  it('a fork continues exactly as the original would, and stepping it leaves the original be', () => {
    // Stragglers, failures and moves, so the fork must carry the random draws' state too.
    const config = { moveDelayMs: 300, stragglerProb: 0.1, failureProb: 0.05, speculative: true };
    const legal = (info: Record<string, unknown>) =>
      (info['actionMask'] as boolean[]).filter(Boolean).length;
    /** Resets to seed 7, takes the newest candidate 40 times, then to a choice: fork there. */
    const reach = (e: SchedulerEnv): number => {
      let { info } = e.reset({ seed: 7 });
      for (let i = 0; i < 40 || legal(info) < 2; i++) info = e.step(legal(info) - 1).info;
      return legal(info);
    };
    /** Takes `first`, then candidate `pick(count)` to the end: the rewards. */
    const play = (e: SchedulerEnv, first: number, pick: (count: number) => number) => {
      const rewards: number[] = [];
      for (let a = first; rewards.length < 100_000;) {
        const r = e.step(a);
        rewards.push(r.reward);
        if (r.terminated) return rewards;
        a = pick(legal(r.info));
      }
      throw new Error('did not end');
    };
    const newest = (count: number) => count - 1;
    const env = new SchedulerEnv({ config });
    const n = reach(env);
    expect(n).toBeGreaterThan(1);
    const other = play(env.fork(), 0, () => 0);
    const original = play(env, n - 1, newest);
    expect(other).not.toEqual(original);
    // A fresh env at the same decision: its fork, and then itself, continue as the original.
    const ref = new SchedulerEnv({ config });
    reach(ref);
    expect(play(ref.fork(), n - 1, newest)).toEqual(original);
    expect(play(ref, n - 1, newest)).toEqual(original);
  });

  it('evaluates the scheduler knobs, rejecting bad values and unknown knobs', async () => {
    const workers = uniformWorkers(4, { cpu: 4, memMb: 16_384, gpu: 0 });
    const obj = schedulerObjective({
      scenario: (seed) => ({ workload: syntheticWorkload({ jobs: 40, workers, seed }), workers }),
    });
    expect(obj.knobs.map((k) => k.name)).toEqual([...SCHEDULER_KNOB_NAMES]);
    expect(obj.objective).toEqual({ metric: 'mean_jct_s', direction: 'min' });
    const base = await obj.evaluate({}, 1);
    expect(await obj.evaluate({}, 1)).toEqual(base);
    expect(base['jobs']).toBe(40);
    const noRetry = await obj.evaluate({ 'scheduler.retry_limit': 0 }, 1);
    expect(noRetry['jobs_failed']).toBeGreaterThanOrEqual(base['jobs_failed'] as number);
    await expect(obj.evaluate({ 'scheduler.policy': 'lottery' }, 1)).rejects.toThrow(
      /scheduler.policy/,
    );
    await expect(obj.evaluate({ 'scheduler.dispatch_batch': 0 }, 1)).rejects.toThrow(/>= 1/);
    await expect(obj.evaluate({ 'cache.size': 3 }, 1)).rejects.toThrow(/unknown knob/);
  });
});

describe('loaders', () => {
  it('reads a jobs CSV with optional columns in any order', () => {
    const f = tmp('jobs.csv', 'tenant,duration_s,arrival_s,gpu\nx,2,0,0.5\n\ny,1.5,3,2\n');
    const w = loadJobsCsv(f);
    expect(w.jobs.map((j) => [j.tenant, j.arrivalMs, j.stages[0]?.durationsMs[0]])).toEqual([
      ['x', 0, 2000],
      ['y', 3000, 1500],
    ]);
    expect(w.jobs[0]?.stages[0]?.demand).toEqual({ cpu: 1, memMb: 0, gpu: 1, gpuMilli: 500 });
    expect(w.jobs[1]?.stages[0]?.demand).toEqual({ cpu: 1, memMb: 0, gpu: 2 });
  });

  it('rejects malformed job rows with file, line and reason', () => {
    const cases: [string, RegExp][] = [
      ['arrival_s\n1\n', /:1: header lacks column\(s\) duration_s/],
      ['arrival_s,duration_s\n1,2\n3,x\n', /:3: duration_s must be a decimal number, got "x"/],
      ['arrival_s,duration_s\n-1,2\n', /:2: arrival_s must be >= 0/],
      ['arrival_s,duration_s,gpus\n1,2,1\n', /:1: unknown column "gpus"/],
      ['arrival_s,duration_s\n1,2,3\n', /:2: expected 2 fields like the header, got 3/],
      ['arrival_s,duration_s,gpu\n1,2,1.5\n', /:2: gpu above 1 must be a whole number/],
      ['arrival_s,duration_s,cpu\n1,2,0\n', /:2: a job must ask for cpu > 0 or gpu > 0/],
      // Durations and arrival spans are bounded (1e9 s), absolute times too (1e11 s: epoch
      // seconds, not milliseconds): 1e300 s is no job length, and overflows once in ms.
      [
        `arrival_s,duration_s\n1,2\n2,1${'0'.repeat(300)}\n`,
        /:3: duration_s must be <= 1000000000/,
      ],
      [`arrival_s,duration_s\n1${'0'.repeat(300)},2\n`, /:2: arrival_s must be <= 100000000000/],
      ['arrival_s,duration_s\n0x3e8,2\n', /:2: arrival_s must be a decimal number, got "0x3e8"/],
    ];
    for (const [text, want] of cases) {
      const f = tmp('bad.csv', text);
      expect(() => loadJobsCsv(f)).toThrow(JobTraceError);
      expect(() => loadJobsCsv(f)).toThrow(want);
      expect(() => loadJobsCsv(f)).toThrow(f);
    }
  });

  const STAGES = TPCH_STAGES;
  const DURATIONS = TPCH_DURATIONS;

  it('reads TPC-H DAGs and samples task durations from the stage’s measurements', () => {
    const stages = tmp('stages.csv', STAGES);
    const durations = tmp('durations.csv.gz', gzipSync(DURATIONS));
    const dags = loadTpchDags(stages, durations);
    expect(dags.map((d) => [d.scale, d.query, d.stages.length])).toEqual([
      ['1g', '7', 3],
      ['2g', '9', 1],
    ]);
    expect(dags[0]?.stages[2]?.parents).toEqual([0, 1]);
    expect(Array.from(dags[0]?.stages[0]?.samples ?? [])).toEqual([100, 300]);
    // The durations are parsed once per file and process.
    expect(loadTpchDurations(durations)).toBe(loadTpchDurations(durations));
    expect(existsSync(TPCH_STAGES_FILE) && existsSync(TPCH_DURATIONS_FILE)).toBe(true);
    const workers = uniformWorkers(2, { cpu: 1, memMb: 1, gpu: 0 });
    const w = tpchWorkload({
      stagesFile: stages,
      durationsFile: durations,
      jobs: 30,
      workers,
      seed: 2,
      load: 0.7,
    });
    expect(offeredLoad(w.jobs, workers)).toBeCloseTo(0.7, 2);
    for (const j of w.jobs) {
      for (const s of j.stages)
        for (const d of Array.from(s.durationsMs)) expect([100, 300, 50, 70, 1000]).toContain(d);
    }
    expect(
      simulate(w, createSchedulingPolicy('critical_path'), { workers })['jobs_completed'],
    ).toBe(30);
  });

  it('rejects malformed TPC-H rows with file, line and reason', () => {
    const durations = tmp('d.csv.gz', gzipSync(DURATIONS));
    const badParent = tmp('s.csv', STAGES.replace('1g,7,2,3,0;1,,10', '1g,7,2,3,0;1;5,,10'));
    expect(() => loadTpchDags(badParent, durations)).toThrow(
      /s\.csv:4: parent 5 is not another stage/,
    );
    const badChild = tmp('s.csv', STAGES.replace('1g,7,1,1,,2,10', '1g,7,1,1,,0,10'));
    expect(() => loadTpchDags(badChild, durations)).toThrow(/:3: child 0 does not list stage 1/);
    const badTasks = tmp('s.csv', STAGES.replace('2g,9,0,1,', '2g,9,0,zero,'));
    expect(() => loadTpchDags(badTasks, durations)).toThrow(
      /:5: num_tasks must be a decimal number/,
    );
    // A stage's task count is bounded: each task gets a slot in a duration array.
    const hugeTasks = tmp('s.csv', STAGES.replace('2g,9,0,1,', '2g,9,0,10000000000,'));
    expect(() => loadTpchDags(hugeTasks, durations)).toThrow(
      /s\.csv:5: num_tasks must be <= 1000000, got 10000000000/,
    );
    const badDur = tmp('d2.csv.gz', gzipSync(DURATIONS.replace('first_wave,50', 'first_wave,-5')));
    expect(() => loadTpchDags(tmp('s.csv', STAGES), badDur)).toThrow(
      /d2\.csv\.gz:4: duration_ms must be a decimal number >= 0/,
    );
    const missing = tmp(
      'd3.csv.gz',
      gzipSync(DURATIONS.replace('\n2g,9,0,5,fresh_durations,1000', '')),
    );
    expect(() => loadTpchDags(tmp('s.csv', STAGES), missing)).toThrow(
      /:5: no duration samples for 2g,9,0/,
    );
  });

  const NODES = 'sn,cpu_milli,memory_mib,gpu,model\nn0,8000,65536,2,T4\nn1,4000,16384,0,\n';
  const PODS = [
    'name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time',
    'p0,1000,1024,1,500,,LS,Succeeded,0,100,10',
    'p1,2000,1024,0,0,,BE,Running,5,200,5',
    'p2,1000,1024,1,1000,T4|A10,LS,Pending,7,9,',
    'p3,1000,1024,1,1000,T4,BE,Failed,8,20,8',
  ].join('\n');

  it('reads Alibaba pods and nodes: never-scheduled dropped, still-running censored', () => {
    const nodes = tmp('nodes.csv', NODES);
    const w = loadAlibabaGpu({ podsFile: tmp('pods.csv', PODS), nodesFile: nodes });
    expect(w.notes).toEqual({ pods: 4, never_scheduled_dropped: 1, running_censored: 1 });
    expect(
      w.jobs.map((j) => [j.id, j.arrivalMs, j.stages[0]?.durationsMs[0], j.censored ?? false]),
    ).toEqual([
      ['p0', 0, 90_000, false],
      ['p1', 5_000, 195_000, true],
      ['p3', 8_000, 12_000, false],
    ]);
    expect(w.jobs[2]?.stages[0]?.demand.gpuModels).toEqual(['T4']);
    expect(w.jobs.map((j) => j.priority)).toEqual([2, 0, 0]);
    // A QoS class that is an Object.prototype member is unknown too: priority 0, not a function.
    const odd = tmp('pods.csv', PODS.replace('LS,Succeeded', 'constructor,Succeeded'));
    expect(loadAlibabaGpu({ podsFile: odd, nodesFile: nodes }).jobs[0]?.priority).toBe(0);
    expect(loadAlibabaNodes(nodes)[0]).toEqual({
      id: 'n0',
      capacity: { cpu: 8, memMb: 65_536, gpu: 2 },
      gpuModel: 'T4',
    });
    const m = simulate(w, createSchedulingPolicy('fifo'), {});
    expect(m['jobs_censored']).toBe(1);
    expect(m['mean_jct_s']).toBeCloseTo((90 + 12) / 2, 9); // the censored pod is left out
    expect(m['gpu_stranded_frac']).toBeGreaterThan(0);
  });

  it('rejects malformed Alibaba rows with file, line and reason', () => {
    const nodes = tmp('nodes.csv', NODES);
    const pods = (from: string, to: string) => tmp('pods.csv', PODS.replace(from, to));
    const load = (f: string) => () => loadAlibabaGpu({ podsFile: f, nodesFile: nodes });
    expect(load(pods('LS,Succeeded', 'LS,Done'))).toThrow(/pods\.csv:2: pod_phase must be one of/);
    expect(load(pods('0,100,10', '0,100,200'))).toThrow(
      /:2: deletion_time 100 is before scheduled_time 200/,
    );
    expect(load(pods('p3,1000,1024,1,1000', 'p3,1000,1024,1,0'))).toThrow(
      /:5: gpu_milli must be in 1..1000/,
    );
    expect(() => loadAlibabaNodes(tmp('n.csv', NODES.replace('n1,4000', 'n1,lots')))).toThrow(
      /n\.csv:3: cpu_milli must be a decimal number/,
    );
    // No nodes, no pods, or no pod that ever ran: nothing to replay.
    const [podsHeader, , , pending] = PODS.split('\n');
    expect(() => loadAlibabaNodes(tmp('n.csv', NODES.split('\n')[0] + '\n'))).toThrow(
      /n\.csv:2: no nodes: the file has a header but no rows/,
    );
    expect(load(tmp('pods.csv', `${podsHeader}\n`))).toThrow(/pods\.csv:2: no pods/);
    expect(load(tmp('pods.csv', `${podsHeader}\n${pending}\n`))).toThrow(
      /pods\.csv:0: no scheduled pods: every pod row \(1\) has an empty scheduled_time/,
    );
  });

  it('reads the first rows of the shared Alibaba trace', () => {
    const head = (f: string, n: number) => tmp(f.split('/').pop() as string, headLines(f, n));
    const w = loadAlibabaGpu({
      podsFile: head(sharedTrace('jobs/alibaba_gpu2023_pods.csv'), 40),
      nodesFile: head(sharedTrace('jobs/alibaba_gpu2023_nodes.csv'), 400),
    });
    expect(w.jobs.length + (w.notes?.['never_scheduled_dropped'] ?? 0)).toBe(39);
    expect(w.workers?.length).toBe(399);
  });
});
