// Grid search over `space.grid`: every enum and bool value, `pointsPerNumeric` levels per
// numeric knob. The order is shuffled by the seed (unless `shuffle` is off) so that a budget
// smaller than the grid still spreads over the whole space. Finite: `exhausted()` turns true
// after the last point and `tune` stops there.
import type { Rng } from '../../envs/core/index.ts';
import { createRng } from '../../envs/core/index.ts';
import type { KnobValues } from '../../knobs/index.ts';
import {
  LearnerConfigError,
  STREAM,
  checkField,
  checkOneOf,
  withDefaults,
  deriveSeed,
  type TunerProposal,
} from '../core/index.ts';
import { BaseTuner, checkTunerConfig, type TunerConfig } from './base.ts';

export interface GridSearchConfig extends TunerConfig {
  /** Levels per numeric knob, ends included (int knobs may have fewer distinct). Default 5. */
  pointsPerNumeric?: number;
  /** Visit the grid in a seeded random order. Default true. */
  shuffle?: boolean;
  /** Refuse grids larger than this (the grid is built in memory). Default 10 000. */
  maxPoints?: number;
}

type Resolved = Required<GridSearchConfig>;

function resolve(c: GridSearchConfig): Resolved {
  const r: Resolved = withDefaults({ pointsPerNumeric: 5, shuffle: true, maxPoints: 10_000 }, c);
  checkField(GridSearch.KIND, 'pointsPerNumeric', r.pointsPerNumeric, 'integer>=1');
  checkField(GridSearch.KIND, 'maxPoints', r.maxPoints, 'integer>=1');
  checkOneOf(GridSearch.KIND, 'shuffle', r.shuffle, [true, false]);
  return r;
}

export class GridSearch extends BaseTuner<Resolved, GridSearchConfig> {
  static readonly KIND = 'tuner.grid';
  private points: KnobValues[] = [];

  constructor(config: GridSearchConfig) {
    super(GridSearch.KIND, 1, resolve, config);
    this.points = this.buildPoints(this.config);
  }

  /** Number of points in the grid. */
  get size(): number {
    return this.points.length;
  }

  override exhausted(): boolean {
    return this.step >= this.points.length;
  }

  protected next(_rng: Rng): TunerProposal {
    return { values: this.points[this.step] as KnobValues, reason: 'grid' };
  }

  // Built while the load is still checking, so an oversized grid refuses the load unchanged.
  protected override loadExtra(_extra: Record<string, unknown>, config: Resolved): () => void {
    const points = this.buildPoints(config);
    return () => {
      this.points = points;
    };
  }

  /** The grid, in visiting order; a pure function of the config. */
  private buildPoints(c: Resolved): KnobValues[] {
    const space = checkTunerConfig(this.kind, c);
    // An upper bound of the size (int knobs may dedupe), checked before building anything.
    const bound = space.knobs.reduce(
      (n, k) =>
        n * (k.type === 'enum' ? k.values.length : k.type === 'bool' ? 2 : c.pointsPerNumeric),
      1,
    );
    if (bound > c.maxPoints) {
      throw new LearnerConfigError(
        'maxPoints',
        'grid size',
        `${this.kind}: the grid has up to ${bound} points, more than maxPoints ${c.maxPoints}`,
      );
    }
    const points = space.grid(c.pointsPerNumeric);
    if (!c.shuffle) return points;
    return createRng(deriveSeed(c.seed, STREAM.gridOrder)).shuffle(points);
  }
}
