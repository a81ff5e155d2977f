// The learned scheduler: its plain-TS forward pass equals the TF.js one, an artifact saved and
// loaded decides identically, the policy only ever makes legal picks in the simulator, the
// committed artifact beats FIFO on held-out TPC-H workloads, and the pieces of training
// (cloning, the input-driven advantage, the PPO step) do what they claim.
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createRng } from '../envs/core/index.ts';
import {
  SchedulerEnv,
  createSim,
  schedulerObjective,
  syntheticWorkload,
  uniformWorkers,
} from '../envs/scheduler/index.ts';
import {
  TASK_FEATURES,
  createSchedulingPolicy,
  TASK_FEATURE_NAMES,
  type TaskView,
  type WorkerView,
} from '../policies/scheduling/index.ts';
import { ArtifactError } from '../learners/core/index.ts';
import { trainOutputs } from '../learners/core/script.ts';
import {
  DecisionReservoir,
  ScorerModel,
  TASK_SCORER_KIND,
  behaviourCloning,
  chooserActor,
  costToGo,
  checkScorerArtifact,
  compileScoreNet,
  inputDrivenAdvantages,
  jobRepresentatives,
  linearNet,
  loadTaskScorerArtifact,
  packDecisions,
  policyFromArtifact,
  returnAt,
  returnsToGo,
  runPolicy,
  schedulerTrainConfig,
  scorerArtifact,
  searchLinear,
  sharedTpchDags,
  taskScorerPolicy,
  teacher,
  teacherChooser,
  tpchScenario,
  trainScheduler,
  worldConfig,
  type Decision,
} from '../learners/scheduling/index.ts';
import { loadTfBackend, tf } from '../learners/tf/index.ts';

const randomRows = (n: number, d: number, seed: number): Float32Array => {
  const rng = createRng(seed);
  return Float32Array.from({ length: n * d }, () => rng.uniform(-1, 4));
};

/** Small synthetic DAG workloads (1- and 2-core tasks on 4-core workers): no trace to read. */
const synthetic = (seed: number) => {
  const workers = uniformWorkers(4, { cpu: 4, memMb: 16_384, gpu: 0 });
  return { workload: syntheticWorkload({ jobs: 12, workers, seed, load: 0.9 }), workers };
};

async function randomModel(seed: number): Promise<ScorerModel> {
  await loadTfBackend();
  const m = new ScorerModel(
    { inputSize: TASK_FEATURES, hiddenSizes: [16, 8], activation: 'tanh' },
    seed,
  );
  // Larger output weights than the near-uniform init, so scores differ visibly.
  m.params.forEach((p) => p.assign(tf.mul(p, 30)));
  m.setNormaliser(
    Array.from({ length: TASK_FEATURES }, (_, i) => 0.1 * i),
    Array.from({ length: TASK_FEATURES }, (_, i) => 0.5 + 0.1 * i),
  );
  return m;
}

