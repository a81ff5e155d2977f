// The shape of an experiment, as data. A spec names its workload (a trace of a format, or a
// generator), and one or more studies. A tuning study says which env objective the knobs are
// tuned on, the baselines (fixed configurations), the tuners and the oracle (the exhaustive
// grid); a comparison study lists entries (heuristic policies, learned policies, an oracle
// such as Belady) that each produce one metric per seed. Learned policies plug in as entries
// whose `run` trains and then evaluates; the runner does not know which is which.
import type { KnobObjective, Metrics } from '../envs/core/index.ts';
import type { CacheTrace } from '../envs/loaders/cache-trace.ts';
import type { MessageSource } from '../envs/messaging/index.ts';
import type { Workload, WorkerSpec } from '../envs/scheduler/types.ts';
import type { KnobSpec, KnobValues } from '../knobs/index.ts';
import type { Tuner } from '../learners/core/index.ts';
import type { TunerConfig } from '../learners/tuners/index.ts';

export type EntryKind = 'baseline' | 'learner' | 'oracle';
export type Direction = 'min' | 'max';

/** The trace families the loaders read; each experiment reads one family. */
export type TraceKind = 'cache' | 'jobs' | 'requests';

/** A trace on disk: a path (relative to the project root, or absolute) and its format. */
export interface TraceSource {
  path: string;
  format: string;
}

/** What every study factory gets besides the workload. */
export interface RunContext {
  quick: boolean;
  /** Offered load a jobs trace is replayed at (share of the cluster's busiest resource). */
  load: number;
}

/** A title, fixed or built from the run (a jobs workload's title names the load it ran at). */
export type Title = string | ((ctx: RunContext) => string);

export function titleOf(title: Title, ctx: RunContext): string {
  return typeof title === 'string' ? title : title(ctx);
}

/**
 * Where an experiment's workload comes from. `load` turns the trace (undefined for a
 * generated workload with no --trace) into the value W the studies share.
 */
export interface WorkloadSpec<W> {
  /** The trace family; 'generated' workloads may still accept a trace of `accepts`. */
  kind: TraceKind | 'generated';
  /** The trace family a --trace must belong to (default `kind`). */
  accepts?: TraceKind;
  /** The default trace (a shared one); absent for generated workloads. */
  default?: TraceSource;
  /** What the workload is, in a phrase (for generated workloads and reports). */
  description: string;
  load(trace: LoadedTrace | undefined, ctx: RunContext): Promise<W> | W;
}

/** A jobs workload as the scheduler needs it: for each seed, the jobs and the cluster. */
export interface JobsScenario {
  name: string;
  scenario(seed: number): { workload: Workload; workers: readonly WorkerSpec[] };
  /** The same generator drawing `jobs` jobs per seed (absent for a fixed trace). */
  withJobs?(jobs: number): JobsScenario;
}

/** A trace read by experiments/workloads.ts, tagged with its family. */
export type LoadedTrace =
  | { kind: 'cache'; source: TraceSource; trace: CacheTrace }
  | { kind: 'jobs'; source: TraceSource; jobs: JobsScenario }
  | { kind: 'requests'; source: TraceSource; messages: MessageSource };

/** A fixed configuration compared with the tuners (a default, each policy at defaults). */
export interface BaselineSpec {
  name: string;
  /** Knob values; knobs not listed take their catalog default. */
  values: KnobValues;
}

export interface TunerSpec {
  name: string;
  make(config: TunerConfig): Tuner;
}

/**
 * Derived comparisons a study reports on top of the gap of every entry to the oracle, each
 * judged in experiments/derived.ts (paired 95% CI where seeds are workload draws, an exact rank
 * test where they are tuner seeds on one fixed objective). `on: 'held-out'` judges a tuning
 * study's claim on the held-out scores of the final configurations instead of the training
 * objective (no `evaluations` then: only final configurations are re-scored).
 */
