// The cache experiment on a cache trace (default: the CloudPhysics block trace).
//
// 1. cache-memory: tune files.cache_bytes and files.cache_policy under a memory cost. The
//    objective is cost = miss_ratio + MEMORY_PRICE_PER_GIB × cache GiB: a GiB of cache is worth
//    20 points of miss ratio. On CloudPhysics (2 GB footprint in bytes) that puts the optimum
//    inside the domain, around 0.5–1 GiB, where the policy matters (ARC and LFU keep far more of
//    the reused blocks than LRU there); a cache above the footprint only pays for memory.
//    Sizes below 1 MiB (under 256 blocks) are left out of the search: the miss ratio is flat
//    near 1 there and the catalog's log scale would spend more than half the domain on them.
// 2. cache-policies-1pct / -10pct: every policy at a fixed size of 1% and 10% of the trace's
//    distinct keys, counted in objects as libCacheSim does (489 and 4,897 on CloudPhysics,
//    where the simulator reproduces libCacheSim's table), with Belady's MIN as the oracle and
//    the adaptive LeCaR policy (online regret learning between LRU and LFU) as the learner;
//    LeCaR draws its expert at random, so each seed seeds its generator.
import {
  cacheKnobObjective,
  replayTrace,
  simulateCache,
  type ReplayResult,
} from '../../envs/cache/index.ts';
import { LecarCache } from '../../policies/cache/index.ts';
import type { CacheTrace } from '../../envs/loaders/cache-trace.ts';
import { CACHE_POLICIES } from '../../knobs/index.ts';
import { reshapeKnob, withDerivedMetric } from '../objectives.ts';
import type { ComparisonStudySpec, EntrySpec, ExperimentSpec } from '../spec.ts';
import { STANDARD_TUNERS, TUNER_CLAIMS } from './tuners.ts';

/** Miss-ratio points one GiB of cache costs. */
export const MEMORY_PRICE_PER_GIB = 0.2;
const GIB = 2 ** 30;
const MIB = 2 ** 20;

function cacheCostObjective(trace: CacheTrace) {
  return withDerivedMetric(cacheKnobObjective({ trace }), 'cost', 'min', (m, values) => {
    const gib = (values['files.cache_bytes'] as number) / GIB;
    return { cache_gib: gib, cost: (m['miss_ratio'] as number) + MEMORY_PRICE_PER_GIB * gib };
  });
}

const capacityOf = (trace: CacheTrace, fraction: number): number =>
  Math.max(1, Math.floor(trace.keyCount * fraction));

const replayMetrics = (r: ReplayResult) => ({
  miss_ratio: r.miss_ratio,
  hit_ratio: r.hit_ratio,
  capacity_objects: r.capacity,
});

/** A fixed policy (or Belady): a deterministic replay, the same for every seed. */
function policyEntry(policy: string, fraction: number): EntrySpec<CacheTrace> {
  return {
    name: policy,
    kind: policy === 'belady' ? 'oracle' : 'baseline',
    seedInvariant: true,
    run: (trace) =>
      replayMetrics(simulateCache(trace, policy, capacityOf(trace, fraction), { unit: 'objects' })),
  };
}

function lecarEntry(fraction: number): EntrySpec<CacheTrace> {
  return {
    name: 'lecar',
    kind: 'learner',
    run: (trace, seed) => {
      const cache = new LecarCache<number>(capacityOf(trace, fraction), {
        unit: 'objects',
        denseKeys: true,
        seed,
      });
      return replayMetrics(replayTrace(trace, cache));
    },
  };
}

function fixedSizeStudy(fraction: number, label: string): ComparisonStudySpec<CacheTrace> {
  return {
    type: 'comparison',
    name: `cache-policies-${label}`,
    title: `Cache policies at ${label.replace('pct', '%')} of distinct keys (objects)`,
    metric: 'miss_ratio',
    direction: 'min',
    note:
      `Capacity = ${fraction * 100}% of the trace's distinct keys, every object counted as 1 ` +
      `(as libCacheSim's reference table). The oracle is Belady's MIN; "gap to oracle" is ` +
      `relative, result.json also holds it in miss-ratio points (gap_to_oracle_abs).`,
    entries: [
      ...CACHE_POLICIES.map((p) => policyEntry(p, fraction)),
      lecarEntry(fraction),
      policyEntry('belady', fraction),
    ],
    comparisons: [{ type: 'beats-best-of', entry: 'lecar', others: ['lru', 'lfu'] }],
  };
}

export const cacheExperiment: ExperimentSpec<CacheTrace> = {
  name: 'cache',
  title: 'Cache: size and policy under a memory cost; every policy against Belady',
  workload: {
    kind: 'cache',
    default: { path: '../shared/traces/cache/cloudphysics.csv', format: 'csv' },
    description: 'whole trace replayed from an empty cache (quick: its first 5,000 requests)',
    load: (t) => {
      if (t?.kind !== 'cache') throw new RangeError('cache experiment: needs a cache trace');
      return t.trace;
    },
  },
  defaults: { seeds: 5, budget: 50 },
  quick: { seeds: 2, budget: 12 },
  studies: [
    {
      type: 'tuning',
      name: 'cache-memory',
      title: 'Cache size and policy under a memory cost',
      unit: 'miss ratio + price × GiB',
      note:
        `cost = miss_ratio + ${MEMORY_PRICE_PER_GIB} × cache GiB (a GiB of cache is worth ` +
        `${MEMORY_PRICE_PER_GIB * 100} points of miss ratio); byte-sized cache when the trace ` +
        `has sizes, else 4 KiB per object. The replay is deterministic, so no held-out seeds.`,
      objective: (trace) => cacheCostObjective(trace),
      space: (o) => reshapeKnob(o.knobs, 'files.cache_bytes', { min: MIB }),
      trainSeeds: [1],
      baselines: CACHE_POLICIES.map((p) => ({
        name: `${p}@64MiB`,
        values: { 'files.cache_policy': p, 'files.cache_bytes': 64 * MIB },
      })),
      learners: STANDARD_TUNERS,
      oracle: { type: 'grid', pointsPerNumeric: 57, quickPointsPerNumeric: 9 },
      comparisons: TUNER_CLAIMS,
    },
    fixedSizeStudy(0.01, '1pct'),
    fixedSizeStudy(0.1, '10pct'),
  ],
};
