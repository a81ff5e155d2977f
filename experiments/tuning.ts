// A tuning study: every tuner, for every seed, tunes the knobs on one training objective (the
// env objective averaged over fixed workload seeds, so all tuners, baselines and the grid
// oracle see the same deterministic function and the grid's best point is exact on it; it is
// the best of the grid, not of the space: tuners find better points between its levels). A run's
// value is the best configuration it found; that configuration is also scored on held-out
// workload seeds to show whether it generalises. Evaluations are memoised by configuration:
// the function is deterministic, so a memo hit changes nothing but the time.
import type { KnobObjective, Metrics } from '../envs/core/index.ts';
import type { KnobSpec, KnobValues } from '../knobs/index.ts';
import { tune, type ObjectiveSpec } from '../learners/core/index.ts';
import { GridSearch } from '../learners/tuners/index.ts';
import { addOracleGaps, deriveStudy } from './derived.ts';
import { logMetricObjective } from './objectives.ts';
import type { Reporter } from './progress.ts';
import {
  bestContender,
  better,
  mean,
  summarise,
  type EntryResult,
  type StudyResult,
} from './results.ts';
import { titleOf, type RunContext, type TuningStudySpec } from './spec.ts';

/** Most distinct configurations a study memoises (bounds memory on long runs). */
export const MAX_MEMO_ENTRIES = 100_000;

export interface StudyOptions {
  seeds: readonly number[];
  budget: number;
  ctx: RunContext;
  reporter: Reporter;
}

/** An objective averaged over fixed workload seeds and memoised per configuration. */
export interface FixedObjective {
  readonly objective: ObjectiveSpec;
  evaluate(values: KnobValues): Promise<Metrics>;
  /** As a KnobObjective for `tune` (which passes a seed per evaluation; it is ignored). */
  asKnobObjective(): KnobObjective;
}

/** `f` with its metric's log as the objective (logMetricObjective of its seeds' mean). */
export function onLogScale(f: FixedObjective): FixedObjective {
  const k = logMetricObjective(f.asKnobObjective());
  return {
    objective: k.objective,
    evaluate: (values) => k.evaluate(values, 0),
    asKnobObjective: () => k,
  };
}

function configKey(knobs: readonly KnobSpec[], values: KnobValues): string {
  return JSON.stringify(knobs.map((k) => values[k.name] ?? k.default));
}

/** The mean of every metric over the runs; a metric some run lacks is an error, not a 0. */
export function meanMetrics(runs: readonly Metrics[]): Metrics {
  const out: Metrics = {};
  const names = new Set(runs.flatMap((m) => Object.keys(m)));
  for (const name of names) {
    const v = mean(runs.map((m) => m[name] ?? Number.NaN));
    if (Number.isNaN(v)) {
      throw new RangeError(`the objective reported ${name} on some workload seeds, not on all`);
    }
    out[name] = v;
  }
  return out;
}

export function fixedObjective(
  inner: KnobObjective,
  workloadSeeds: readonly number[],
  onEvaluate: () => void = () => {},
): FixedObjective {
  if (workloadSeeds.length === 0) throw new RangeError('fixedObjective: needs workload seeds');
  const memo = new Map<string, Metrics>();
  const evaluate = async (values: KnobValues): Promise<Metrics> => {
    const key = configKey(inner.knobs, values);
    let m = memo.get(key);
    if (!m) {
      const runs: Metrics[] = [];
      for (const s of workloadSeeds) runs.push(await inner.evaluate(values, s));
      m = meanMetrics(runs);
      if (memo.size < MAX_MEMO_ENTRIES) memo.set(key, m);
    }
    onEvaluate();
    return m;
  };
  return {
    objective: inner.objective,
    evaluate,
    asKnobObjective: () => ({
      id: `${inner.id}@${workloadSeeds.join('+')}`,
      knobs: inner.knobs,
      objective: inner.objective,
      evaluate: (values) => evaluate(values),
    }),
  };
}

