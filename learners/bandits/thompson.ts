// Thompson sampling: draw a mean reward for every arm from its posterior, play the largest.
//
// Two reward models, chosen in the config:
// - 'beta': rewards in [0, 1] (a hit, a success rate). Beta(α0 + Σr, β0 + Σ(1 - r)) posterior;
//   fractional rewards count as fractional successes.
// - 'normal': rewards of any scale with unknown mean and unknown variance, a normal-gamma
//   prior (μ0, κ0, α0, β0) on (mean, precision). The posterior after n rewards with mean x̄
//   and squared deviations M2 is
//     κn = κ0 + n,  μn = (κ0 μ0 + n x̄) / κn,  αn = α0 + n/2,
//     βn = β0 + M2/2 + κ0 n (x̄ - μ0)² / (2 κn),
//   a draw is τ ~ Gamma(αn, rate βn), then μ ~ N(μn, 1/(κn τ)). The default prior is weak
//   (κ0 = 0.01 pseudo-observations), so the prior mean hardly matters after one pull; β0/α0
//   is the prior guess of the reward variance and should match the reward scale.
import type { Rng } from '../../envs/core/index.ts';
import {
  ArtifactError,
  LearnerConfigError,
  LearnerInputError,
  checkField,
  withDefaults,
  type BanditContext,
  type BanditOutcome,
} from '../core/index.ts';
import { ArmStats, ArmStatsBandit } from './arm-stats.ts';
import { argmaxRandomTie, type BanditConfig } from './base.ts';
import { sampleBeta, sampleGamma } from './sampling.ts';

export interface BetaPrior {
  alpha: number;
  beta: number;
}

export interface NormalGammaPrior {
  mean: number;
  kappa: number;
  alpha: number;
  beta: number;
}

export interface ThompsonConfig extends BanditConfig {
  /** Reward model. Default 'normal'. */
  model?: 'beta' | 'normal';
  /** Beta prior for model 'beta'. Default {alpha: 1, beta: 1} (uniform). */
  betaPrior?: BetaPrior;
  /** Normal-gamma prior for model 'normal'. Default {mean: 0, kappa: 0.01, alpha: 1, beta: 1}. */
  normalPrior?: NormalGammaPrior;
}

type Resolved = Required<ThompsonConfig>;

function resolve(c: ThompsonConfig): Resolved {
  const k = ThompsonSampling.KIND;
  const r: Resolved = withDefaults(
    {
      model: 'normal',
      betaPrior: { alpha: 1, beta: 1 },
      normalPrior: { mean: 0, kappa: 0.01, alpha: 1, beta: 1 },
    },
    c,
  );
  if (r.model !== 'beta' && r.model !== 'normal') {
    throw new LearnerConfigError('model', 'enum', `${k}.model must be 'beta' or 'normal'`);
  }
  checkField(k, 'betaPrior.alpha', r.betaPrior.alpha, '>0');
  checkField(k, 'betaPrior.beta', r.betaPrior.beta, '>0');
  checkField(k, 'normalPrior.mean', r.normalPrior.mean, 'finite');
  checkField(k, 'normalPrior.kappa', r.normalPrior.kappa, '>0');
  checkField(k, 'normalPrior.alpha', r.normalPrior.alpha, '>0');
  checkField(k, 'normalPrior.beta', r.normalPrior.beta, '>0');
  return r;
}

export class ThompsonSampling extends ArmStatsBandit<Resolved, ThompsonConfig> {
  static readonly KIND = 'bandit.thompson';

  constructor(config: ThompsonConfig) {
    super(ThompsonSampling.KIND, 1, resolve, config);
  }

  protected choose(_ctx: BanditContext, rng: Rng): number {
    const draws = this.s.counts.map((_, a) =>
      this.config.model === 'beta' ? this.drawBeta(a, rng) : this.drawNormal(a, rng),
    );
    return argmaxRandomTie(draws, rng);
  }

  private drawBeta(a: number, rng: Rng): number {
    const n = this.s.counts[a] as number;
    const successes = n * (this.s.means[a] as number);
    const p = this.config.betaPrior;
    return sampleBeta(rng, p.alpha + successes, p.beta + n - successes);
  }

  private drawNormal(a: number, rng: Rng): number {
    const p = this.config.normalPrior;
    const n = this.s.counts[a] as number;
    const xbar = this.s.means[a] as number;
    const kappa = p.kappa + n;
    const mu = (p.kappa * p.mean + n * xbar) / kappa;
    const alpha = p.alpha + n / 2;
    const beta =
      p.beta + (this.s.m2[a] as number) / 2 + (p.kappa * n * (xbar - p.mean) ** 2) / (2 * kappa);
    const tau = sampleGamma(rng, alpha, beta);
    return rng.normal(mu, 1 / Math.sqrt(kappa * tau));
  }

  /** The beta model reads n · mean as successes: a mean outside [0, 1] gives NaN draws. */
  protected override checkStats(s: ArmStats, config: Resolved): void {
    if (config.model === 'beta' && !s.means.every((m) => m >= 0 && m <= 1)) {
      throw new ArtifactError(
        'stats.means',
        `${this.kind}: state.stats.means must be in [0, 1] for model 'beta' (rewards in [0, 1])`,
      );
    }
  }

  protected override update(o: BanditOutcome): void {
    if (this.config.model === 'beta' && (o.reward < 0 || o.reward > 1)) {
      throw new LearnerInputError(
        'reward',
        `${this.kind}: model 'beta' needs rewards in [0, 1], got ${o.reward}`,
      );
    }
    super.update(o);
  }
}
