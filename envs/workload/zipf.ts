// Zipf-skewed popularity that drifts: item i has rank r(i) and weight 1/r^s (normalised).
// Real tenants and keys are skewed and their hot set changes over time; a static Zipf would
// let a placement or cache be tuned once and never again. Drift here is a random walk over
// ranks (adjacent swaps each step) and, optionally, a periodic rotation of the whole ranking
// (every item cools by one rank and the coldest becomes the hottest: a newcomer turning hot).
import type { Rng } from '../core/rng.ts';
import { WorkloadConfigError, requireNonNegative } from './config.ts';

export interface ZipfDriftConfig {
  items: number;
  /** Zipf exponent s >= 0; 0 is uniform, ~1 is typical of tenants and keys. */
  exponent: number;
  /** Random adjacent rank swaps per step (0: no random walk). */
  swapsPerStep?: number;
  /** Every this many steps every item moves one rank down, the coldest becoming the hottest. */
  rotateEverySteps?: number;
}

/** Most items a popularity vector may hold; sampling and drift are linear or log in it. */
export const MAX_ZIPF_ITEMS = 10_000_000;

export class ZipfDrift {
  /** rankOf[item] = its rank, 0 = hottest. */
  private readonly rankOf: Int32Array;
  /** itemAt[rank] = the item holding that rank. */
  private readonly itemAt: Int32Array;
  /** Cumulative weights by rank, for sampling by binary search. */
  private readonly cdf: Float64Array;
  private readonly rankWeight: Float64Array;
  private steps = 0;

  constructor(
    private readonly cfg: ZipfDriftConfig,
    private readonly rng: Rng,
  ) {
    if (!Number.isInteger(cfg.items) || cfg.items < 1 || cfg.items > MAX_ZIPF_ITEMS) {
      throw new WorkloadConfigError('items', `must be an integer in 1..${MAX_ZIPF_ITEMS}`);
    }
    requireNonNegative('exponent', cfg.exponent);
    requireNonNegative('swapsPerStep', cfg.swapsPerStep ?? 0);
    const n = cfg.items;
    this.rankWeight = new Float64Array(n);
    let total = 0;
    for (let r = 0; r < n; r++) total += this.rankWeight[r] = 1 / Math.pow(r + 1, cfg.exponent);
    this.cdf = new Float64Array(n);
    let acc = 0;
    for (let r = 0; r < n; r++) {
      this.rankWeight[r] = (this.rankWeight[r] as number) / total;
      this.cdf[r] = acc += this.rankWeight[r] as number;
    }
    // The initial ranking is a seeded shuffle, so item 0 is not always the hottest.
    const order = rng.shuffle(Array.from({ length: n }, (_, i) => i));
    this.itemAt = Int32Array.from(order);
    this.rankOf = new Int32Array(n);
    order.forEach((item, r) => (this.rankOf[item] = r));
  }

  get items(): number {
    return this.cfg.items;
  }

  /** Popularity of every item (sums to 1), indexed by item. */
  weights(): Float64Array {
    const w = new Float64Array(this.cfg.items);
    for (let i = 0; i < w.length; i++) w[i] = this.rankWeight[this.rankOf[i] as number] as number;
    return w;
  }

  /** The rank (0 = hottest) of an item now. */
  rank(item: number): number {
    return this.rankOf[item] as number;
  }

  /** One item drawn by current popularity. */
  sample(): number {
    const u = this.rng.next();
    let lo = 0;
    let hi = this.cdf.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.cdf[mid] as number) > u) hi = mid;
      else lo = mid + 1;
    }
    return this.itemAt[lo] as number;
  }

  /** Advances the drift by one step. */
  step(): void {
    this.steps++;
    const n = this.cfg.items;
    const swaps = this.cfg.swapsPerStep ?? 0;
    for (let s = 0; s < swaps && n > 1; s++) {
      const r = this.rng.int(n - 1);
      this.swapRanks(r, r + 1);
    }
    const every = this.cfg.rotateEverySteps;
    if (every !== undefined && every > 0 && this.steps % every === 0) this.rotate();
  }

  private swapRanks(r1: number, r2: number): void {
    const a = this.itemAt[r1] as number;
    const b = this.itemAt[r2] as number;
    this.itemAt[r1] = b;
    this.itemAt[r2] = a;
    this.rankOf[a] = r2;
    this.rankOf[b] = r1;
  }

  private rotate(): void {
    const n = this.cfg.items;
    const last = this.itemAt[n - 1] as number;
    this.itemAt.copyWithin(1, 0, n - 1);
    this.itemAt[0] = last;
    for (let r = 0; r < n; r++) this.rankOf[this.itemAt[r] as number] = r;
  }
}