function valueOf(m: Metrics, metric: string, who: string): number {
  const v = m[metric];
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new RangeError(`${who}: the objective reported no finite ${metric}`);
  }
  return v;
}

/** The best-so-far trajectory of a run and its best evaluation (the first of equals). */
function bestSoFar(
  evals: readonly { values: KnobValues; value: number }[],
  direction: ObjectiveSpec['direction'],
): { trajectory: number[]; best: { values: KnobValues; value: number } } {
  const first = evals[0];
  if (!first) throw new RangeError('a tuner run made no evaluations');
  let best = first;
  const trajectory = evals.map((e) => {
    if (better(direction, e.value, best.value)) best = e;
    return best.value;
  });
  return { trajectory, best };
}

function describeDomain(k: KnobSpec): string {
  if (k.type === 'enum') return k.values.join(' | ');
  if (k.type === 'bool') return 'true | false';
  if (k.type === 'placement') return 'placement map';
  return `${k.min}..${k.max}${k.log ? ' (log)' : ''}${k.unit ? ` ${k.unit}` : ''}`;
}

/** The exhaustive grid in a fixed order; returns the best point (first of equals). */
async function gridOptimum(
  knobs: readonly KnobSpec[],
  objective: ObjectiveSpec,
  pointsPerNumeric: number,
  train: FixedObjective,
): Promise<{ values: KnobValues; value: number; points: number }> {
  const grid = new GridSearch({ knobs, objective, seed: 0, pointsPerNumeric, shuffle: false });
  let best: { values: KnobValues; value: number } | undefined;
  while (!grid.exhausted()) {
    const { values } = await grid.propose();
    const value = valueOf(await train.evaluate(values), objective.metric, 'grid oracle');
    grid.observe({ values, value, seed: 0 });
    if (!best || better(objective.direction, value, best.value)) best = { values, value };
  }
  if (!best) throw new RangeError('grid oracle: the grid is empty');
  return { ...best, points: grid.size };
}

function gridSize(knobs: readonly KnobSpec[], objective: ObjectiveSpec, p: number): number {
  return new GridSearch({ knobs, objective, seed: 0, pointsPerNumeric: p }).size;
}

