import { describe, expect, it } from 'vitest';
import { SCHEDULER_POLICIES } from '../knobs/index.ts';
import {
  FragmentationAwarePlacement,
  bestFit,
  chooseDevices,
  createPlacementPolicy,
  firstFit,
  fits,
  nodeFragMilli,
  workloadClasses,
  type WorkloadClass,
} from '../policies/gpu/index.ts';
import {
  SCHEDULING_POLICY_NAMES,
  ScoredPolicy,
  TASK_FEATURES,
  TASK_FEATURE_NAMES,
  createSchedulingPolicy,
  featureScorer,
  srptWarmFirst,
  taskFeatures,
  type Demand,
  type TaskView,
  type WorkerView,
} from '../policies/scheduling/index.ts';

const CPU1: Demand = { cpu: 1, memMb: 0, gpu: 0 };

function task(id: string, over: Partial<TaskView> = {}): TaskView {
  return {
    id,
    jobId: id,
    tenant: 'a',
    priority: 0,
    demand: CPU1,
    estimateMs: 1000,
    jobRemainingWorkMs: 1000,
    criticalPathMs: 1000,
    submittedAt: 0,
    readyAt: 0,
    attempts: 0,
    stageDepth: 0,
    tenantRunning: 0,
    tenantServedMs: 0,
    ...over,
  };
}

function worker(id: string, cpu: number, over: Partial<WorkerView> = {}): WorkerView {
  return {
    id,
    free: { cpu, memMb: 1e6, gpu: 0 },
    capacity: { cpu, memMb: 1e6, gpu: 0 },
    ...over,
  };
}

/** A worker with GPU devices, `free` thousandths each. */
function gpuWorker(id: string, free: number[], cpu = 64, model?: string): WorkerView {
  const w: WorkerView = {
    id,
    free: { cpu, memMb: 1e6, gpu: free.reduce((a, b) => a + b, 0) / 1000 },
    capacity: { cpu, memMb: 1e6, gpu: free.length },
    gpuFreeMilli: free,
  };
  if (model) w.gpuModel = model;
  return w;
}

const picked = (name: string, tasks: TaskView[], slots = 1) =>
  createSchedulingPolicy(name)
    .pick(tasks, [worker('w', slots)], 0)
    .map((a) => a.taskId);

describe('policy names', () => {
  it('are the knob catalog’s scheduler.policy values, and each builds', () => {
    expect([...SCHEDULING_POLICY_NAMES]).toEqual([...SCHEDULER_POLICIES]);
    for (const name of SCHEDULING_POLICY_NAMES)
      expect(createSchedulingPolicy(name).name).toBe(name);
    expect(() => createSchedulingPolicy('lottery')).toThrow(/must be one of fifo/);
    // Names of Object.prototype's members are no policies either (toString found a function).
    for (const name of ['toString', 'constructor', 'valueOf', 'hasOwnProperty', '__proto__'])
      expect(() => createSchedulingPolicy(name)).toThrow(/must be one of fifo/);
  });
});

describe('baseline ranking', () => {
  it('fifo takes the oldest job, then the earliest ready task', () => {
    const ts = [
      task('late', { submittedAt: 5 }),
      task('b', { submittedAt: 1, readyAt: 4 }),
      task('a', { submittedAt: 1, readyAt: 2 }),
    ];
    expect(picked('fifo', ts, 3)).toEqual(['a', 'b', 'late']);
  });

  it('sjf takes the shortest estimate; tasks without one go last', () => {
    const ts = [
      task('none', { estimateMs: undefined }),
      task('long', { estimateMs: 900 }),
      task('short', { estimateMs: 10, submittedAt: 9 }),
    ];
    expect(picked('sjf', ts, 3)).toEqual(['short', 'long', 'none']);
  });

  it('srpt takes the job with the least work left; critical_path the longest chain', () => {
    const ts = [
      task('x', { jobRemainingWorkMs: 500, criticalPathMs: 100 }),
      task('y', { jobRemainingWorkMs: 50, criticalPathMs: 900 }),
      task('z', { jobRemainingWorkMs: 5000, criticalPathMs: 400 }),
    ];
    expect(picked('srpt', ts, 3)).toEqual(['y', 'x', 'z']);
    expect(picked('critical_path', ts, 3)).toEqual(['y', 'z', 'x']);
  });

  it('priority takes the highest priority first', () => {
    const ts = [task('lo', { priority: -1 }), task('hi', { priority: 7 }), task('mid')];
    expect(picked('priority', ts, 3)).toEqual(['hi', 'mid', 'lo']);
  });

  it('fair share counts what it assigns in the same call', () => {
    // Tenant a has nothing running but was served more; b has one task running.
    const a = { tenant: 'a', tenantRunning: 0, tenantServedMs: 100 };
    const b = { tenant: 'b', tenantRunning: 1, tenantServedMs: 0 };
    const ts = [task('a1', a), task('a2', a), task('b1', b)];
    // a first (0 running); then a and b both have 1: b, served less, wins the tie.
    expect(picked('fair', ts, 2)).toEqual(['a1', 'b1']);
  });

  it('breaks ties the same way whatever the input order', () => {
    const ts = [task('c'), task('a'), task('b'), task('d', { readyAt: -1 })];
    const want = picked('sjf', ts, 4);
    expect(want).toEqual(['d', 'a', 'b', 'c']);
    const perms = (xs: TaskView[]): TaskView[][] =>
      xs.length <= 1
        ? [xs]
        : xs.flatMap((x, i) => perms(xs.filter((_, j) => j !== i)).map((p) => [x, ...p]));
    for (const p of perms(ts)) expect(picked('sjf', p, 4)).toEqual(want);
  });
});

