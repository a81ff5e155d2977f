// Load imbalance of a placement: max shard load / mean shard load - 1. Zero when perfectly
// balanced; 1 means the hottest shard carries twice the average. Chosen over the coefficient
// of variation because capacity is bought for the hottest shard: max/mean is what it costs.
import { shardOf } from './hash.ts';
import type { GroupView, PlacementMap } from './types.ts';

/** Per-shard total load of the groups under a map. */
export function shardLoads(
  groups: readonly Pick<GroupView, 'name' | 'load'>[],
  map: Readonly<PlacementMap>,
  shards: number,
): Float64Array {
  const loads = new Float64Array(shards);
  for (const g of groups) {
    const s = shardOf(map, g.name, shards);
    if (s < 0 || s >= shards)
      throw new RangeError(`group ${g.name}: shard ${s} not in 0..${shards - 1}`);
    loads[s] = (loads[s] as number) + g.load;
  }
  return loads;
}

/** max/mean - 1 of the shard loads; 0 when there is no load at all. */
export function imbalance(loads: ArrayLike<number>): number {
  let max = 0;
  let sum = 0;
  for (let i = 0; i < loads.length; i++) {
    const x = loads[i] as number;
    sum += x;
    if (x > max) max = x;
  }
  if (sum <= 0 || loads.length === 0) return 0;
  return max / (sum / loads.length) - 1;
}

/** Imbalance after moving `load` from shard `from` to shard `to`, without copying twice. */
export function imbalanceAfterMove(
  loads: Float64Array,
  from: number,
  to: number,
  load: number,
): number {
  const next = Float64Array.from(loads);
  next[from] = (next[from] as number) - load;
  next[to] = (next[to] as number) + load;
  return imbalance(next);
}