export async function runTuningStudy<W>(
  spec: TuningStudySpec<W>,
  w: W,
  opts: StudyOptions,
): Promise<StudyResult> {
  const { seeds, budget, ctx, reporter } = opts;
  const inner = spec.objective(w, ctx);
  const space = spec.space?.(inner) ?? inner.knobs;
  const objective = inner.objective;
  const { metric, direction } = objective;
  // A quick run scores on one held-out seed: it checks the plumbing, not generalisation.
  const testSeeds = (spec.testSeeds ?? []).slice(0, ctx.quick ? 1 : undefined);
  const pGrid = spec.oracle
    ? ctx.quick
      ? spec.oracle.quickPointsPerNumeric
      : spec.oracle.pointsPerNumeric
    : 0;
  const total =
    (spec.oracle ? gridSize(space, objective, pGrid) : 0) +
    spec.baselines.length +
    spec.learners.length * seeds.length * budget;
  reporter.progress.start(spec.name, total);
  let detail = '';
  // What the tuners optimise; every entry is still scored on `metric` itself. On the log
  // scale, the log of the mean over the training seeds (the mean of the logs, a geometric
  // mean, can rank two configurations the other way round from the metric scored).
  const averaged = fixedObjective(inner, spec.trainSeeds, () => reporter.progress.tick(1, detail));
  const train = spec.tunerScale === 'log' ? onLogScale(averaged) : averaged;
  const test = fixedObjective(inner, testSeeds.length > 0 ? testSeeds : spec.trainSeeds);
  const testScore = async (values: KnobValues): Promise<number> =>
    valueOf(await test.evaluate(values), metric, 'held-out evaluation');
  const entries: EntryResult[] = [];
  const t0 = performance.now();

  if (spec.oracle) {
    detail = 'grid oracle';
    const o = await gridOptimum(space, objective, pGrid, train);
    const t = testSeeds.length > 0 ? await testScore(o.values) : undefined;
    entries.push({
      name: 'grid-optimum',
      kind: 'oracle',
      ...summarise(
        seeds,
        seeds.map(() => o.value),
      ),
      configs: [o.values],
      evaluations: o.points,
      ...(t === undefined
        ? {}
        : {
            test: summarise(
              seeds,
              seeds.map(() => t),
            ),
          }),
    });
    reporter.log.info({ study: spec.name, oracle: o.value, points: o.points }, 'grid optimum');
  }

  for (const b of spec.baselines) {
    detail = b.name;
    const value = valueOf(await train.evaluate(b.values), metric, `baseline ${b.name}`);
    const t = testSeeds.length > 0 ? await testScore(b.values) : undefined;
    entries.push({
      name: b.name,
      kind: 'baseline',
      ...summarise(
        seeds,
        seeds.map(() => value),
      ),
      configs: [b.values],
      ...(t === undefined
        ? {}
        : {
            test: summarise(
              seeds,
              seeds.map(() => t),
            ),
          }),
    });
  }

  for (const l of spec.learners) {
    const values: number[] = [];
    let spent = 0;
    const trajectories: number[][] = [];
    const configs: KnobValues[] = [];
    const tests: number[] = [];
    for (const seed of seeds) {
      detail = `${l.name} seed ${seed}`;
      const tuner = l.make({ knobs: space, objective: train.objective, seed });
      const r = await tune(tuner, train.asKnobObjective(), budget, seed);
      // A finite grid may stop early; the bar still counts the budget it was given.
      reporter.progress.tick(budget - r.evaluations.length, detail);
      // The run's answer is the configuration with the best value it observed; the objective
      // is deterministic, so that value is exact (no winner's curse from noise).
      const run = bestSoFar(
        r.evaluations.map((e) => ({ values: e.values, value: valueOf(e.metrics, metric, l.name) })),
        direction,
      );
      spent = Math.max(spent, r.evaluations.length);
      values.push(run.best.value);
      trajectories.push(run.trajectory);
      configs.push(run.best.values);
      if (testSeeds.length > 0) tests.push(await testScore(run.best.values));
    }
    entries.push({
      name: l.name,
      kind: 'learner',
      ...summarise(seeds, values),
      trajectories,
      configs,
      // What the runs spent: a finite grid stops after its points, short of the budget.
      evaluations: spent,
      ...(testSeeds.length > 0 ? { test: summarise(seeds, tests) } : {}),
    });
    reporter.log.info(
      { study: spec.name, learner: l.name, mean: mean(values) },
      'learner finished',
    );
  }
  reporter.progress.done();
  reporter.log.info(
    { study: spec.name, elapsed_s: Math.round((performance.now() - t0) / 100) / 10 },
    'study finished',
  );

  const oracle = spec.oracle ? 'grid-optimum' : undefined;
  addOracleGaps(entries, direction, oracle);
  const derived = deriveStudy(
    { type: 'tuning', results: entries, direction, oracle, budget },
    spec.comparisons,
  );
  return {
    name: spec.name,
    title: titleOf(spec.title, ctx),
    type: 'tuning',
    metric,
    direction,
    ...(spec.unit ? { unit: spec.unit } : {}),
    ...(spec.note ? { note: spec.note } : {}),
    results: entries,
    best: bestContender(entries, direction),
    ...(oracle ? { oracle } : {}),
    ...derived,
    budget,
    tuner_scale: spec.tunerScale ?? 'linear',
    space: space.map((k) => ({ name: k.name, domain: describeDomain(k) })),
    train_seeds: [...spec.trainSeeds],
    test_seeds: [...testSeeds],
  };
}