describe('score net', () => {
  it('the plain-TS forward pass equals the TF.js forward pass on random rows', async () => {
    for (const activation of ['tanh', 'relu'] as const) {
      await loadTfBackend();
      const m = new ScorerModel({ inputSize: TASK_FEATURES, hiddenSizes: [16, 8], activation }, 7);
      m.params.forEach((p) => p.assign(tf.mul(p, 30)));
      m.setNormaliser(Array(TASK_FEATURES).fill(0.5), Array(TASK_FEATURES).fill(2));
      const rows = randomRows(200, TASK_FEATURES, 3);
      const want = tf.tidy(() =>
        Array.from(m.scores(tf.tensor2d(rows, [200, TASK_FEATURES])).dataSync()),
      );
      const score = compileScoreNet(m.toNet());
      const got = Array.from({ length: 200 }, (_, i) => score(rows, i * TASK_FEATURES));
      const scale = Math.max(...want.map(Math.abs));
      expect(scale).toBeGreaterThan(0.1);
      got.forEach((g, i) => expect(Math.abs(g - (want[i] as number))).toBeLessThan(1e-4 * scale));
      m.dispose();
    }
  });

  it('setting the skip path, a linear scorer or a whole net leaks no tensor', async () => {
    await loadTfBackend();
    const spec = { inputSize: TASK_FEATURES, hiddenSizes: [8], activation: 'relu' as const };
    const [m, other] = [new ScorerModel(spec, 1), new ScorerModel(spec, 2)];
    const net = other.toNet();
    const before = tf.memory().numTensors;
    m.setSkip(Array.from({ length: TASK_FEATURES }, (_, i) => i));
    m.setLinear(Array(TASK_FEATURES).fill(1));
    m.fromNet(net);
    expect(tf.memory().numTensors).toBe(before);
    expect(m.toNet().skip).toEqual(net.skip);
    [m, other].forEach((x) => x.dispose());
  });

  it('rejects nets of the wrong shape or with non-finite weights, naming the field', async () => {
    const m = await randomModel(1);
    const net = m.toNet();
    m.dispose();
    expect(() => compileScoreNet({ ...net, inputStd: net.inputStd.map(() => 0) })).toThrow(
      /inputStd must be at least 0.000001/,
    );
    // Positive but tiny: its inverse is Infinity, and a feature at its mean scored NaN (an
    // artifact the registry took, whose every evaluation then failed with a 500).
    expect(() => compileScoreNet({ ...net, inputStd: net.inputStd.map(() => 5e-324) })).toThrow(
      /inputStd must be at least 0.000001/,
    );
    const bad = { ...net, weights: net.weights.map((w, i) => (i === 0 ? w.slice(1) : w)) };
    expect(() => compileScoreNet(bad)).toThrow(/weights\[0\]/);
  });
});

