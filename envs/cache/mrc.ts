// The LRU miss-ratio curve at every cache size in one pass (Mattson et al. 1970): LRU has the
// inclusion property, so a request hits in an LRU cache of size C exactly when its stack
// distance (the space taken by the distinct keys used since its previous request, itself
// included) is at most C. Distances come from a Fenwick tree over request times holding, at
// each key's latest request, that key's size; a request's distance is a range sum.
//
// Object mode is exact for every trace. Byte mode is exact when every key keeps one size and
// no request is larger than the capacity asked about (an LRU cache does not admit an object
// bigger than itself, which breaks inclusion); each point says whether that held.
//
// A trace with invalidations (writes) is refused: a deletion breaks inclusion too (an LRU
// cache of 1 that read a then b and dropped b holds nothing, not a), so no stack distance is
// exact; replay each size with simulateCache instead.
import { entryUnits, type CacheUnit } from '../../policies/cache/index.ts';
import type { CacheTrace } from '../loaders/cache-trace.ts';
import { refuseInvalidations, segmentOf, type ReplayOptions } from './result.ts';

export interface MrcPoint {
  capacity: number;
  requests: number;
  hits: number;
  hit_ratio: number;
  miss_ratio: number;
  byte_hit_ratio: number;
  /** Whether this point equals a separate LRU run (always in object mode; see above). */
  exact: boolean;
}

/** Fenwick (binary indexed) tree over positions 1..n of Float64 weights. */
class Fenwick {
  private readonly t: Float64Array;
  constructor(private readonly n: number) {
    this.t = new Float64Array(n + 1);
  }
  add(i: number, v: number): void {
    for (; i <= this.n; i += i & -i) this.t[i]! += v;
  }
  /** Sum of positions 1..i. */
  prefix(i: number): number {
    let s = 0;
    for (; i > 0; i -= i & -i) s += this.t[i]!;
    return s;
  }
}

export interface StackDistances {
  /** Stack distance of each request in the cache's unit; Infinity for a first request. */
  distances: Float64Array;
  /** Bytes of each request (1 when the trace has no sizes). */
  bytes: Float64Array;
  /** Whether every key kept one size throughout (always true in object mode). */
  fixedSizes: boolean;
  /** The largest entry size seen, in the cache's unit. */
  maxSize: number;
}

export function lruStackDistances(trace: CacheTrace, opts: ReplayOptions = {}): StackDistances {
  const unit: CacheUnit = opts.unit ?? 'objects';
  if (unit === 'bytes' && !trace.sizes) {
    throw new RangeError(`byte mode needs request sizes, and ${trace.source} has none`);
  }
  const [start, end] = segmentOf(trace, opts);
  refuseInvalidations(
    trace,
    [start, end],
    'the one-pass LRU miss-ratio curve',
    'a deletion breaks the inclusion property stack distances rest on; replay each size with simulateCache',
  );
  const n = end - start;
  const tree = new Fenwick(n);
  const last = new Int32Array(trace.keyCount).fill(-1);
  const sizeOfKey = new Float64Array(trace.keyCount);
  const distances = new Float64Array(n);
  const bytes = new Float64Array(n);
  let fixedSizes = true;
  let maxSize = 0;
  for (let i = 0; i < n; i++) {
    const k = trace.keys[start + i]!;
    const b = trace.sizes ? trace.sizes[start + i]! : 1;
    const size = entryUnits(unit, b);
    bytes[i] = b;
    if (size > maxSize) maxSize = size;
    const p = last[k]!;
    if (p < 0) {
      distances[i] = Infinity;
    } else {
      if (sizeOfKey[k] !== size) fixedSizes = false;
      // Keys used strictly between the two requests, plus this key itself.
      distances[i] = tree.prefix(i) - tree.prefix(p + 1) + size;
      tree.add(p + 1, -sizeOfKey[k]!);
    }
    tree.add(i + 1, size);
    sizeOfKey[k] = size;
    last[k] = i;
  }
  return { distances, bytes, fixedSizes, maxSize };
}

/**
 * Hits of an LRU cache at each capacity, from one pass over the trace. Capacities are in the
 * unit (objects, or bytes with `unit: 'bytes'`).
 */
export function lruMissRatioCurve(
  trace: CacheTrace,
  capacities: readonly number[],
  opts: ReplayOptions = {},
): MrcPoint[] {
  const sd = lruStackDistances(trace, opts);
  const n = sd.distances.length;
  // Sort requests by distance once; each capacity is then a binary search into prefix sums.
  const order = Uint32Array.from({ length: n }, (_, i) => i).sort(
    (a, b) => sd.distances[a]! - sd.distances[b]! || a - b,
  );
  const sorted = new Float64Array(n);
  const bytesUpTo = new Float64Array(n + 1);
  for (let j = 0; j < n; j++) {
    const i = order[j]!;
    sorted[j] = sd.distances[i]!;
    bytesUpTo[j + 1] = bytesUpTo[j]! + sd.bytes[i]!;
  }
  const totalBytes = bytesUpTo[n]!;
  return capacities.map((capacity) => {
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (sorted[mid]! <= capacity) lo = mid + 1;
      else hi = mid;
    }
    const hits = lo;
    const exact = opts.unit !== 'bytes' || (sd.fixedSizes && sd.maxSize <= capacity);
    return {
      capacity,
      requests: n,
      hits,
      hit_ratio: hits / n,
      miss_ratio: 1 - hits / n,
      byte_hit_ratio: totalBytes > 0 ? bytesUpTo[hits]! / totalBytes : 0,
      exact,
    };
  });
}
