// The one runner: loads the experiment's workload (its default trace, or the one given), then
// runs every study of the spec for every seed, and returns plain JSON. Seeds are 1..N, every
// random choice below derives from them, and nothing reads the clock into the result, so the
// same options give the same result (result.json adds the date and machine beside it).
import { resolve } from 'node:path';
import { runComparisonStudy } from './compare.ts';
import { silentReporter, type Reporter } from './progress.ts';
import type { ExperimentResult, StudyResult } from './results.ts';
import {
  titleOf,
  type ExperimentSpec,
  type LoadedTrace,
  type RunContext,
  type TraceSource,
} from './spec.ts';
import { runTuningStudy } from './tuning.ts';
import { TraceOptionError, loadTrace, specPath } from './workloads.ts';

/** Offered load a jobs trace is replayed at unless the run says otherwise. */
export const DEFAULT_JOBS_LOAD = 0.85;
/** Bounds on what a run may ask for (every loop is bounded). */
export const MAX_SEEDS = 100;
export const MAX_BUDGET = 10_000;

export interface RunOptions {
  /** Number of seeds (1..N); default the spec's. */
  seeds?: number;
  /** Evaluations per tuner run; default the spec's. */
  budget?: number;
  /** Fewer seeds, a smaller budget and a small slice of the workload: seconds, for tests. */
  quick?: boolean;
  /** A trace to run on instead of the spec's default; a relative path is from the cwd. */
  trace?: TraceSource;
  /** Offered load a jobs trace is replayed at (default 0.85). */
  load?: number;
  reporter?: Reporter;
}

function checkCount(field: string, v: number, max: number): number {
  if (!Number.isInteger(v) || v < 1 || v > max) {
    throw new TraceOptionError(field, `--${field} must be an integer in 1..${max}, got ${v}`);
  }
  return v;
}

const seedList = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);

async function loadWorkload<W>(
  spec: ExperimentSpec<W>,
  opts: RunOptions,
  ctx: RunContext,
): Promise<{ w: W; trace?: TraceSource; jobs: boolean }> {
  const kind = spec.workload.accepts ?? spec.workload.kind;
  let loaded: LoadedTrace | undefined;
  if (opts.trace) {
    if (kind === 'generated') {
      throw new TraceOptionError('trace', `experiment ${spec.name} takes no trace`);
    }
    loaded = await loadTrace(kind, opts.trace, resolve(opts.trace.path), ctx);
  } else if (spec.workload.default && kind !== 'generated') {
    const d = spec.workload.default;
    loaded = await loadTrace(kind, d, specPath(d.path), ctx);
  }
  const w = await spec.workload.load(loaded, ctx);
  return { w, ...(loaded ? { trace: loaded.source } : {}), jobs: loaded?.kind === 'jobs' };
}

export async function runExperiment<W>(
  spec: ExperimentSpec<W>,
  opts: RunOptions = {},
): Promise<ExperimentResult> {
  const quick = opts.quick ?? false;
  const base = quick ? spec.quick : spec.defaults;
  const nSeeds = checkCount('seeds', opts.seeds ?? base.seeds, MAX_SEEDS);
  const budget = checkCount('budget', opts.budget ?? base.budget, MAX_BUDGET);
  const load = opts.load ?? DEFAULT_JOBS_LOAD;
  if (!(load > 0 && load < 10)) {
    throw new TraceOptionError('load', `--load must be a number in (0, 10), got ${load}`);
  }
  const reporter = opts.reporter ?? silentReporter();
  const ctx: RunContext = { quick, load };
  const seeds = seedList(nSeeds);
  reporter.log.info(
    { experiment: spec.name, seeds: nSeeds, budget, quick, trace: opts.trace ?? null },
    'experiment started',
  );
  const { w, trace, jobs } = await loadWorkload(spec, opts, ctx);
  const studies: StudyResult[] = [];
  for (const s of spec.studies) {
    studies.push(
      s.type === 'tuning'
        ? await runTuningStudy(s, w, { seeds, budget, ctx, reporter })
        : await runComparisonStudy(s, w, {
            ...(s.seeds && !quick && opts.seeds === undefined
              ? { seeds: seedList(checkCount('seeds', s.seeds, MAX_SEEDS)), ownSeeds: true }
              : { seeds }),
            ctx,
            reporter,
          }),
    );
  }
  const head = studies[0];
  if (!head) throw new RangeError(`experiment ${spec.name} has no studies`);
  return {
    experiment: spec.name,
    title: titleOf(spec.title, ctx),
    workload: { ...(trace ? { trace } : {}), description: spec.workload.description },
    quick,
    seeds,
    ...(spec.studies.some((s) => s.type === 'tuning') ? { budget } : {}),
    // Only a jobs trace is replayed at a load; another workload's result does not depend on it.
    ...(jobs ? { load } : {}),
    metric: head.metric,
    direction: head.direction,
    results: head.results,
    best: head.best,
    studies,
  };
}
