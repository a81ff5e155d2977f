// The cross-entropy method in the unit cube: sample a generation from a diagonal Gaussian,
// keep the elite fraction with the lowest loss, move the Gaussian to the elites' mean and
// spread (smoothed), repeat. Enum and bool knobs are sampled on their bin coordinate like
// numeric ones: crude (it imposes an order on enum values) but CEM is the simple baseline.
// Proposals are sequential: a generation is complete once `populationSize` outcomes arrived.
import type { Rng } from '../../envs/core/index.ts';
import { checkField, withDefaults, type TunerProposal } from '../core/index.ts';
import { BaseTuner, type Observation, type TunerConfig } from './base.ts';
import { clamp01 } from './design.ts';

export interface CemConfig extends TunerConfig {
  /** Samples per generation. Default 16. */
  populationSize?: number;
  /** Fraction of a generation kept as elites (at least 2 are kept). Default 0.25. */
  eliteFraction?: number;
  /** Initial standard deviation per coordinate (the cube is [0,1]). Default 0.3. */
  initialStd?: number;
  /** Floor of the standard deviation, so the search never freezes entirely. Default 0.01. */
  minStd?: number;
  /** Weight of the new elite statistics against the old Gaussian (1 = no smoothing). Default 0.8. */
  smoothing?: number;
}

type Resolved = Required<CemConfig>;

function resolve(c: CemConfig): Resolved {
  const r: Resolved = withDefaults(
    {
      populationSize: 16,
      eliteFraction: 0.25,
      initialStd: 0.3,
      minStd: 0.01,
      smoothing: 0.8,
    },
    c,
  );
  const k = CrossEntropy.KIND;
  checkField(k, 'populationSize', r.populationSize, 'integer>=2');
  checkField(k, 'eliteFraction', r.eliteFraction, '(0,1]');
  checkField(k, 'initialStd', r.initialStd, '>0');
  checkField(k, 'minStd', r.minStd, '>=0');
  checkField(k, 'smoothing', r.smoothing, '(0,1]');
  return r;
}

export class CrossEntropy extends BaseTuner<Resolved, CemConfig> {
  static readonly KIND = 'tuner.cem';
  private mean: number[] = [];
  private std: number[] = [];
  private generation: Observation[] = [];
  private generations = 0;

  constructor(config: CemConfig) {
    super(CrossEntropy.KIND, 1, resolve, config);
    this.reset();
  }

  /** The current sampling distribution and the number of completed generations. */
  get distribution(): { mean: number[]; std: number[]; generations: number } {
    return { mean: [...this.mean], std: [...this.std], generations: this.generations };
  }

  protected next(rng: Rng): TunerProposal {
    const x = this.mean.map((m, i) => clamp01(rng.normal(m, this.std[i] as number)));
    return this.proposal(x, 'sample');
  }

  protected override reset(): void {
    this.mean = new Array<number>(this.space.dims).fill(0.5);
    this.std = new Array<number>(this.space.dims).fill(this.config.initialStd);
    this.generation = [];
    this.generations = 0;
  }

  protected override onObserve(obs: Observation): void {
    this.generation.push(obs);
    if (this.generation.length < this.config.populationSize) return;
    const c = this.config;
    const nElite = Math.max(2, Math.round(c.eliteFraction * c.populationSize));
    const elites = [...this.generation].sort((a, b) => a.loss - b.loss).slice(0, nElite);
    for (let i = 0; i < this.space.dims; i++) {
      const xs = elites.map((e) => e.x[i] as number);
      const mu = xs.reduce((s, v) => s + v, 0) / xs.length;
      const sd = Math.sqrt(xs.reduce((s, v) => s + (v - mu) ** 2, 0) / xs.length);
      this.mean[i] = c.smoothing * mu + (1 - c.smoothing) * (this.mean[i] as number);
      const smoothed = c.smoothing * sd + (1 - c.smoothing) * (this.std[i] as number);
      this.std[i] = Math.max(c.minStd, smoothed);
    }
    this.generation = [];
    this.generations++;
  }
}
