// What every bandit shares: the arm list, the step counter that seeds each choice, checks of
// outcomes, and save/load. A bandit's state is small sufficient statistics (counts, sums, or
// LinUCB's matrices), stored in the artifact as number arrays, so no history is kept.
import type { Rng } from '../../envs/core/index.ts';
import {
  ArtifactError,
  LearnerConfigError,
  LearnerInputError,
  checkArtifact,
  checkSeed,
  stepRng,
  type Artifact,
  type Bandit,
  type BanditContext,
  type BanditOutcome,
  type BanditProposal,
} from '../core/index.ts';

/** The fields every bandit config has. */
export interface BanditConfig {
  /** Arm names (policy names, say); proposals carry the index and the name. At most 1000. */
  arms: readonly string[];
  /** Seeds every random choice (tie breaks, posterior samples). */
  seed: number;
}

const MAX_ARMS = 1000;

export function checkBanditConfig(kind: string, c: BanditConfig): void {
  checkSeed(kind, c.seed);
  const arms = c.arms as unknown;
  const ok =
    Array.isArray(arms) &&
    arms.length >= 1 &&
    arms.length <= MAX_ARMS &&
    arms.every((a) => typeof a === 'string') &&
    new Set(arms).size === arms.length;
  if (!ok) {
    throw new LearnerConfigError(
      'arms',
      'unique names',
      `${kind}.arms must be 1 to ${MAX_ARMS} distinct strings, got ${JSON.stringify(arms)}`,
    );
  }
}

/**
 * Index of the largest score; ties broken uniformly at random (so no arm is favoured). A NaN
 * score throws: it compares false with everything, so it would silently drop out of the
 * choice (and an all-NaN list would pick arm 0 for ever). Restored statistics are checked so
 * none arises from a load; one that does means statistics overflowed (rewards or features
 * near the float range).
 */
export function argmaxRandomTie(scores: readonly number[], rng: Rng): number {
  if (scores.length === 0) throw new Error('argmaxRandomTie: no scores');
  let max = -Infinity;
  let ties: number[] = [];
  scores.forEach((s, i) => {
    if (Number.isNaN(s)) throw new Error(`argmaxRandomTie: the score of arm ${i} is NaN`);
    if (s > max) {
      max = s;
      ties = [i];
    } else if (s === max) ties.push(i);
  });
  return rng.pick(ties);
}

interface BaseState {
  step: number;
  stats: Record<string, number[] | number[][]>;
}

/** `C` is the resolved config (defaults filled in), `I` the config callers pass. */
export abstract class BaseBandit<
  C extends BanditConfig,
  I extends BanditConfig = C,
> implements Bandit {
  protected config: C;
  /** Proposals made so far; proposal n draws from stepRng(seed, n). */
  protected step = 0;

  protected constructor(
    readonly kind: string,
    private readonly version: number,
    private readonly resolve: (input: I) => C,
    input: I,
  ) {
    this.config = resolve(input);
    checkBanditConfig(kind, this.config);
  }

  get arms(): readonly string[] {
    return this.config.arms;
  }

  /** The resolved config (every default filled in), for logging with a run. */
  get resolvedConfig(): Readonly<C> {
    return this.config;
  }

  async propose(ctx: BanditContext = {}): Promise<BanditProposal> {
    const arm = this.choose(ctx, stepRng(this.config.seed, this.step));
    this.step++;
    return { arm, name: this.config.arms[arm] as string };
  }

  observe(outcome: BanditOutcome): void {
    const { arm, reward } = outcome;
    if (!Number.isInteger(arm) || arm < 0 || arm >= this.config.arms.length) {
      throw new LearnerInputError(
        'arm',
        `${this.kind}: arm must be an integer in [0, ${this.config.arms.length}), got ${arm}`,
      );
    }
    if (typeof reward !== 'number' || !Number.isFinite(reward)) {
      throw new LearnerInputError('reward', `${this.kind}: reward must be finite, got ${reward}`);
    }
    this.update(outcome);
  }

  async save(): Promise<Artifact<C, BaseState>> {
    const state: BaseState = { step: this.step, stats: this.stats() };
    return JSON.parse(
      JSON.stringify({ kind: this.kind, version: this.version, config: this.config, state }),
    ) as Artifact<C, BaseState>;
  }

  async load(a: Artifact): Promise<void> {
    const art = checkArtifact(a, this.kind, this.version);
    const config = this.resolve(art.config as I);
    checkBanditConfig(this.kind, config);
    const state = art.state as Partial<BaseState>;
    if (!Number.isInteger(state.step) || (state.step as number) < 0) {
      throw new ArtifactError('step', `${this.kind}: state.step must be an integer >= 0`);
    }
    if (typeof state.stats !== 'object' || state.stats === null) {
      throw new ArtifactError('stats', `${this.kind}: state.stats must be an object`);
    }
    // restore checks the stats against the loaded config before it replaces anything, so a
    // refused load leaves the bandit as it was.
    this.restore(state.stats, config);
    this.config = config;
    this.step = state.step as number;
  }

  /** The arm for this context, drawing only from `rng`. */
  protected abstract choose(ctx: BanditContext, rng: Rng): number;
  /** Learns from a checked outcome. */
  protected abstract update(outcome: BanditOutcome): void;
  /**
   * Sets the statistics to their prior. Subclasses call it at the end of their constructor
   * (their field initialisers run after this base constructor).
   */
  protected abstract reset(): void;
  protected abstract stats(): Record<string, number[] | number[][]>;
  /**
   * Replaces the statistics with `stats()` output saved under `config`. Checks every shape
   * and value first (ArtifactError naming the field) and throws before changing anything.
   */
  protected abstract restore(stats: Record<string, unknown>, config: C): void;
}
