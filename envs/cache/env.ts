// A Gymnasium-style env whose decision point is eviction, after LeCaR (Vietri et al.,
// HotStorage'18): the cache holds one set of keys tracked by several expert policies (LRU and
// LFU by default); on a miss with a full cache the action picks whose victim is evicted. The
// reward is the number of hits until the next decision, so an agent learns which expert
// fits the workload at this moment. The experts are the very policy objects of
// policies/cache; the env only keeps them in step. A trace's invalidations (writes) drop the
// key from every expert, as the live cache does, and are neither requests nor decisions.
import {
  createVictimPolicy,
  entryUnits,
  VICTIM_POLICY_NAMES,
  type CacheUnit,
  type VictimPolicy,
  type VictimPolicyName,
} from '../../policies/cache/index.ts';
import {
  box,
  createRng,
  discrete,
  type BoxSpace,
  type DiscreteSpace,
  type Env,
  type Rng,
  type StepResult,
} from '../core/index.ts';
import type { CacheTrace } from '../loaders/cache-trace.ts';

export interface CacheEnvOptions {
  trace: CacheTrace;
  /** In objects, or bytes with unit 'bytes' (the trace must then carry sizes). */
  capacity: number;
  unit?: CacheUnit;
  /** Action i evicts experts[i]'s victim. Default ['lru', 'lfu'] as in LeCaR. */
  experts?: readonly VictimPolicyName[];
  /**
   * Trace entries per episode (requests and invalidations); each reset replays a window of this
   * length at a seeded offset. Default: the whole trace.
   */
  episodeRequests?: number;
  /** Decisions per episode before it is truncated. Default: no limit but the episode's end. */
  maxSteps?: number;
}

/** Smoothing of the recent hit ratio feature (about the last 100 requests). */
const RECENT_ALPHA = 0.01;

export class CacheEvictionEnv implements Env<number[], number> {
  readonly id = 'cache-eviction-v1';
  readonly observationSpace: BoxSpace;
  readonly actionSpace: DiscreteSpace;
  private readonly experts: VictimPolicy<number>[];
  private readonly trace: CacheTrace;
  private readonly capacity: number;
  private readonly unit: CacheUnit;
  private readonly episodeRequests: number;
  private readonly maxSteps: number;
  private rng: Rng = createRng(0);
  private readonly lastUse: Int32Array;
  private readonly uses: Int32Array;
  private start = 0;
  private end = 0;
  private pos = 0;
  private steps = 0;
  private requests = 0;
  private hits = 0;
  private recentHitRatio = 0;
  /** Whether the request at pos waits for an eviction decision. */
  private pending = false;
  /** Whether the request waiting on a decision is a hit (a resident key at another size). */
  private pendingHit = false;

  constructor(opts: CacheEnvOptions) {
    const n = opts.trace.keys.length;
    this.trace = opts.trace;
    this.capacity = opts.capacity;
    this.unit = opts.unit ?? 'objects';
    if (this.unit === 'bytes' && !opts.trace.sizes) {
      throw new RangeError(`byte mode needs request sizes, and ${opts.trace.source} has none`);
    }
    const names = opts.experts ?? ['lru', 'lfu'];
    if (names.length < 1 || names.some((e) => !VICTIM_POLICY_NAMES.includes(e))) {
      throw new RangeError(`experts must be a non-empty list of ${VICTIM_POLICY_NAMES.join(', ')}`);
    }
    this.experts = names.map((e) =>
      createVictimPolicy<number>(e, opts.capacity, { unit: this.unit, denseKeys: true }),
    );
    this.episodeRequests = Math.min(opts.episodeRequests ?? n, n);
    if (!(this.episodeRequests >= 1)) throw new RangeError('episodeRequests must be >= 1');
    this.maxSteps = opts.maxSteps ?? Infinity;
    this.lastUse = new Int32Array(opts.trace.keyCount);
    this.uses = new Int32Array(opts.trace.keyCount);
    this.actionSpace = discrete(names.length);
    this.observationSpace = box([5 + 2 * names.length], 0, 1);
  }

  reset(opts: { seed?: number } = {}): { obs: number[]; info: Record<string, unknown> } {
    if (opts.seed !== undefined) this.rng = createRng(opts.seed);
    for (const e of this.experts) e.clear();
    this.lastUse.fill(-1);
    this.uses.fill(0);
    const slack = this.trace.keys.length - this.episodeRequests;
    this.start = slack > 0 ? this.rng.int(slack + 1) : 0;
    this.end = this.start + this.episodeRequests;
    this.pos = this.start;
    this.steps = 0;
    this.requests = 0;
    this.hits = 0;
    this.recentHitRatio = 0;
    this.advance();
    return { obs: this.observe(), info: this.info() };
  }

