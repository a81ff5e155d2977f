// What every tuner shares: the search space built from its knobs, the step counter that seeds
// each proposal, the history of outcomes, the objective's direction, and save/load. A tuner's
// state is (step, history) plus whatever `extraState` adds: loading replays the history
// through `onObserve`, so state derived from outcomes (CEM's Gaussian) need not be stored.
import { searchSpace, validateValue, type KnobSpec, type KnobValues } from '../../knobs/index.ts';
import type { SearchSpace } from '../../knobs/index.ts';
import type { Rng } from '../../envs/core/index.ts';
import {
  ArtifactError,
  LearnerConfigError,
  LearnerExhaustedError,
  LearnerInputError,
  checkArtifact,
  checkSeed,
  stepRng,
  type Artifact,
  type ObjectiveSpec,
  type Tuner,
  type TunerBest,
  type TunerOutcome,
  type TunerProposal,
} from '../core/index.ts';

/** The fields every tuner config has. */
export interface TunerConfig {
  /** The knobs to tune; placement knobs are not searchable as coordinates. */
  knobs: readonly KnobSpec[];
  /** The metric to optimise and its direction (copy a KnobObjective's `objective`). */
  objective: ObjectiveSpec;
  /** Seeds every random choice; equal seeds and outcomes give equal proposals. */
  seed: number;
}

/** One observed outcome, in the tuner's terms. */
export interface Observation {
  values: KnobValues;
  /** The objective metric as measured. */
  value: number;
  /** `value` turned into a quantity to minimise (negated for `max`). */
  loss: number;
  /** The configuration in the unit cube. */
  x: number[];
  /** Identifies the configuration, so repeats of one configuration group together. */
  key: string;
  seed: number;
}

interface StoredOutcome {
  values: KnobValues;
  value: number;
  seed: number;
}

interface BaseState {
  step: number;
  history: StoredOutcome[];
  extra: Record<string, unknown>;
}

/** Checks the fields of TunerConfig and builds the search space (errors name the field). */
export function checkTunerConfig(kind: string, c: TunerConfig): SearchSpace {
  checkSeed(kind, c.seed);
  const o = c.objective as Partial<ObjectiveSpec> | undefined;
  if (!o || typeof o.metric !== 'string' || (o.direction !== 'min' && o.direction !== 'max')) {
    throw new LearnerConfigError(
      'objective',
      'spec',
      `${kind}.objective must be {metric: string, direction: 'min' | 'max'}`,
    );
  }
  if (!Array.isArray(c.knobs) || c.knobs.length === 0) {
    throw new LearnerConfigError('knobs', 'non-empty', `${kind}.knobs must be a non-empty list`);
  }
  try {
    return searchSpace(c.knobs);
  } catch (e) {
    throw new LearnerConfigError('knobs', 'searchable', `${kind}.knobs: ${(e as Error).message}`);
  }
}

/** `C` is the resolved config (defaults filled in), `I` the config callers pass. */
export abstract class BaseTuner<C extends TunerConfig, I extends TunerConfig = C> implements Tuner {
  protected config: C;
  protected space: SearchSpace;
  /** Proposals made so far; proposal n draws from stepRng(seed, n). */
  protected step = 0;
  protected history: Observation[] = [];

  protected constructor(
    readonly kind: string,
    private readonly version: number,
    /** Fills in defaults and validates; also used on load. */
    private readonly resolve: (input: I) => C,
    input: I,
  ) {
    this.config = resolve(input);
    this.space = checkTunerConfig(kind, this.config);
  }

  get objective(): ObjectiveSpec {
    return this.config.objective;
  }

  /** The resolved config (every default filled in), for logging with a run. */
  get resolvedConfig(): Readonly<C> {
    return this.config;
  }

  exhausted(): boolean {
    return false;
  }

  async propose(): Promise<TunerProposal> {
    if (this.exhausted()) throw new LearnerExhaustedError(this.kind);
    const proposal = this.next(stepRng(this.config.seed, this.step));
    this.step++;
    return proposal;
  }

  observe(outcome: TunerOutcome): void {
    this.record(this.toObservation(outcome));
  }

  best(): TunerBest | undefined {
    const groups = new Map<string, Observation[]>();
    for (const o of this.history) groups.set(o.key, [...(groups.get(o.key) ?? []), o]);
    let best: { obs: Observation[]; loss: number } | undefined;
    for (const obs of groups.values()) {
      const loss = obs.reduce((s, o) => s + o.loss, 0) / obs.length;
      if (!best || loss < best.loss) best = { obs, loss };
    }
    if (!best) return undefined;
    const first = best.obs[0] as Observation;
    const value = best.obs.reduce((s, o) => s + o.value, 0) / best.obs.length;
    return { values: first.values, value, evaluations: best.obs.length };
  }

