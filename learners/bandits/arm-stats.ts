// Per-arm running statistics (Welford): pull counts, reward means and the sums of squared
// deviations. UCB1 and both Thompson models are functions of these three arrays.
import { ArtifactError, checkNumbers } from '../core/index.ts';

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

  restore(kind: string, s: Record<string, unknown>): void {
    const arms = this.counts.length;
    const counts = checkNumbers(kind, 'stats.counts', s.counts, arms);
    if (!counts.every((n) => Number.isInteger(n) && n >= 0)) {
      throw new ArtifactError('stats.counts', `${kind}: state.stats.counts must be integers >= 0`);
    }
    this.counts = [...counts];
    this.means = [...checkNumbers(kind, 'stats.means', s.means, arms)];
    this.m2 = [...checkNumbers(kind, 'stats.m2', s.m2, arms)];
  }
}
