// One constructor for every policy name, for callers that get the name from a knob value.
import { ArcCache } from './arc.ts';
import { LecarCache } from './lecar.ts';
import { LfuCache } from './lfu.ts';
import { FifoCache, LruCache } from './queue.ts';
import { S3FifoCache } from './s3fifo.ts';
import { SieveCache } from './sieve.ts';
import {
  ALL_CACHE_POLICY_NAMES,
  CachePolicyError,
  isAnyCachePolicyName,
  type AnyCachePolicyName,
  type CachePolicy,
  type CachePolicyOptions,
  type VictimPolicy,
} from './types.ts';

type Ctor = new <K>(capacity: number, opts?: CachePolicyOptions) => CachePolicy<K>;

const CONSTRUCTORS: Record<AnyCachePolicyName, Ctor> = {
  lru: LruCache,
  fifo: FifoCache,
  lfu: LfuCache,
  arc: ArcCache,
  sieve: SieveCache,
  s3fifo: S3FifoCache,
  lecar: LecarCache,
};

/** Policies that can name their next victim (the experts a LeCaR-style learner chooses among). */
export const VICTIM_POLICY_NAMES = ['lru', 'fifo', 'lfu'] as const;
export type VictimPolicyName = (typeof VICTIM_POLICY_NAMES)[number];

/**
 * Builds a policy by name (a knob value or a learned policy); throws CachePolicyError naming
 * the field for an unknown name.
 */
export function createCachePolicy<K>(
  name: string,
  capacity: number,
  opts: CachePolicyOptions = {},
): CachePolicy<K> {
  if (!isAnyCachePolicyName(name)) {
    throw new CachePolicyError(
      'policy',
      'enum',
      `cache policy must be one of ${ALL_CACHE_POLICY_NAMES.join(', ')}, got ${name}`,
    );
  }
  return new CONSTRUCTORS[name]<K>(capacity, opts);
}

export function createVictimPolicy<K>(
  name: VictimPolicyName,
  capacity: number,
  opts: CachePolicyOptions = {},
): VictimPolicy<K> {
  switch (name) {
    case 'lru':
      return new LruCache<K>(capacity, opts);
    case 'fifo':
      return new FifoCache<K>(capacity, opts);
    case 'lfu':
      return new LfuCache<K>(capacity, opts);
  }
}
