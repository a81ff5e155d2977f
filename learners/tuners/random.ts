// Random search: every proposal uniform in the unit cube of the search space. The baseline
// every other tuner must beat at equal budget.
import type { Rng } from '../../envs/core/index.ts';
import type { TunerProposal } from '../core/index.ts';
import { BaseTuner, type TunerConfig } from './base.ts';
import { uniformPoint } from './design.ts';

/** Random search needs nothing beyond the common fields. */
export type RandomSearchConfig = TunerConfig;

export class RandomSearch extends BaseTuner<RandomSearchConfig> {
  static readonly KIND = 'tuner.random';

  constructor(config: RandomSearchConfig) {
    super(RandomSearch.KIND, 1, (c) => ({ ...c }), config);
  }

  protected next(rng: Rng): TunerProposal {
    return this.proposal(uniformPoint(this.space.dims, rng), 'random');
  }
}
