// LeCaR (Vietri et al., HotStorage'18, "Driving Cache Replacement with ML-based LeCaR"): one
// set of resident keys ordered by two experts, LRU and LFU. On eviction it draws an expert at
// random by weight and evicts that expert's victim into the expert's history (a FIFO of
// evicted keys). A later miss on a key found in an expert's history is that expert's regret:
// its weight shrinks by exp(-learningRate * d^t), where t is the number of requests since the
// eviction and d = 0.005^(1/N) for a cache of N entries, so a mistake noticed late counts
// little. Follows the authors' code (sylab/LeCaR): weights kept within [0.01, 0.99], no history
// entry when both experts name the same victim, and a key readmitted from a history keeps its
// old count plus one in the LFU expert.
//
// The experts are the LruCache and LfuCache of this folder, kept in step (same keys, same
// sizes), so LeCaR decides only whose victim goes. Its own pool and index hold the resident
// keys (tag RESIDENT, on no list) and the history entries (on one history list each).
import { CacheBase } from './base.ts';
import { LfuCache } from './lfu.ts';
import { LruCache } from './queue.ts';
import { NIL, SlotList } from './slots.ts';
import { CachePolicyError, type CachePolicyOptions } from './types.ts';

const RESIDENT = 1;
const HISTORY_LRU = 2;
const HISTORY_LFU = 3;

export const LECAR_DEFAULTS = {
  learningRate: 0.45,
  historyRatio: 1,
  initialLruWeight: 0.5,
  seed: 0,
} as const;

/** The regret of a history hit one cache's worth of requests (N) after the eviction: d^N. */
const REGRET_AFTER_N = 0.005;
/** Neither weight goes below this, so the learner can swing back after a phase change. */
const WEIGHT_MIN = 0.01;

export class LecarCache<K> extends CacheBase<K> {
  readonly name = 'lecar' as const;
  private readonly lru: LruCache<K>;
  private readonly lfu: LfuCache<K>;
  private readonly historyLru = new SlotList(this.pool);
  private readonly historyLfu = new SlotList(this.pool);
  /** Each history's bound, in the cache's unit. */
  private readonly historyUnits: number;
  private readonly learningRate: number;
  private readonly initialLruWeight: number;
  private readonly seed: number | undefined;
  private random: () => number;
  /** Request number at which each history slot was evicted (indexed by slot). */
  private evictedAt = new Float64Array(64);
  private wLru: number;
  private requests = 0;

  constructor(capacity: number, opts: CachePolicyOptions = {}) {
    super(capacity, opts);
    const d = LECAR_DEFAULTS;
    const learningRate = opts.learningRate ?? d.learningRate;
    const historyRatio = opts.historyRatio ?? d.historyRatio;
    const initialLruWeight = opts.initialLruWeight ?? d.initialLruWeight;
    const seed = opts.seed ?? d.seed;
    checkRange('learningRate', learningRate, 0, Infinity, false);
    checkRange('historyRatio', historyRatio, 0, Infinity, true);
    checkRange('initialLruWeight', initialLruWeight, 0, 1, true);
    if (opts.random !== undefined && opts.seed !== undefined) {
      throw new CachePolicyError('seed', 'exclusive', 'give either seed or random, not both');
    }
    if (!Number.isInteger(seed)) {
      throw new CachePolicyError('seed', 'integer', `seed must be an integer, got ${seed}`);
    }
    const expertOpts = { unit: this.unit, denseKeys: opts.denseKeys };
    this.lru = new LruCache<K>(capacity, expertOpts);
    this.lfu = new LfuCache<K>(capacity, expertOpts);
    this.historyUnits = capacity * historyRatio;
    this.learningRate = learningRate;
    this.initialLruWeight = clampWeight(initialLruWeight);
    this.wLru = this.initialLruWeight;
    this.seed = opts.random ? undefined : seed;
    this.random = opts.random ?? mulberry32(seed);
  }

  get used(): number {
    return this.lru.used;
  }
  get count(): number {
    return this.lru.count;
  }
  /** The experts' current weights (they sum to 1): the chance each one picks the victim. */
  get weights(): { lru: number; lfu: number } {
    return { lru: this.wLru, lfu: 1 - this.wLru };
  }

  /** Space held by each expert's history, in the cache's unit (at most capacity × historyRatio). */
  get history(): { lru: number; lfu: number } {
    return { lru: this.historyLru.used, lfu: this.historyLfu.used };
  }
  /** The LFU expert's count for a resident key (0 when absent). */
  frequency(key: K): number {
    return this.lfu.frequency(key);
  }

