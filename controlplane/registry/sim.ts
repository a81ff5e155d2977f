// Judging a scheduling policy version in the simulator (envs/scheduler) on TPC-H query DAGs
// (Decima's traces) at a target offered load, over a few seeds:
//   evaluate: the candidate, the live policy and the heuristics each run the same workloads;
//             the report ranks them by mean job completion time and gives a verdict against
//             the live policy.
//   shadow:   the live policy runs and acts; at every one of its decisions the candidate is
//             asked too and never acts. The report has the decision divergence and the
//             predicted outcome (the candidate's own runs against the live policy's).
// Pure CPU work with no Redis: the evaluator runs it in a worker thread (evaluator.ts).
import { loadTpchDags, tpchWorkloadFrom, type TpchDag } from '../../envs/loaders/jobs-tpch.ts';
import {
  simulate,
  createSim,
  summarise as summariseRun,
  uniformWorkers,
  type WorkerSpec,
} from '../../envs/scheduler/index.ts';
import type { Metrics } from '../../envs/core/index.ts';
import { SCHEDULING_POLICY_NAMES } from '../../policies/scheduling/names.ts';
import { KnobosError } from '../store/errors.ts';
import type { SchedulingPolicy } from '../../policies/scheduling/index.ts';
import { RegistryInputError, RegistryUnsupportedError } from './errors.ts';
import type { PolicyArtifact } from './model.ts';
import { schedulingPolicyOf } from './policy-factory.ts';

/**
 * The artifact's policy, whose failure to decide is the artifact's (422, rule `decides`), not
 * the server's: a learned scorer with huge finite weights passes registration, then scores NaN
 * on the first task, and every evaluation answered 500 internal.
 */
function policyOf(a: NamedArtifact): SchedulingPolicy {
  const p = schedulingPolicyOf(a.artifact, a.name);
  const own = Object.create(p) as SchedulingPolicy;
  own.pick = (runnable, free, now) => {
    try {
      return p.pick(runnable, free, now);
    } catch (err) {
      if (err instanceof KnobosError) throw err;
      throw new RegistryUnsupportedError(
        `policy ${a.name} cannot decide: ${(err as Error).message}`,
        { policy: a.name, rule: 'decides' },
      );
    }
  };
  return own;
}

/** The TPC-H trace files (../shared/traces/jobs by default; tests pass small ones). */
export interface TraceFiles {
  stagesFile?: string;
  durationsFile?: string;
}

export interface EvalSpec {
  seeds: number[];
  jobs: number;
  workers: number;
  /** Offered load on the workers' cores. */
  load: number;
  /** Heuristics run beside the candidate. */
  heuristics: string[];
}

/** The experiments' TPC-H setting: 60 jobs on 25 one-core workers at 85% load, three seeds. */
export const DEFAULT_EVAL: EvalSpec = {
  seeds: [1, 2, 3],
  jobs: 60,
  workers: 25,
  load: 0.85,
  heuristics: [...SCHEDULING_POLICY_NAMES],
};

export const EVAL_BOUNDS = {
  seeds: { min: 1, max: 5 },
  seed: { min: 1, max: 1_000_000 },
  jobs: { min: 2, max: 200 },
  workers: { min: 1, max: 200 },
  load: { min: 0.1, max: 0.99 },
} as const;

/** Relative difference of means below which two policies are called comparable. */
export const VERDICT_MARGIN = 0.01;

function inRange(field: string, v: unknown, min: number, max: number, integer: boolean): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || (integer && !Number.isInteger(v)))
    throw new RegistryInputError(
      `${field} must be ${integer ? 'an integer' : 'a number'}`,
      field,
      'type',
    );
  if (v < min || v > max)
    throw new RegistryInputError(`${field} must be in [${min}, ${max}], got ${v}`, field, 'range');
  return v;
}

/** The defaults overlaid with `p`, every field checked against its bound. */
export function checkEvalSpec(p: Partial<EvalSpec> = {}): EvalSpec {
  const b = EVAL_BOUNDS;
  const seeds = p.seeds ?? DEFAULT_EVAL.seeds;
  if (!Array.isArray(seeds) || seeds.length < b.seeds.min || seeds.length > b.seeds.max)
    throw new RegistryInputError(
      `seeds must be ${b.seeds.min} to ${b.seeds.max} seeds`,
      'seeds',
      'count',
    );
  seeds.forEach((s, i) => inRange(`seeds[${i}]`, s, b.seed.min, b.seed.max, true));
  if (new Set(seeds).size !== seeds.length)
    throw new RegistryInputError('seeds must be distinct', 'seeds', 'unique');
  const heuristics = p.heuristics ?? DEFAULT_EVAL.heuristics;
  for (const [i, h] of heuristics.entries())
    if (!(SCHEDULING_POLICY_NAMES as readonly string[]).includes(h))
      throw new RegistryInputError(
        `heuristics[${i}] must be one of ${SCHEDULING_POLICY_NAMES.join(', ')}`,
        `heuristics[${i}]`,
        'enum',
      );
  return {
    seeds: [...seeds],
    jobs: inRange('jobs', p.jobs ?? DEFAULT_EVAL.jobs, b.jobs.min, b.jobs.max, true),
    workers: inRange(
      'workers',
      p.workers ?? DEFAULT_EVAL.workers,
      b.workers.min,
      b.workers.max,
      true,
    ),
    load: inRange('load', p.load ?? DEFAULT_EVAL.load, b.load.min, b.load.max, false),
    heuristics: [...new Set(heuristics)],
  };
}