describe('greedy assignment', () => {
  it('backfills: a task too big for any worker is skipped, a smaller one runs', () => {
    const ts = [
      task('big', { demand: { cpu: 4, memMb: 0, gpu: 0 } }),
      task('small', { submittedAt: 1 }),
    ];
    const out = createSchedulingPolicy('fifo').pick(ts, [worker('w0', 2)], 0);
    expect(out).toEqual([{ taskId: 'small', workerId: 'w0' }]);
  });

  it('respects memory and places on the first worker that fits', () => {
    const ts = [task('m', { demand: { cpu: 1, memMb: 3000, gpu: 0 } })];
    const ws = [worker('w0', 4, { free: { cpu: 4, memMb: 1000, gpu: 0 } }), worker('w1', 4)];
    expect(createSchedulingPolicy('fifo').pick(ts, ws, 0)).toEqual([
      { taskId: 'm', workerId: 'w1' },
    ]);
  });

  it('never over-commits a worker within one call', () => {
    const ts = ['a', 'b', 'c', 'd'].map((id) => task(id));
    const out = createSchedulingPolicy('fifo').pick(ts, [worker('w0', 2), worker('w1', 1)], 0);
    expect(out.map((a) => a.workerId)).toEqual(['w0', 'w0', 'w1']);
  });

  it('does not touch its inputs', () => {
    const ts = [task('a'), task('b', { tenant: 'b' })];
    const ws = [gpuWorker('g', [500, 1000]), worker('w', 1)];
    const before = JSON.stringify([ts, ws]);
    for (const name of SCHEDULING_POLICY_NAMES) createSchedulingPolicy(name).pick(ts, ws, 0);
    expect(JSON.stringify([ts, ws])).toBe(before);
  });
});

describe('score-based policy', () => {
  it('ranks by any pure scorer, and a feature scorer reads taskFeatures', () => {
    const ts = [task('old', { submittedAt: 0 }), task('young', { submittedAt: 900 })];
    // Youngest job first: score = submission time.
    const newest = new ScoredPolicy('newest', (t) => t.submittedAt);
    expect(newest.pick(ts, [worker('w', 1)], 1000).map((a) => a.taskId)).toEqual(['young']);
    // The same through features: job age is feature 4; minus age ranks the young job first.
    const ageIdx = TASK_FEATURE_NAMES.indexOf('job_age_log_s');
    const learned = new ScoredPolicy(
      'learned',
      featureScorer((x) => -(x[ageIdx] as number)),
    );
    expect(learned.pick(ts, [worker('w', 1)], 1000).map((a) => a.taskId)).toEqual(['young']);
  });

  it('crashes loudly on a NaN score', () => {
    const bad = new ScoredPolicy('bad', () => Number.NaN);
    expect(() => bad.pick([task('a')], [worker('w', 1)], 0)).toThrow(/NaN/);
  });

  it('reads the free workers already on the task job, 0 where the caller does not track them', () => {
    const col = TASK_FEATURE_NAMES.indexOf('job_free_workers_log');
    expect(taskFeatures(task('a', { jobFreeWorkers: 3 }), 0)[col]).toBeCloseTo(Math.log(4), 12);
    expect(taskFeatures(task('a'), 0)[col]).toBe(0);
  });

  it('describes a task with finite features above the declared floor', () => {
    const f = taskFeatures(task('a', { priority: -3, estimateMs: undefined }), 5000);
    expect(f.length).toBe(TASK_FEATURES);
    for (const x of f) expect(Number.isFinite(x) && x >= -1).toBe(true);
  });
});