  access(key: K, sizeBytes?: number): boolean {
    this.requests++;
    const s = this.index.get(key);
    if (s !== NIL && this.pool.tag[s] === RESIDENT) {
      this.lru.access(key);
      this.lfu.access(key);
      return true;
    }
    const startFreq = s === NIL ? 1 : this.learnFrom(s) + 1;
    const size = this.sizeOf(sizeBytes);
    if (size > this.capacity) return false;
    while (this.lru.used + size > this.capacity) this.evictOne();
    // Admit first: the pool may grow, which replaces its arrays.
    const slot = this.admit(key, size);
    this.pool.tag[slot] = RESIDENT;
    this.lru.access(key, size);
    this.lfu.accessFrom(key, size, startFreq);
    return false;
  }

  /**
   * A miss on a history entry: lowers the weight of the expert that evicted the key, forgets
   * the entry and returns the key's frequency when it was evicted.
   */
  private learnFrom(s: number): number {
    const fromLru = this.pool.tag[s] === HISTORY_LRU;
    const t = this.requests - this.evictedAt[s]!;
    // N is the number of resident entries: the capacity in object mode once the cache has
    // filled (as in the paper), and the same notion of "one cache's worth" in byte mode.
    const regret = REGRET_AFTER_N ** (t / Math.max(1, this.lru.count));
    const shrink = Math.exp(-this.learningRate * regret);
    const wLru = fromLru ? this.wLru * shrink : this.wLru;
    const wLfu = fromLru ? 1 - this.wLru : (1 - this.wLru) * shrink;
    this.wLru = clampWeight(wLru / (wLru + wLfu));
    const freq = this.pool.count[s]!;
    (fromLru ? this.historyLru : this.historyLfu).remove(s);
    this.drop(s);
    return freq;
  }

  /** Evicts one resident key, chosen by the experts' weights, into that expert's history. */
  private evictOne(): void {
    const byLru = this.lru.victim() as K;
    const byLfu = this.lfu.victim() as K;
    const agree = byLru === byLfu;
    const useLru = agree || this.random() < this.wLru;
    const victim = useLru ? byLru : byLfu;
    const freq = this.lfu.frequency(victim);
    this.lru.delete(victim);
    this.lfu.delete(victim);
    const s = this.index.get(victim);
    if (agree) {
      // Either expert would have done it, so a later miss on it is nobody's regret.
      this.drop(s);
      return;
    }
    const history = useLru ? this.historyLru : this.historyLfu;
    this.pool.tag[s] = useLru ? HISTORY_LRU : HISTORY_LFU;
    this.pool.count[s] = freq;
    this.stampEviction(s);
    history.pushFront(s);
    while (history.used > this.historyUnits) {
      const oldest = history.tail;
      history.remove(oldest);
      this.drop(oldest);
    }
  }

  private stampEviction(s: number): void {
    if (s >= this.evictedAt.length) {
      const grown = new Float64Array(Math.max(s + 1, this.evictedAt.length * 2));
      grown.set(this.evictedAt);
      this.evictedAt = grown;
    }
    this.evictedAt[s] = this.requests;
  }

  protected isResident(s: number): boolean {
    return this.pool.tag[s] === RESIDENT;
  }
  protected unlink(s: number): void {
    const tag = this.pool.tag[s];
    if (tag === RESIDENT) {
      const key = this.pool.key(s);
      this.lru.delete(key);
      this.lfu.delete(key);
    } else {
      (tag === HISTORY_LRU ? this.historyLru : this.historyLfu).remove(s);
    }
  }
  protected reset(): void {
    this.lru.clear();
    this.lfu.clear();
    this.historyLru.clear();
    this.historyLfu.clear();
    this.wLru = this.initialLruWeight;
    this.requests = 0;
    // A seeded policy replays exactly after clear(); an injected source is the caller's.
    if (this.seed !== undefined) this.random = mulberry32(this.seed);
  }
}

function clampWeight(w: number): number {
  return Math.min(1 - WEIGHT_MIN, Math.max(WEIGHT_MIN, w));
}

function checkRange(field: string, v: number, lo: number, hi: number, loInclusive: boolean): void {
  const ok = Number.isFinite(v) && (loInclusive ? v >= lo : v > lo) && v <= hi;
  if (!ok) {
    const bound = `${loInclusive ? '>=' : '>'} ${lo}${hi < Infinity ? ` and <= ${hi}` : ''}`;
    throw new CachePolicyError(field, 'range', `${field} must be finite and ${bound}, got ${v}`);
  }
}

/** A tiny seeded PRNG (mulberry32): policies/ may not import envs/core's Rng. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
