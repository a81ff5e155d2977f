// UCB1 (Auer, Cesa-Bianchi, Fischer 2002): play every arm once, then the arm maximising
//   mean_a + c · sqrt(2 ln t / n_a).
// The bound assumes rewards in [0, 1]; for other scales raise `exploration` to the reward
// range (or rescale rewards), else the bandit under-explores.
import type { Rng } from '../../envs/core/index.ts';
import { checkField, withDefaults, type BanditContext } from '../core/index.ts';
import { ArmStatsBandit } from './arm-stats.ts';
import { argmaxRandomTie, type BanditConfig } from './base.ts';

export interface Ucb1Config extends BanditConfig {
  /** c, the multiplier of the confidence radius. Default 1 (the textbook UCB1). */
  exploration?: number;
}

type Resolved = Required<Ucb1Config>;

function resolve(c: Ucb1Config): Resolved {
  const r: Resolved = withDefaults({ exploration: 1 }, c);
  checkField(Ucb1.KIND, 'exploration', r.exploration, '>=0');
  return r;
}

export class Ucb1 extends ArmStatsBandit<Resolved, Ucb1Config> {
  static readonly KIND = 'bandit.ucb1';

  constructor(config: Ucb1Config) {
    super(Ucb1.KIND, 1, resolve, config);
  }

  protected choose(_ctx: BanditContext, rng: Rng): number {
    const t = this.s.total;
    const scores = this.s.counts.map((n, a) =>
      n === 0
        ? Infinity
        : (this.s.means[a] as number) + this.config.exploration * Math.sqrt((2 * Math.log(t)) / n),
    );
    return argmaxRandomTie(scores, rng);
  }
}