  async save(): Promise<Artifact<C, BaseState>> {
    const state: BaseState = {
      step: this.step,
      history: this.history.map(({ values, value, seed }) => ({ values, value, seed })),
      extra: this.extraState(),
    };
    // A deep copy through JSON: the artifact is plain data, detached from this learner.
    return JSON.parse(
      JSON.stringify({ kind: this.kind, version: this.version, config: this.config, state }),
    ) as Artifact<C, BaseState>;
  }

  async load(a: Artifact): Promise<void> {
    const art = checkArtifact(a, this.kind, this.version);
    const config = this.resolve(art.config as I);
    const space = checkTunerConfig(this.kind, config);
    const state = art.state as Partial<BaseState>;
    if (!Number.isInteger(state.step) || (state.step as number) < 0) {
      throw new ArtifactError('step', `${this.kind}: state.step must be an integer >= 0`);
    }
    if (!Array.isArray(state.history)) {
      throw new ArtifactError('history', `${this.kind}: state.history must be a list`);
    }
    // Everything is checked before anything is assigned, so a refused load leaves the tuner
    // as it was: history entries become observations under the loaded config first.
    const history = state.history.map((h, i) => {
      if (typeof h !== 'object' || h === null) {
        throw new ArtifactError(
          `history[${i}]`,
          `${this.kind}: state.history[${i}] must be an object`,
        );
      }
      try {
        return this.toObservation(h, config, space);
      } catch (e) {
        if (!(e instanceof LearnerInputError)) throw e;
        throw new ArtifactError(
          `history[${i}].${e.field}`,
          `${this.kind}: state.history[${i}]: ${e.message}`,
        );
      }
    });
    const applyExtra = this.loadExtra(state.extra ?? {}, config, space);
    this.config = config;
    this.space = space;
    this.step = state.step as number;
    this.history = [];
    this.reset();
    for (const obs of history) this.record(obs);
    applyExtra();
  }

  /** The proposal of the current step, drawing only from `rng`. */
  protected abstract next(rng: Rng): TunerProposal;

  /**
   * Sets state derived from outcomes to its start. Called before a load replays the history;
   * subclasses with such state call it at the end of their constructor too (their field
   * initialisers run after this base constructor, so it cannot be called from here).
   */
  protected reset(): void {}

  /** Updates state derived from outcomes; `history` already holds `obs`. */
  protected onObserve(_obs: Observation): void {}

  /** State that outcomes do not determine (kept in the artifact). */
  protected extraState(): Record<string, unknown> {
    return {};
  }

  /**
   * Checks what a load needs beyond (step, history) under the loaded config and returns the
   * step that applies it; it runs before the load changes anything, so it must throw there.
   */
  protected loadExtra(
    _extra: Record<string, unknown>,
    _config: C,
    _space: SearchSpace,
  ): () => void {
    return () => {};
  }

  protected keyOf(values: KnobValues, space = this.space): string {
    return JSON.stringify(space.knobs.map((k) => values[k.name]));
  }

  protected proposal(x: readonly number[], reason: TunerProposal['reason']): TunerProposal {
    return { values: this.space.decode(x), reason };
  }

  private record(obs: Observation): void {
    this.history.push(obs);
    this.onObserve(obs);
  }

  /** `config` and `space` are the tuner's own except while a load checks its history. */
  private toObservation(
    outcome: TunerOutcome,
    config: C = this.config,
    space = this.space,
  ): Observation {
    const { metric, direction } = config.objective;
    for (const k of space.knobs) {
      const violation = validateValue(k, outcome.values?.[k.name]);
      if (violation) throw new LearnerInputError(`values.${k.name}`, violation.message);
    }
    const value = outcome.value ?? outcome.metrics?.[metric];
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw new LearnerInputError(
        'value',
        `${this.kind}: outcome needs a finite value or metrics.${metric}, got ${String(value)}`,
      );
    }
    const values = Object.fromEntries(space.knobs.map((k) => [k.name, outcome.values[k.name]]));
    return {
      values: values as KnobValues,
      value,
      loss: direction === 'min' ? value : -value,
      x: space.encode(values as KnobValues),
      key: this.keyOf(values as KnobValues, space),
      seed: outcome.seed,
    };
  }
}
