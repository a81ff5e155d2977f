// Per-arm running statistics (Welford): pull counts, reward means and the sums of squared
// deviations. UCB1 and both Thompson models are functions of these three arrays, so they share
// ArmStatsBandit below and differ only in how they choose.
import { ArtifactError, checkNumbers, type BanditOutcome } from '../core/index.ts';
import { BaseBandit, type BanditConfig } from './base.ts';

export class ArmStats {
  counts: number[];
  means: number[];
  /** Σ (reward - mean)² per arm. */
  m2: number[];

  constructor(arms: number) {
    this.counts = new Array<number>(arms).fill(0);
    this.means = new Array<number>(arms).fill(0);
    this.m2 = new Array<number>(arms).fill(0);
  }

  get total(): number {
    return this.counts.reduce((s, n) => s + n, 0);
  }

  add(arm: number, reward: number): void {
    const n = (this.counts[arm] as number) + 1;
    const mean = this.means[arm] as number;
    const delta = reward - mean;
    const next = mean + delta / n;
    this.counts[arm] = n;
    this.means[arm] = next;
    this.m2[arm] = (this.m2[arm] as number) + delta * (reward - next);
  }

  toJson(): Record<string, number[]> {
    return { counts: [...this.counts], means: [...this.means], m2: [...this.m2] };
  }

  /** Statistics of `arms` arms from toJson() output; ArtifactError names a bad field. */
  static fromJson(kind: string, arms: number, s: Record<string, unknown>): ArmStats {
    const counts = checkNumbers(kind, 'stats.counts', s.counts, arms);
    if (!counts.every((n) => Number.isInteger(n) && n >= 0)) {
      throw new ArtifactError('stats.counts', `${kind}: state.stats.counts must be integers >= 0`);
    }
    const means = checkNumbers(kind, 'stats.means', s.means, arms);
    const m2 = checkNumbers(kind, 'stats.m2', s.m2, arms);
    // A sum of squares: a negative one makes the normal model's posterior rate negative, and
    // every draw NaN.
    if (!m2.every((v) => v >= 0)) {
      throw new ArtifactError('stats.m2', `${kind}: state.stats.m2 must be numbers >= 0`);
    }
    const out = new ArmStats(arms);
    out.counts = [...counts];
    out.means = [...means];
    out.m2 = [...m2];
    return out;
  }
}

/** A bandit whose whole state is ArmStats: learning, reset and save/load are the same. */
export abstract class ArmStatsBandit<
  C extends BanditConfig,
  I extends BanditConfig = C,
> extends BaseBandit<C, I> {
  protected s = new ArmStats(0);

  protected constructor(kind: string, version: number, resolve: (input: I) => C, input: I) {
    super(kind, version, resolve, input);
    this.reset(); // after `s`'s initialiser, which runs once the base constructor returns
  }

  /** Pulls and mean reward per arm. */
  get statistics(): { counts: number[]; means: number[] } {
    return { counts: [...this.s.counts], means: [...this.s.means] };
  }

  protected update(o: BanditOutcome): void {
    this.s.add(o.arm, o.reward);
  }

  protected reset(): void {
    this.s = new ArmStats(this.config.arms.length);
  }

  protected stats(): Record<string, number[]> {
    return this.s.toJson();
  }

  protected restore(stats: Record<string, unknown>, config: C): void {
    const s = ArmStats.fromJson(this.kind, config.arms.length, stats);
    this.checkStats(s, config);
    this.s = s;
  }

  /**
   * What a subclass's model needs of restored statistics beyond their shape (ArtifactError
   * naming the field); runs before the load changes anything.
   */
  protected checkStats(_s: ArmStats, _config: C): void {}
}