export interface NamedArtifact {
  /** How reports name it: `scheduler@3`, `live:heuristic:fifo`. */
  name: string;
  artifact: PolicyArtifact;
}

export interface PolicyScore {
  name: string;
  /** mean_jct_s per seed, in the order of the spec's seeds. */
  perSeed: number[];
  mean: number;
  p99Mean: number;
}

export type Verdict = 'better' | 'comparable' | 'worse';

export interface Workload {
  trace: 'tpch';
  jobs: number;
  workers: number;
  load: number;
  seeds: number[];
  world: 'clean';
}

export interface SimReport {
  kind: 'scheduling-sim';
  metric: 'mean_jct_s';
  direction: 'min';
  workload: Workload;
  candidate: PolicyScore;
  incumbent: PolicyScore;
  baselines: PolicyScore[];
  best: { name: string; mean: number };
  /** 1 = the lowest mean of candidate, incumbent and baselines. */
  rank: number;
  /** (incumbent - candidate) / incumbent: > 0 when the candidate is better. */
  improvementVsIncumbent: number;
  improvementVsBest: number;
  /** Seeds on which the candidate beat the incumbent. */
  winsVsIncumbent: number;
  verdict: Verdict;
  reasons: string[];
  elapsedMs: number;
}

export interface ShadowReport {
  kind: 'scheduling-shadow';
  /** Where the decisions came from: the live policy's decisions on simulated TPC-H traffic. */
  source: 'simulated-live-decisions';
  workload: Workload;
  incumbent: string;
  candidate: string;
  /** Decision points the live policy was asked at (the candidate was asked at each too). */
  decisions: number;
  /** Decisions where the candidate's first pick differed from the live one. */
  divergentDecisions: number;
  divergenceRate: number;
  /** Of the tasks the live policy started, the share the candidate would also have started. */
  taskAgreement: number;
  predicted: { incumbentMean: number; candidateMean: number; improvement: number };
  verdict: Verdict;
  reasons: string[];
  elapsedMs: number;
}

function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
}

/** Bounded memo of heuristic runs: they are deterministic given the workload and the seed. */
const MEMO_MAX = 1_000;

export class SchedulingSims {
  private dags: TpchDag[] | undefined;
  private readonly memo = new Map<string, Metrics>();

  constructor(
    private readonly trace: TraceFiles = {},
    private readonly now: () => number = () => performance.now(),
  ) {}

  private tpch(): TpchDag[] {
    this.dags ??= loadTpchDags(this.trace.stagesFile, this.trace.durationsFile);
    return this.dags;
  }

  private scenario(spec: EvalSpec, seed: number) {
    const workers: WorkerSpec[] = uniformWorkers(spec.workers, { cpu: 1, memMb: 4_096, gpu: 0 });
    const workload = tpchWorkloadFrom(this.tpch(), {
      workers,
      jobs: spec.jobs,
      load: spec.load,
      seed,
    });
    return { workload, workers, config: { seed } };
  }

  private run(a: NamedArtifact, spec: EvalSpec, seed: number): Metrics {
    const heuristic = a.artifact.heuristic;
    const key = heuristic
      ? `${heuristic}|${spec.jobs}|${spec.workers}|${spec.load}|${seed}`
      : undefined;
    const hit = key ? this.memo.get(key) : undefined;
    if (hit) return hit;
    const s = this.scenario(spec, seed);
    const m = simulate(s.workload, policyOf(a), {
      workers: s.workers,
      config: s.config,
    });
    if (key) {
      if (this.memo.size >= MEMO_MAX) this.memo.delete(this.memo.keys().next().value as string);
      this.memo.set(key, m);
    }
    return m;
  }

  private score(a: NamedArtifact, spec: EvalSpec): PolicyScore {
    const runs = spec.seeds.map((seed) => this.run(a, spec, seed));
    const perSeed = runs.map((m) => m['mean_jct_s'] as number);
    return {
      name: a.name,
      perSeed,
      mean: mean(perSeed),
      p99Mean: mean(runs.map((m) => m['p99_jct_s'] as number)),
    };
  }