describe('GPU placement', () => {
  const quarter: Demand = { cpu: 1, memMb: 0, gpu: 1, gpuMilli: 250 };
  const two: Demand = { cpu: 1, memMb: 0, gpu: 2 };

  it('fits and chooses devices by free share', () => {
    const w = gpuWorker('n', [1000, 300, 200]);
    expect(fits(quarter, w)).toBe(true);
    expect(fits(two, w)).toBe(false);
    expect(chooseDevices(quarter, w, 'first')).toEqual([0]);
    expect(chooseDevices(quarter, w, 'tightest')).toEqual([1]);
    expect(fits({ ...quarter, gpuModels: ['V100'] }, w)).toBe(false);
    expect(fits({ ...quarter, gpuModels: ['V100'] }, gpuWorker('v', [1000], 8, 'V100'))).toBe(true);
  });

  it('first fit takes the first node that fits; best fit the tightest', () => {
    const nodes = [
      gpuWorker('a', [1000, 1000, 1000, 1000]),
      gpuWorker('b', [0, 1000]),
      gpuWorker('c', [1000, 1000]),
    ];
    const one: Demand = { cpu: 1, memMb: 0, gpu: 1 };
    expect(firstFit.place(one, nodes)).toEqual({ worker: 0, gpus: [0] });
    expect(bestFit.place(one, nodes)).toEqual({ worker: 1, gpus: [1] });
    expect(bestFit.place(two, nodes)).toEqual({ worker: 2, gpus: [0, 1] });
    // Within a node, best fit takes the tightest device that fits.
    expect(bestFit.place(quarter, [gpuWorker('d', [1000, 300, 600])])).toEqual({
      worker: 0,
      gpus: [1],
    });
    expect(firstFit.place({ cpu: 1, memMb: 0, gpu: 8 }, nodes)).toBeNull();
  });

  it('measures a node’s fragmentation against the workload by hand', () => {
    const classes: WorkloadClass[] = [
      { demand: { cpu: 1, memMb: 0, gpu: 1, gpuMilli: 1000 }, weight: 0.5 },
      { demand: { cpu: 1, memMb: 0, gpu: 1, gpuMilli: 500 }, weight: 0.25 },
      { demand: { cpu: 1, memMb: 0, gpu: 0 }, weight: 0.25 },
    ];
    const n = gpuWorker('n', [1000, 500, 200]);
    // Whole-GPU class strands 500 + 200; half-GPU class strands 200; CPU class strands all 1700.
    expect(nodeFragMilli(n, classes)).toBeCloseTo(0.5 * 700 + 0.25 * 200 + 0.25 * 1700, 9);
    // A class that cannot run there at all (too few cores) strands everything.
    expect(nodeFragMilli(gpuWorker('tiny', [1000, 500, 200], 0.5), classes)).toBeCloseTo(1700, 9);
  });

  it('FGD keeps room for the workload where best fit would strand it', () => {
    // Every task in the workload takes 0.3 GPU. Best fit packs a 0.3 task onto the 400 device,
    // leaving 100 that no task can use; FGD puts it on the 600 device, leaving 300: usable.
    const classes = workloadClasses([{ cpu: 1, memMb: 0, gpu: 1, gpuMilli: 300 }]);
    const d: Demand = { cpu: 1, memMb: 0, gpu: 1, gpuMilli: 300 };
    const nodes = [gpuWorker('a', [400]), gpuWorker('b', [600])];
    expect(bestFit.place(d, nodes)?.worker).toBe(0);
    expect(new FragmentationAwarePlacement(classes).place(d, nodes)?.worker).toBe(1);
    // And it still answers like the others when nothing fits.
    expect(new FragmentationAwarePlacement(classes).place(two, nodes)).toBeNull();
  });

  it('FGD sends CPU-only tasks to nodes without GPUs', () => {
    const classes = workloadClasses([{ cpu: 1, memMb: 0, gpu: 1 }]);
    // On the GPU node the task would take the last core, stranding both GPUs.
    const nodes = [gpuWorker('g', [1000, 1000], 1), worker('c', 4)];
    expect(new FragmentationAwarePlacement(classes).place(CPU1, nodes)?.worker).toBe(1);
    expect(firstFit.place(CPU1, nodes)?.worker).toBe(0);
  });

  it('builds workload classes weighted by count, most frequent first', () => {
    const cls = workloadClasses([
      { cpu: 2, memMb: 5, gpu: 1, gpuMilli: 500 },
      { cpu: 2, memMb: 9, gpu: 1, gpuMilli: 500 },
      { cpu: 1, memMb: 0, gpu: 0 },
    ]);
    expect(cls.map((c) => [c.demand.gpuMilli, c.weight])).toEqual([
      [500, 2 / 3],
      [1000, 1 / 3],
    ]);
    expect(() => createPlacementPolicy('fgd')).toThrow(/classes/);
    expect(createPlacementPolicy('best_fit').name).toBe('best_fit');
  });

  it('scheduling policies place GPU tasks with the placement policy given', () => {
    const classes = workloadClasses([{ cpu: 1, memMb: 0, gpu: 1, gpuMilli: 300 }]);
    const d: Demand = { cpu: 1, memMb: 0, gpu: 1, gpuMilli: 300 };
    const nodes = [gpuWorker('a', [400]), gpuWorker('b', [600])];
    const fgd = createSchedulingPolicy('fifo', {
      placement: createPlacementPolicy('fgd', classes),
    });
    expect(fgd.pick([task('t', { demand: d })], nodes, 0)).toEqual([
      { taskId: 't', workerId: 'b', gpus: [0] },
    ]);
    // Two 0.3 tasks in one call share the 600 device: the call sees its own first placement.
    const out = fgd.pick(
      [task('t1', { demand: d }), task('t2', { demand: d })],
      [gpuWorker('b', [600])],
      0,
    );
    expect(out.map((a) => a.gpus)).toEqual([[0], [0]]);
  });
});

