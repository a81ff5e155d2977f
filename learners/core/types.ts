// The one learner interface (DESIGN.md): propose, observe, save, load. Tuners propose whole
// knob configurations; bandits propose an arm, optionally given a context vector. Artifacts
// are plain JSON (weights as number arrays) so the policies table can store them as is.
import type { KnobValues } from '../../knobs/index.ts';
import type { Metrics } from '../../envs/core/index.ts';

/** What `save()` returns and `load()` accepts. JSON-serialisable: no NaN, no Infinity. */
export interface Artifact<C = unknown, S = unknown> {
  /** The learner's kind (`tuner.bayesopt`, `bandit.linucb`); load refuses another kind. */
  kind: string;
  /** Format version of `state`; load refuses versions it does not know. */
  version: number;
  /** The resolved config (every default filled in), exactly as the learner ran with it. */
  config: C;
  state: S;
}

/**
 * A learner. Calls alternate: propose, then observe the outcome of that proposal. A learner is
 * deterministic given its config (which holds the seed) and the outcomes it observed.
 */
export interface Learner<Ctx, P, O> {
  readonly kind: string;
  propose(ctx: Ctx): Promise<P>;
  observe(outcome: O): void;
  save(): Promise<Artifact>;
  /** Replaces this learner's config and state with the artifact's. */
  load(a: Artifact): Promise<void>;
}

/** The metric a tuner optimises and its direction (a KnobObjective's `objective`). */
export interface ObjectiveSpec {
  metric: string;
  direction: 'min' | 'max';
}

/** Why a tuner proposed a configuration; `repeat` re-evaluates one already seen. */
export type ProposalReason = 'initial' | 'random' | 'grid' | 'sample' | 'acquisition' | 'repeat';

export interface TunerProposal {
  /** A full configuration: one valid value per knob of the tuner's search space. */
  values: KnobValues;
  reason: ProposalReason;
}

export interface TunerOutcome {
  values: KnobValues;
  /** The objective metric's value; if absent it is read from `metrics[objective.metric]`. */
  value?: number;
  metrics?: Metrics;
  /** The workload seed the evaluation ran with. */
  seed: number;
}

/** The best configuration seen, by the mean over its repeated evaluations. */
export interface TunerBest {
  values: KnobValues;
  /** Mean of the objective metric over `evaluations` runs, in the metric's own units. */
  value: number;
  evaluations: number;
}

/** Tuners need no context: the search space and objective are fixed by their config. */
export interface Tuner extends Learner<void, TunerProposal, TunerOutcome> {
  readonly objective: ObjectiveSpec;
  /** True when a finite tuner (grid search) has nothing left to propose. */
  exhausted(): boolean;
  best(): TunerBest | undefined;
}

export interface BanditContext {
  /** The context vector (workload features); required by contextual bandits. */
  features?: readonly number[];
}

export interface BanditProposal {
  /** Index into the bandit's `arms`. */
  arm: number;
  name: string;
}

export interface BanditOutcome {
  arm: number;
  /** Larger is better. */
  reward: number;
  /** The context the arm was chosen in; required by contextual bandits. */
  features?: readonly number[];
}

export interface Bandit extends Learner<BanditContext, BanditProposal, BanditOutcome> {
  readonly arms: readonly string[];
}