  evaluate(candidate: NamedArtifact, incumbent: NamedArtifact, spec: EvalSpec): SimReport {
    const t0 = this.now();
    const cand = this.score(candidate, spec);
    const inc = this.score(incumbent, spec);
    const baselines = spec.heuristics.map((h) =>
      this.score({ name: h, artifact: { heuristic: h } }, spec),
    );
    const all = [cand, inc, ...baselines];
    const best = all.reduce((a, b) => (b.mean < a.mean ? b : a));
    const rank = 1 + all.filter((s) => s.mean < cand.mean).length;
    const wins = cand.perSeed.filter((x, i) => x < (inc.perSeed[i] as number)).length;
    const { verdict, reasons } = judge(cand.mean, inc.mean, wins, spec.seeds.length, inc.name);
    return {
      kind: 'scheduling-sim',
      metric: 'mean_jct_s',
      direction: 'min',
      workload: workloadOf(spec),
      candidate: cand,
      incumbent: inc,
      baselines,
      best: { name: best.name, mean: best.mean },
      rank,
      improvementVsIncumbent: (inc.mean - cand.mean) / inc.mean,
      improvementVsBest: (best.mean - cand.mean) / best.mean,
      winsVsIncumbent: wins,
      verdict,
      reasons: [...reasons, `rank ${rank} of ${all.length}; best ${best.name}`],
      elapsedMs: Math.round(this.now() - t0),
    };
  }

  shadow(candidate: NamedArtifact, incumbent: NamedArtifact, spec: EvalSpec): ShadowReport {
    const t0 = this.now();
    let decisions = 0;
    let divergent = 0;
    let started = 0;
    let agreed = 0;
    const live: number[] = [];
    const liveP99: number[] = [];
    for (const seed of spec.seeds) {
      const s = this.scenario(spec, seed);
      const acting = policyOf(incumbent);
      const shadow = policyOf(candidate);
      const sim = createSim(s.workload, { workers: s.workers, config: s.config });
      sim.run((runnable, free, now) => {
        // The candidate is asked first and its answer only compared: it never acts.
        const would = shadow.pick(runnable, free, now);
        const acts = acting.pick(runnable, free, now);
        if (acts.length === 0 && would.length === 0) return acts;
        decisions++;
        if (acts[0]?.taskId !== would[0]?.taskId) divergent++;
        const wouldIds = new Set(would.map((a) => a.taskId));
        started += acts.length;
        for (const a of acts) if (wouldIds.has(a.taskId)) agreed++;
        return acts;
      });
      const m = summariseRun(sim);
      live.push(m['mean_jct_s'] as number);
      liveP99.push(m['p99_jct_s'] as number);
    }
    // The live policy's outcome is that of the runs it acted in; the candidate's, its own runs.
    const inc: PolicyScore = {
      name: incumbent.name,
      perSeed: live,
      mean: mean(live),
      p99Mean: mean(liveP99),
    };
    const cand = this.score(candidate, spec);
    const wins = cand.perSeed.filter((x, i) => x < (inc.perSeed[i] as number)).length;
    const { verdict, reasons } = judge(cand.mean, inc.mean, wins, spec.seeds.length, inc.name);
    return {
      kind: 'scheduling-shadow',
      source: 'simulated-live-decisions',
      workload: workloadOf(spec),
      incumbent: incumbent.name,
      candidate: candidate.name,
      decisions,
      divergentDecisions: divergent,
      divergenceRate: decisions > 0 ? divergent / decisions : 0,
      taskAgreement: started > 0 ? agreed / started : 1,
      predicted: {
        incumbentMean: inc.mean,
        candidateMean: cand.mean,
        improvement: (inc.mean - cand.mean) / inc.mean,
      },
      verdict,
      reasons,
      elapsedMs: Math.round(this.now() - t0),
    };
  }
}

function workloadOf(spec: EvalSpec): Workload {
  return {
    trace: 'tpch',
    jobs: spec.jobs,
    workers: spec.workers,
    load: spec.load,
    seeds: spec.seeds,
    world: 'clean',
  };
}

/**
 * better: a lower mean by more than the margin and a win on at least half the seeds;
 * worse: a higher mean by more than the margin; comparable otherwise.
 */
export function judge(
  cand: number,
  inc: number,
  wins: number,
  seeds: number,
  incName: string,
): { verdict: Verdict; reasons: string[] } {
  const rel = (inc - cand) / inc;
  const pct = `${(Math.abs(rel) * 100).toFixed(1)}%`;
  if (rel > VERDICT_MARGIN && wins * 2 >= seeds)
    return {
      verdict: 'better',
      reasons: [`mean JCT ${pct} lower than ${incName}, better on ${wins}/${seeds} seeds`],
    };
  if (rel < -VERDICT_MARGIN)
    return {
      verdict: 'worse',
      reasons: [`mean JCT ${pct} higher than ${incName}, better on ${wins}/${seeds} seeds`],
    };
  return {
    verdict: 'comparable',
    reasons: [`mean JCT within ${VERDICT_MARGIN * 100}% of ${incName} or mixed across seeds`],
  };
}