describe('srptWarmFirst (move-aware SRPT, simulator only)', () => {
  it('runs the jobs a free worker is already on first, then by least remaining work', () => {
    const tasks = [
      task('short', { jobRemainingWorkMs: 1_000 }),
      task('warm-long', { jobRemainingWorkMs: 9_000, jobFreeWorkers: 1 }),
      task('warm-mid', { jobRemainingWorkMs: 5_000, jobFreeWorkers: 2 }),
      task('mid', { jobRemainingWorkMs: 3_000 }),
      task('warm-long-less', { jobRemainingWorkMs: 8_999.95, jobFreeWorkers: 1 }),
    ];
    const order = srptWarmFirst()
      .pick(tasks, [worker('w', 8)], 0)
      .map((a) => a.taskId);
    expect(order).toEqual(['warm-mid', 'warm-long-less', 'warm-long', 'short', 'mid']);
    // Without the field (the live scheduler does not report it) it is SRPT.
    const plain = tasks.map(({ jobFreeWorkers: _, ...t }) => t);
    expect(
      srptWarmFirst()
        .pick(plain, [worker('w', 8)], 0)
        .map((a) => a.taskId),
    ).toEqual(['short', 'mid', 'warm-mid', 'warm-long-less', 'warm-long']);
  });

  it.each([
    [1e8, 0.5],
    [1e9, 10],
    [1e10, 1000],
  ])('keeps SRPT among warm and among cold jobs of %d ms remaining, %d ms apart', (x, d) => {
    // The longer job is older: a difference lost to rounding shows as FIFO order.
    for (const jobFreeWorkers of [1, 0]) {
      const longer = task('longer', { jobRemainingWorkMs: x + d, jobFreeWorkers, submittedAt: 0 });
      const shorter = task('shorter', { jobRemainingWorkMs: x, jobFreeWorkers, submittedAt: 1 });
      const [first] = srptWarmFirst().pick([longer, shorter], [worker('w', 1)], 0);
      expect(first?.taskId).toBe('shorter');
    }
    // And a warm job of any size goes before a cold one with nothing left.
    const warm = task('warm', { jobRemainingWorkMs: x, jobFreeWorkers: 1, submittedAt: 1 });
    const cold = task('cold', { jobRemainingWorkMs: 0, submittedAt: 0 });
    expect(srptWarmFirst().pick([cold, warm], [worker('w', 1)], 0)[0]?.taskId).toBe('warm');
  });
});