/** Every module `file` loads at run time (type-only imports are erased), relative or bare. */
function runtimeImports(file: string, seen = new Set<string>()): Set<string> {
  if (seen.has(file)) return seen;
  seen.add(file);
  const text = readFileSync(file, 'utf8');
  for (const m of text.matchAll(/^(?:import|export)\s+(?!type\s)[^'";]*?from\s+'([^']+)'/gm)) {
    const spec = m[1] as string;
    if (spec.startsWith('.')) runtimeImports(resolve(dirname(file), spec), seen);
    else seen.add(spec);
  }
  return seen;
}

describe('the deciding path', () => {
  it('policy.ts loads no TF.js, directly or through its imports', () => {
    const all = [
      ...runtimeImports(resolve(import.meta.dirname, '../learners/scheduling/policy.ts')),
    ];
    expect(all.some((f) => f.endsWith('policies/scheduling/index.ts'))).toBe(true);
    expect(all.filter((f) => f.includes('tensorflow') || f.endsWith('tf/backend.ts'))).toEqual([]);
  });
});

describe('artifact', () => {
  it('save then load gives identical decisions in the simulator', async () => {
    const m = await randomModel(2);
    const a = scorerArtifact(TASK_SCORER_KIND, TASK_FEATURE_NAMES, m.toNet(), { seed: 2 });
    m.dispose();
    const loaded = JSON.parse(JSON.stringify(a)) as unknown;
    const picks = (policy: ReturnType<typeof taskScorerPolicy>) => {
      const out: string[] = [];
      const { workload, workers } = synthetic(11);
      createSim(workload, { workers }).run((r, f, now) => {
        const as = policy.pick(r, f, now);
        out.push(as.map((x) => `${x.taskId}@${x.workerId}`).join(','));
        return as;
      });
      return out;
    };
    const before = picks(taskScorerPolicy(a.state.net));
    expect(before.length).toBeGreaterThan(50);
    expect(picks(policyFromArtifact(loaded))).toEqual(before);
  });

  it('refuses another kind, another feature layout, or a broken net', async () => {
    const m = await randomModel(3);
    const a = scorerArtifact(TASK_SCORER_KIND, TASK_FEATURE_NAMES, m.toNet(), {});
    m.dispose();
    expect(() =>
      checkScorerArtifact({ ...a, kind: 'x' }, TASK_SCORER_KIND, TASK_FEATURE_NAMES),
    ).toThrow(ArtifactError);
    const renamed = {
      ...a,
      state: { ...a.state, featureNames: [...TASK_FEATURE_NAMES].reverse() },
    };
    expect(() => policyFromArtifact(renamed)).toThrow(/featureNames|reads features/);
    const broken = { ...a, state: { ...a.state, net: { ...a.state.net, weights: [] } } };
    expect(() => policyFromArtifact(broken)).toThrow(ArtifactError);
  });
});

describe('the committed trained policy', () => {
  const trained = () => loadTaskScorerArtifact();
  // TPC-H as in training, shorter; seeds 1 and 2 were never trained on (training used 100000+).

  it('picks only runnable tasks on free workers with room, and finishes every job', () => {
    const policy = taskScorerPolicy(trained().state.net);
    const { workload, workers } = synthetic(3);
    const sim = createSim(workload, { workers });
    const bad: string[] = [];
    let assigned = 0;
    sim.run((runnable: readonly TaskView[], free: readonly WorkerView[], now: number) => {
      const as = policy.pick(runnable, free, now);
      const ids = new Map(runnable.map((t) => [t.id, t]));
      const left = new Map(free.map((w) => [w.id, w.free.cpu]));
      for (const a of as) {
        const t = ids.get(a.taskId);
        const room = left.get(a.workerId);
        if (!t || room === undefined || room < t.demand.cpu) bad.push(`${a.taskId}@${a.workerId}`);
        else left.set(a.workerId, room - t.demand.cpu);
        ids.delete(a.taskId); // twice is illegal too
      }
      assigned += as.length;
      return as;
    });
    expect(bad).toEqual([]);
    expect(assigned).toBeGreaterThan(100);
    expect(sim.jobs.every((j) => j.endMs >= 0 && !j.failed)).toBe(true);
  });

  it('beats FIFO on two held-out workloads (mean JCT)', () => {
    const scenario = tpchScenario(sharedTpchDags(), { jobs: 15, workers: 25, load: 0.85 });
    for (const seed of [1, 2]) {
      const learned = runPolicy(taskScorerPolicy(trained().state.net), scenario, seed);
      const fifo = runPolicy(createSchedulingPolicy('fifo'), scenario, seed);
      // Measured: 0.70 and 0.72 of FIFO's mean JCT (SRPT-like); 0.85 leaves room.
      expect(learned['mean_jct_s'] as number).toBeLessThan(0.85 * (fifo['mean_jct_s'] as number));
    }
  });
});

describe('evaluation worlds', () => {
  it("the 'objective' world scores a heuristic exactly as the scheduler knob objective does", async () => {
    const scenario = synthetic;
    const viaObjective = await schedulerObjective({ scenario }).evaluate(
      { 'scheduler.policy': 'srpt' },
      5,
    );
    const mine = runPolicy(createSchedulingPolicy('srpt'), scenario, 5, 'objective');
    expect(mine).toEqual(viaObjective);
    expect(worldConfig('clean', 5)).toEqual({ seed: 5 });
  });

  it("the 'moving' world is the clean one with Decima's moving delay; training refuses others", () => {
    expect(worldConfig('moving', 5)).toEqual({ seed: 5, moveDelayMs: 2_000 });
    expect(schedulerTrainConfig({ world: 'moving' }).world).toBe('moving');
    expect(() => schedulerTrainConfig({ world: 'mars' as never })).toThrow(/world/);
  });
});

describe('training pieces', () => {
  it('returns to go are discounted in simulated time and interpolated between decisions', () => {
    const trace = {
      timesMs: Float64Array.from([0, 1000, 3000]),
      rewards: Float64Array.from([-1, -2, -4]),
    };
    expect(Array.from(returnsToGo(trace, null))).toEqual([-7, -6, -4]);
    const g = returnsToGo(trace, 1000);
    expect(g[1]).toBeCloseTo(-2 - 4 * Math.exp(-2), 12);
    expect(g[0]).toBeCloseTo(-1 + Math.exp(-1) * (g[1] as number), 12);
    const plain = returnsToGo(trace, null);
    expect(returnAt(trace, plain, 2000)).toBeCloseTo(-5, 12);
    expect(returnAt(trace, plain, -5)).toBe(-7);
    expect(returnAt(trace, plain, 9999)).toBe(-4);
  });

  it("the input-driven baseline is the other rollouts' return at the same time", () => {
    const a = { timesMs: Float64Array.from([0, 10]), rewards: Float64Array.from([-1, -1]) };
    const b = { timesMs: Float64Array.from([0, 10]), rewards: Float64Array.from([-3, -1]) };
    const [adA, adB] = inputDrivenAdvantages([a, b], [[0, 1], [0]], null);
    expect(Array.from(adA as Float32Array)).toEqual([-2 - -4, 0]);
    expect(Array.from(adB as Float32Array)).toEqual([-4 - -2]);
  });

  it('behaviour cloning learns a heuristic teacher on synthetic windows', async () => {
    await loadTfBackend();
    const rng = createRng(9);
    const label = teacher('srpt');
    const ds: Decision[] = Array.from({ length: 300 }, (_, i) => {
      const count = 2 + rng.int(6);
      const rows = randomRows(count, TASK_FEATURES, 100 + i);
      const targets = new Uint8Array(count);
      label(rows, count, targets);
      return { rows, count, action: targets.indexOf(1), logProb: 0, step: i, targets };
    });
    const m = new ScorerModel(
      { inputSize: TASK_FEATURES, hiddenSizes: [16], activation: 'tanh' },
      4,
    );
    const opt = tf.train.adam(1e-2);
    const stats = behaviourCloning(m, opt, packDecisions(ds, TASK_FEATURES), {
      epochs: 20,
      minibatchSize: 100,
      maxGradNorm: null,
      rng: createRng(1),
    });
    expect(stats.agreement).toBeGreaterThan(0.95);
    opt.dispose();
    m.dispose();
  });

  it('the reservoir keeps a bounded uniform sample', () => {
    const hits = new Array<number>(10).fill(0);
    for (let rep = 0; rep < 40; rep++) {
      const res = new DecisionReservoir(50, createRng(rep));
      for (let i = 0; i < 500; i++) {
        const slot = res.admit();
        if (slot >= 0)
          res.put(slot, { rows: new Float32Array(0), count: 0, action: 0, logProb: 0, step: i });
      }
      expect(res.kept.length).toBe(50);
      for (const d of res.kept) hits[Math.floor(d.step / 50)]! += 1;
    }
    // Each tenth of the stream holds ~1/10 of the kept sample (200 of 2000), early or late.
    for (const h of hits) expect(Math.abs(h - 200)).toBeLessThan(70);
  });
});

describe('search over the linear path', () => {
  it('a linear net scores a row by its weights on the standardised features alone', async () => {
    const m = await randomModel(1);
    const base = m.toNet();
    m.dispose();
    const w = Array.from({ length: TASK_FEATURES }, (_, i) => (i % 3) - 1);
    const score = compileScoreNet(linearNet(base, w));
    const row = randomRows(1, TASK_FEATURES, 5);
    const want = w.reduce(
      (s, wi, i) =>
        s +
        (wi * ((row[i] as number) - (base.inputMean[i] as number))) / (base.inputStd[i] as number),
      0,
    );
    expect(score(row)).toBeCloseTo(want, 6);
  });

  it('setLinear makes the model exactly that linear scorer (its MLP output zeroed)', async () => {
    const m = await randomModel(3);
    const w = Array.from({ length: TASK_FEATURES }, (_, i) => i / 10 - 0.5);
    m.setLinear(w);
    const net = m.toNet();
    const rows = randomRows(20, TASK_FEATURES, 8);
    const full = compileScoreNet(net);
    const lin = compileScoreNet(linearNet(net, w));
    for (let i = 0; i < 20; i++) {
      expect(full(rows, i * TASK_FEATURES)).toBeCloseTo(lin(rows, i * TASK_FEATURES), 5);
    }
    m.dispose();
  });

  it('a net whose output layer is zero scores as its MLP path would (the linear shortcut)', async () => {
    const m = await randomModel(4);
    m.setLinear(Array.from({ length: TASK_FEATURES }, (_, i) => 0.3 - i / 20));
    const net = m.toNet();
    m.dispose();
    const last = net.weights.length - 1;
    const zeroOut = { ...net, weights: net.weights.map((w, k) => (k === last ? [0.7] : w)) };
    // A tiny weight keeps the full MLP path, whose output then differs by ~1e-300.
    const outW = net.weights[last - 1] as number[];
    const fullPath = {
      ...zeroOut,
      weights: zeroOut.weights.map((w, k) =>
        k === last - 1 ? outW.map((_, j) => (j ? 0 : 1e-300)) : w,
      ),
    };
    const rows = randomRows(20, TASK_FEATURES, 9);
    const [fast, full] = [compileScoreNet(zeroOut), compileScoreNet(fullPath)];
    for (let i = 0; i < 20; i++) {
      expect(fast(rows, i * TASK_FEATURES)).toBeCloseTo(full(rows, i * TASK_FEATURES), 12);
    }
    expect(fast(rows)).not.toBeCloseTo(
      compileScoreNet({ ...zeroOut, weights: net.weights })(rows),
      3,
    );
  });

  it('the cross-entropy search moves to the least cost, seeded', async () => {
    const target = [2, -1, 0.5];
    const cost = (w: number[]) => w.reduce((s, x, i) => s + (x - (target[i] as number)) ** 2, 0);
    let next = 0;
    const run = () =>
      searchLinear(
        {
          generations: 25,
          population: 16,
          seedsPerGeneration: 1,
          centre: [0, 0, 0],
          radius: 4,
          seed: 3,
        },
        (w) => cost(w),
        (n) => Array.from({ length: n }, () => next++),
      );
    const a = await run();
    expect(cost(a.skip)).toBeLessThan(0.05);
    expect(cost([0, 0, 0])).toBeGreaterThan(5);
    expect(a.generations).toHaveLength(25);
    expect(a.generations[24]!.mean).toBeLessThan(a.generations[0]!.mean);
    expect((await run()).skip).toEqual(a.skip);
    // A pinned weight (a feature that never varied) stays at the centre's value.
    const pinned = await searchLinear(
      {
        generations: 5,
        population: 8,
        seedsPerGeneration: 1,
        centre: [0, 0.25, 0],
        radius: 4,
        seed: 3,
        pinned: [false, true, false],
      },
      (w) => cost(w),
      (n) => Array.from({ length: n }, () => next++),
    );
    expect(pinned.skip[1]).toBe(0.25);
    expect(pinned.skip[0]).not.toBe(0);
  });

  it('refuses a search without a teacher to centre it on, naming the field', () => {
    expect(() => schedulerTrainConfig({ teacher: null, searchGenerations: 2 })).toThrow(
      /searchGenerations must be 0 without a teacher/,
    );
    expect(() => schedulerTrainConfig({ searchPopulation: 1 })).toThrow(/searchPopulation/);
    expect(() => schedulerTrainConfig({ keepTeacher: 1 as never })).toThrow(/keepTeacher/);
  });
});

describe('training with the search', () => {
  /** One round of cloning on a 6-job episode, no PPO, one 6-job validation workload. */
  const TINY = {
    jobs: 6,
    bcRounds: 1,
    bcEpisodesPerRound: 1,
    decisionsPerEpisode: 200,
    bcEpochs: 1,
    ppoIterations: 0,
    validationSeeds: [200_001],
    validationJobs: 6,
  };

  it('clones, searches the linear path, validates its answer and keeps the better net', async () => {
    const r = await trainScheduler({
      ...TINY,
      world: 'moving',
      searchGenerations: 2,
      searchPopulation: 4,
      searchSeeds: 1,
      searchJobs: 6,
    });
    expect(r.search.map((g) => g.generation)).toEqual([1, 2]);
    expect(r.validation.map((v) => v.after)).toEqual(['bc', 'criterion', 'search']);
    // The teacher's criterion as a linear net is the teacher (SRPT) on validation, exactly.
    expect(r.validation[1]!.cost).toBe(r.teacherValidation);
    // Model selection kept the best of them (setLinear's own test shows the search's net is
    // exactly its linear policy).
    const best = Math.min(...r.validation.map((v) => v.cost));
    expect(r.best.cost).toBe(best);
    expect(r.episodes).toBe(1 + 2 * 4 * 1);
  });

  it('without keepTeacher, the teacher is not a candidate', async () => {
    const r = await trainScheduler({ ...TINY, keepTeacher: false });
    expect(r.validation.map((v) => v.after)).toEqual(['bc']);
    expect(r.best.after).toBe('bc');
  });
});

describe('cost-to-go on a fork', () => {
  it("prices each job's task under SRPT's continuation, and leaves the env as it was", () => {
    // One worker, moves cost 1 s. W: 1 s, then 3 s; S (arrives at 0.5 s): 2 s. At 2 s the worker
    // is on W; SRPT picks S (2 s left against W's 3 s) and moves twice: S ends at 5 s, W at 9 s
    // (10 job-s from 2 s on). Staying on W: W ends at 5 s, S at 8 s (9 job-s).
    const cpu = { cpu: 1, memMb: 0, gpu: 0 };
    const stage = (ms: number[], parents: number[] = []) => ({
      numTasks: ms.length,
      parents,
      demand: cpu,
      durationsMs: ms,
    });
    const job = (id: string, arrivalMs: number, stages: ReturnType<typeof stage>[]) => ({
      id,
      arrivalMs,
      tenant: 't',
      priority: 0,
      stages,
    });
    const workload = {
      name: 'warm',
      jobs: [job('W', 0, [stage([1_000]), stage([3_000], [0])]), job('S', 500, [stage([2_000])])],
    };
    const env = new SchedulerEnv({
      window: 4,
      scenario: () => ({ workload, workers: uniformWorkers(1, { cpu: 1, memMb: 1_024, gpu: 0 }) }),
      config: { moveDelayMs: 1_000 },
    });
    let { obs, info } = env.reset({ seed: 1 });
    ({ obs, info } = env.step(0)); // W's first task, the only candidate
    expect(info['nowMs']).toBe(2_000);
    const ids = info['candidates'] as string[];
    const [w, s] = [ids.findIndex((id) => id.startsWith('W')), ids.indexOf('S/0/0')];
    const srpt = chooserActor(teacherChooser('srpt', 4));
    expect(srpt(obs, 2).action).toBe(s);
    expect(costToGo(env, 2_000, s, srpt, null)).toBeCloseTo(10, 9);
    expect(costToGo(env, 2_000, w, srpt, null)).toBeCloseTo(9, 9);
    expect(jobRepresentatives(obs, 2).sort()).toEqual([0, 1]);
    // The env itself is still at the decision: SRPT's choice from here costs the 10 job-s.
    let cost = 0;
    for (let r = env.step(s); ; r = env.step(srpt(r.obs, 1).action)) {
      cost -= r.reward;
      if (r.terminated) break;
    }
    expect(cost).toBeCloseTo(10, 9);
  });
});

describe('training script outputs', () => {
  const committed = {
    artifact: 'learners/scheduling/trained/x.json',
    results: 'experiments/results/x',
  };
  const scratch = (name: string) => join(tmpdir(), 'knobos-train', name);

  it('writes the committed paths only for the reference run (seed 1, full size)', () => {
    expect(trainOutputs({ seed: '1' }, committed, 'w')).toEqual(committed);
    // A smoke run or a seed study goes to the temp directory, never over the committed policy.
    expect(trainOutputs({ seed: '1', quick: true }, committed, 'w')).toEqual({
      artifact: join(scratch('w-seed1-quick'), 'x.json'),
      results: scratch('w-seed1-quick'),
    });
    expect(trainOutputs({ seed: '2' }, committed, 'w')).toEqual({
      artifact: join(scratch('w-seed2'), 'x.json'),
      results: scratch('w-seed2'),
    });
    // --eval-only reads the committed artifact; a quick evaluation still writes elsewhere.
    expect(trainOutputs({ seed: '1', quick: true, 'eval-only': true }, committed, 'w')).toEqual({
      artifact: committed.artifact,
      results: scratch('w-seed1-quick'),
    });
    // Flags win.
    expect(trainOutputs({ seed: '2', artifact: 'a.json', results: 'out' }, committed, 'w')).toEqual(
      { artifact: 'a.json', results: 'out' },
    );
  });
});
