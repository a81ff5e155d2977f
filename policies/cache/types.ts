// The one interface every cache eviction policy implements. The same objects run in the trace
// replay simulator (dense integer keys, capacity in objects), as the live file service's read
// cache (string keys, capacity in bytes) and as ghost caches in shadow mode, so nothing here
// knows about traces, clocks or simulators.

/**
 * The policy names, in the knob catalog's order. Kept here rather than imported from knobs/
 * because policies/ is the ground floor; a test checks the two lists are equal.
 */
export const CACHE_POLICY_NAMES = ['lru', 'fifo', 'lfu', 'arc', 'sieve', 's3fifo'] as const;
export type CachePolicyName = (typeof CACHE_POLICY_NAMES)[number];

/**
 * Policies that learn online. The factory builds them, but they are not knob values until the
 * catalog lists them (moving a name from here to CACHE_POLICY_NAMES does that).
 */
export const LEARNED_CACHE_POLICY_NAMES = ['lecar'] as const;
export type LearnedCachePolicyName = (typeof LEARNED_CACHE_POLICY_NAMES)[number];

/** Every name createCachePolicy accepts. */
export const ALL_CACHE_POLICY_NAMES = [
  ...CACHE_POLICY_NAMES,
  ...LEARNED_CACHE_POLICY_NAMES,
] as const;
export type AnyCachePolicyName = CachePolicyName | LearnedCachePolicyName;

/**
 * objects: every entry counts 1 toward capacity; bytes: every entry counts its size, and at
 * least 1, so even empty objects take space and a cache never holds more entries than its
 * capacity.
 */
export type CacheUnit = 'objects' | 'bytes';

/** What an entry of sizeBytes counts toward capacity in a unit (see CacheUnit). */
export function entryUnits(unit: CacheUnit, sizeBytes: number): number {
  return unit === 'objects' || sizeBytes < 1 ? 1 : sizeBytes;
}

export interface CachePolicy<K> {
  readonly name: AnyCachePolicyName;
  /** Capacity in `unit`s. */
  readonly capacity: number;
  readonly unit: CacheUnit;
  /** Space taken by resident entries, in `unit`s. */
  readonly used: number;
  /** Number of resident entries (ghost entries are not counted). */
  readonly count: number;
  /**
   * One request: returns true on a hit. On a miss the key is admitted (evicting as the policy
   * decides) unless it is larger than the policy admits. `sizeBytes` is ignored in object mode;
   * a resident entry keeps the size it was admitted with (delete it first to resize).
   */
  access(key: K, sizeBytes?: number): boolean;
  /** Whether the key is resident; changes no state. */
  has(key: K): boolean;
  /** What a resident entry counts toward capacity (its admitted size), else undefined. */
  residentSize(key: K): number | undefined;
  /** Drops a resident (or ghost) entry without counting a request; returns whether it was there. */
  delete(key: K): boolean;
  /** Forgets everything, ghosts and adaptive state included. */
  clear(): void;
}

/**
 * A policy that can name its next victim without evicting it: the experts of a LeCaR-style
 * learner, which picks whose victim to evict.
 */
export interface VictimPolicy<K> extends CachePolicy<K> {
  /** The key the next eviction would remove, or undefined when the cache is empty. */
  victim(): K | undefined;
}

export interface CachePolicyOptions {
  /** Default 'objects'. */
  unit?: CacheUnit;
  /**
   * Keys are dense non-negative integers (trace ids): index them with a flat array instead of
   * a Map. Only valid when K is number.
   */
  denseKeys?: boolean;
  /** S3-FIFO: fraction of the capacity given to the small FIFO (default 0.1). */
  smallRatio?: number;
  /** S3-FIFO: ghost FIFO size as a fraction of the capacity (default 0.9). */
  ghostRatio?: number;
  /** S3-FIFO: accesses in the small FIFO needed to move to the main FIFO (default 2). */
  moveToMainThreshold?: number;
  /** LeCaR: learning rate of the expert weights (default 0.45, the paper's). */
  learningRate?: number;
  /** LeCaR: each expert's eviction history holds this fraction of the capacity (default 1). */
  historyRatio?: number;
  /** LeCaR: starting weight of the LRU expert; LFU gets the rest (default 0.5). */
  initialLruWeight?: number;
  /** LeCaR: seed of its own PRNG that picks the expert (default 0); exclusive with random. */
  seed?: number;
  /** LeCaR: an injected uniform source in [0, 1) instead of the seeded PRNG. */
  random?: () => number;
}

/** Bad configuration of a cache policy: names the field and the rule it broke. */
export class CachePolicyError extends Error {
  constructor(
    readonly field: string,
    readonly rule: string,
    message: string,
  ) {
    super(message);
    this.name = 'CachePolicyError';
  }
}

export function isCachePolicyName(name: string): name is CachePolicyName {
  return (CACHE_POLICY_NAMES as readonly string[]).includes(name);
}

/** Whether createCachePolicy builds this name (knob values and learned policies). */
export function isAnyCachePolicyName(name: string): name is AnyCachePolicyName {
  return (ALL_CACHE_POLICY_NAMES as readonly string[]).includes(name);
}
