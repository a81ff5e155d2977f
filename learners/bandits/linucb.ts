// Disjoint LinUCB (Li, Chu, Langford, Schapire 2010): each arm has its own ridge regression
// of reward on the context, A_a = λI + Σ x xᵀ and b_a = Σ r x; play the arm maximising
//   θ_aᵀx + α sqrt(xᵀ A_a⁻¹ x),  θ_a = A_a⁻¹ b_a.
// For contextual choices such as the scheduler policy from workload features. With
// `intercept` a constant 1 is prepended to the features, so each arm also learns a baseline.
// Solves use ml-matrix's Cholesky (A_a is symmetric positive definite by construction);
// work per proposal is O(arms · d³) for d features, fine for the handful of features we use.
import { CholeskyDecomposition, Matrix } from 'ml-matrix';
import type { Rng } from '../../envs/core/index.ts';
import {
  ArtifactError,
  LearnerInputError,
  checkField,
  withDefaults,
  checkIntIn,
  checkNumbers,
  type BanditContext,
  type BanditOutcome,
} from '../core/index.ts';
import { BaseBandit, argmaxRandomTie, type BanditConfig } from './base.ts';

export interface LinUcbConfig extends BanditConfig {
  /** Length of the context vector callers pass (without the intercept). At most 256. */
  dims: number;
  /** Width of the confidence bonus. Default 1. */
  alpha?: number;
  /** Ridge λ: the prior precision of every arm's weights. Default 1. */
  ridge?: number;
  /** Prepend a constant 1 to the features. Default true. */
  intercept?: boolean;
}

type Resolved = Required<LinUcbConfig>;

function resolve(c: LinUcbConfig): Resolved {
  const r: Resolved = withDefaults({ alpha: 1, ridge: 1, intercept: true }, c);
  checkIntIn(LinUcb.KIND, 'dims', r.dims, 1, 256);
  checkField(LinUcb.KIND, 'alpha', r.alpha, '>=0');
  checkField(LinUcb.KIND, 'ridge', r.ridge, '>0');
  return r;
}

export class LinUcb extends BaseBandit<Resolved, LinUcbConfig> {
  static readonly KIND = 'bandit.linucb';
  private a: number[][][] = [];
  private b: number[][] = [];

  constructor(config: LinUcbConfig) {
    super(LinUcb.KIND, 1, resolve, config);
    this.reset();
  }

  /** Each arm's current weight estimate θ_a (intercept first when enabled). */
  weights(): number[][] {
    return this.a.map((a, i) =>
      new CholeskyDecomposition(a).solve(Matrix.columnVector(this.b[i] as number[])).to1DArray(),
    );
  }

  protected choose(ctx: BanditContext, rng: Rng): number {
    const x = this.featureVector(ctx.features, 'features');
    const xv = Matrix.columnVector(x);
    const scores = this.a.map((a, i) => {
      const chol = new CholeskyDecomposition(a);
      const theta = chol.solve(Matrix.columnVector(this.b[i] as number[])).to1DArray();
      const z = chol.solve(xv).to1DArray();
      const width = Math.sqrt(Math.max(0, dot(x, z)));
      return dot(theta, x) + this.config.alpha * width;
    });
    return argmaxRandomTie(scores, rng);
  }

  protected update(o: BanditOutcome): void {
    const x = this.featureVector(o.features, 'features');
    const a = this.a[o.arm] as number[][];
    const b = this.b[o.arm] as number[];
    x.forEach((xi, i) => {
      b[i] = (b[i] as number) + o.reward * xi;
      const row = a[i] as number[];
      x.forEach((xj, j) => (row[j] = (row[j] as number) + xi * xj));
    });
  }

  private featureVector(f: readonly number[] | undefined, field: string): number[] {
    const ok =
      Array.isArray(f) &&
      f.length === this.config.dims &&
      f.every((v) => typeof v === 'number' && Number.isFinite(v));
    if (!ok) {
      throw new LearnerInputError(
        field,
        `${this.kind}: ${field} must be ${this.config.dims} finite numbers, got ${JSON.stringify(f)}`,
      );
    }
    return this.config.intercept ? [1, ...f] : [...f];
  }

  protected reset(): void {
    const d = featureWidth(this.config);
    const arms = this.config.arms.length;
    this.a = Array.from({ length: arms }, () =>
      Array.from({ length: d }, (_, i) =>
        Array.from({ length: d }, (_, j) => (i === j ? this.config.ridge : 0)),
      ),
    );
    this.b = Array.from({ length: arms }, () => new Array<number>(d).fill(0));
  }

  protected stats(): Record<string, number[] | number[][]> {
    // One flat row-major d×d block per arm keeps the artifact a list of number arrays.
    return { a: this.a.map((m) => m.flat()), b: this.b.map((v) => [...v]) };
  }

  protected restore(stats: Record<string, unknown>, config: Resolved): void {
    const d = featureWidth(config);
    const arms = config.arms.length;
    const rows = (field: string, v: unknown, len: number): number[][] => {
      if (!Array.isArray(v) || v.length !== arms) {
        throw new ArtifactError(
          `stats.${field}`,
          `${this.kind}: state.stats.${field} must have ${arms} rows`,
        );
      }
      return v.map((r) => [...checkNumbers(this.kind, `stats.${field}`, r, len)]);
    };
    const flat = rows('a', stats.a, d * d);
    const a = flat.map((m) => Array.from({ length: d }, (_, i) => m.slice(i * d, (i + 1) * d)));
    // Every choice solves with A_a's Cholesky factor, which exists only for an SPD matrix.
    a.forEach((m, i) => {
      const matrix = new Matrix(m);
      if (!matrix.isSymmetric() || !new CholeskyDecomposition(matrix).isPositiveDefinite()) {
        throw new ArtifactError(
          `stats.a[${i}]`,
          `${this.kind}: state.stats.a[${i}] must be a symmetric positive definite matrix`,
        );
      }
    });
    const b = rows('b', stats.b, d);
    this.a = a;
    this.b = b;
  }
}

/** Length of the feature vector: the context plus the intercept's constant 1. */
function featureWidth(c: Resolved): number {
  return c.dims + (c.intercept ? 1 : 0);
}

function dot(a: readonly number[], b: readonly number[]): number {
  return a.reduce((s, v, i) => s + v * (b[i] as number), 0);
}