  step(action: number): StepResult<number[]> {
    if (!Number.isInteger(action) || action < 0 || action >= this.experts.length) {
      throw new RangeError(
        `action must be an integer in [0, ${this.experts.length}), got ${action}`,
      );
    }
    const hitsBefore = this.hits;
    if (this.pending) {
      this.evictFor(this.unitsAt(this.pos), this.experts[action]!);
      this.serve(this.pos++, this.pendingHit);
      this.pending = false;
      this.steps++;
    }
    this.advance();
    const terminated = !this.pending;
    return {
      obs: this.observe(),
      reward: this.hits - hitsBefore,
      terminated,
      truncated: !terminated && this.steps >= this.maxSteps,
      info: this.info(),
    };
  }

  /** Replays requests until one needs an eviction decision or the episode ends. */
  private advance(): void {
    const lead = this.experts[0]!;
    const inv = this.trace.invalidations;
    while (this.pos < this.end) {
      const key = this.trace.keys[this.pos]!;
      if (inv !== undefined && inv[this.pos] === 1) {
        // Only a resident entry goes, as in the live cache: ghost history stays.
        for (const e of this.experts) if (e.has(key)) e.delete(key);
        this.pos++;
        continue;
      }
      const hit = lead.has(key);
      const size = this.unitsAt(this.pos);
      // A resident key requested at another size is a hit whose entry is admitted again at
      // the new size, evicting as it must (replay.ts resizedHit): kept at its first size, the
      // experts charged the old size and the cache held more than its capacity.
      const resized = hit && lead.residentSize(key) !== size;
      if (resized) for (const e of this.experts) e.delete(key);
      if ((!hit || resized) && size <= this.capacity && lead.used + size > this.capacity) {
        this.pending = true;
        this.pendingHit = hit;
        return;
      }
      this.serve(this.pos++, hit);
    }
    this.pending = false;
  }

  private evictFor(size: number, chooser: VictimPolicy<number>): void {
    while (chooser.used + size > this.capacity) {
      const victim = chooser.victim()!;
      for (const e of this.experts) e.delete(victim);
    }
  }

  private serve(i: number, hit: boolean): void {
    const key = this.trace.keys[i]!;
    const size = this.sizeAt(i);
    for (const e of this.experts) e.access(key, size);
    this.requests++;
    if (hit) this.hits++;
    this.recentHitRatio += RECENT_ALPHA * ((hit ? 1 : 0) - this.recentHitRatio);
    this.lastUse[key] = i;
    this.uses[key]!++;
  }

  private sizeAt(i: number): number {
    return this.trace.sizes ? this.trace.sizes[i]! : 1;
  }

  /** What request i's object counts toward capacity. */
  private unitsAt(i: number): number {
    return entryUnits(this.unit, this.sizeAt(i));
  }

  /**
   * [hit ratio so far, recent hit ratio, episode progress, missing key seen before,
   * experts agree, then per expert: its victim's age and use count, squashed into [0, 1)].
   */
  private observe(): number[] {
    const obs = [
      this.requests > 0 ? this.hits / this.requests : 0,
      this.recentHitRatio,
      (this.pos - this.start) / this.episodeRequests,
      0,
      0,
    ];
    const victims = this.experts.map((e) => (this.pending ? e.victim() : undefined));
    if (this.pending) {
      obs[3] = this.lastUse[this.trace.keys[this.pos]!]! >= 0 ? 1 : 0;
      obs[4] = victims.every((v) => v === victims[0]) ? 1 : 0;
    }
    // Ages are scaled by the cache's population so the feature means the same at any size.
    const scale = Math.max(1, this.experts[0]!.count);
    for (const v of victims) {
      const age = v === undefined ? 0 : this.pos - this.lastUse[v]!;
      const uses = v === undefined ? 0 : this.uses[v]!;
      obs.push(age / (age + scale), uses / (uses + 1));
    }
    return obs;
  }

  private info(): Record<string, unknown> {
    return {
      requests: this.requests,
      hits: this.hits,
      hit_ratio: this.requests > 0 ? this.hits / this.requests : 0,
      decisions: this.steps,
      episode_start: this.start,
      episode_end: this.end,
      position: this.pos,
    };
  }
}