export type ComparisonSpec =
  /**
   * Does `entry` come within `tolerance` (relative) of `reference` by `evaluations`? The
   * reference 'best-known' (derived.ts BEST_KNOWN) is the best value any entry reached.
   */
  | {
      type: 'within';
      entry: string;
      reference: string;
      tolerance: number;
      evaluations?: number;
      on?: 'train' | 'held-out';
    }
  /** Is `a` better than `b` at the same budget (or at `evaluations`)? */
  | { type: 'versus'; a: string; b: string; evaluations?: number; on?: 'train' | 'held-out' }
  /**
   * Is `entry` better than the best of `others` (by mean)? With `by`, better by at least that
   * relative margin; `by: 0` is "no worse", where `margin` says how much worse (relative) still
   * counts as no worse (the improvement's interval must lie above -margin).
   */
  | {
      type: 'beats-best-of';
      entry: string;
      others: readonly string[];
      by?: number;
      margin?: number;
    }
  /** Is `entry` better than `reference` by at least the relative margin `by` (and `margin`)? */
  | { type: 'improves-on'; entry: string; reference: string; by: number; margin?: number };

export interface TuningStudySpec<W> {
  type: 'tuning';
  name: string;
  title: Title;
  /** The env objective the knobs are tuned on; workload seeds choose the workload draw. */
  objective(w: W, ctx: RunContext): KnobObjective;
  /** The search space (default: the objective's knobs); may narrow a knob's domain. */
  space?(objective: KnobObjective): readonly KnobSpec[];
  /**
   * The scale the tuners see the metric on (default 'linear'): 'log' hands them log(metric),
   * see objectives.ts logMetricObjective. Results stay in the metric's own units.
   */
  tunerScale?: 'linear' | 'log';
  /**
   * Workload seeds of the training objective: every evaluation during tuning is the mean over
   * these, so the tuners, the baselines and the oracle all see one deterministic function.
   */
  trainSeeds: readonly number[];
  /** Held-out workload seeds the final configurations are also scored on (generalisation). */
  testSeeds?: readonly number[];
  baselines: readonly BaselineSpec[];
  learners: readonly TunerSpec[];
  /** The exhaustive grid over the same space; levels per numeric knob (quick: fewer). */
  oracle?: { type: 'grid'; pointsPerNumeric: number; quickPointsPerNumeric: number };
  comparisons: readonly ComparisonSpec[];
  /** Unit of the metric, for tables and axes. */
  unit?: string;
  /** What the metric means, in a sentence (shown in result.md). */
  note?: string;
}

/** One entry of a comparison study: one run per seed, returning metrics. */
export interface EntrySpec<W> {
  name: string;
  kind: EntryKind;
  /** The run does not depend on the seed (a deterministic replay): run once, reuse. */
  seedInvariant?: boolean;
  run(w: W, seed: number, ctx: RunContext): Promise<Metrics> | Metrics;
}

export interface ComparisonStudySpec<W> {
  type: 'comparison';
  name: string;
  title: Title;
  metric: string;
  direction: Direction;
  unit?: string;
  note?: string;
  entries: readonly EntrySpec<W>[];
  comparisons: readonly ComparisonSpec[];
  /**
   * Seeds of a full run of this study when --seeds is not given, if not the experiment's: for
   * cheap runs whose entries differ by workload more than the experiment's seeds resolve.
   * --seeds and --quick set every study's.
   */
  seeds?: number;
}

export type StudySpec<W> = TuningStudySpec<W> | ComparisonStudySpec<W>;

export interface ExperimentSpec<W = unknown> {
  name: string;
  title: Title;
  workload: WorkloadSpec<W>;
  /** Seeds and tuner budget (evaluations) of a full run, and of a --quick one. */
  defaults: { seeds: number; budget: number };
  quick: { seeds: number; budget: number };
  /** The first study is the experiment's headline (the CLI's top-level `results`). */
  studies: readonly StudySpec<W>[];
}
