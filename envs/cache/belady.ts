// Belady's MIN, the offline optimum for unit-size objects: on a miss with a full cache, evict
// the resident key whose next request is farthest in the future. It needs the future, so it
// takes next-use times precomputed from the trace and lives here rather than in policies/.
// Like libCacheSim's Belady, the missing object is always admitted (no bypass). In byte mode
// it is the same farthest-next-use rule, a heuristic there rather than the optimum.
// Invalidations (writes) end a key's reuse: the request after a write misses whatever the
// cache holds, so a key's next use before a write is NEVER (first to go) and the write drops
// it. That is MIN on the trace where each write gives its key a new name, so still optimal.
import { CachePolicyError, entryUnits, type CacheUnit } from '../../policies/cache/index.ts';
import type { CacheTrace } from '../loaders/cache-trace.ts';
import { makeResult, segmentOf, type ReplayOptions, type ReplayResult } from './result.ts';

/** Next-use time of a request whose key is never requested again. */
export const NEVER = 0x7fffffff;

/**
 * For each request i, the index of the next request for the same key within [start, end), or
 * NEVER when there is none or an invalidation of the key comes first (NEVER for an
 * invalidation itself).
 */
export function nextUseTimes(trace: CacheTrace, start = 0, end = trace.keys.length): Int32Array {
  const next = new Int32Array(end - start);
  const seen = new Int32Array(trace.keyCount).fill(NEVER);
  const inv = trace.invalidations;
  if (inv) {
    for (let i = end - 1; i >= start; i--) {
      const k = trace.keys[i]!;
      const write = inv[i] === 1;
      next[i - start] = write ? NEVER : seen[k]!;
      seen[k] = write ? NEVER : i;
    }
    return next;
  }
  for (let i = end - 1; i >= start; i--) {
    const k = trace.keys[i]!;
    next[i - start] = seen[k]!;
    seen[k] = i;
  }
  return next;
}

/** A binary max-heap of key ids ordered by next use, with each key's position for updates. */
class NextUseHeap {
  private readonly heap: Int32Array;
  private n = 0;
  readonly pos: Int32Array;
  readonly pri: Int32Array;

  constructor(keyCount: number) {
    this.heap = new Int32Array(keyCount);
    this.pos = new Int32Array(keyCount).fill(-1);
    this.pri = new Int32Array(keyCount);
  }

  push(k: number, p: number): void {
    this.pri[k] = p;
    this.heap[this.n] = k;
    this.pos[k] = this.n;
    this.up(this.n++);
  }

  /** Raises a resident key's next use (it only ever moves later). */
  raise(k: number, p: number): void {
    this.pri[k] = p;
    this.up(this.pos[k]!);
  }

  /** Removes a resident key wherever it sits. */
  remove(k: number): void {
    const i = this.pos[k]!;
    this.pos[k] = -1;
    const last = this.heap[--this.n]!;
    if (i === this.n) return;
    this.heap[i] = last;
    this.pos[last] = i;
    this.up(i);
    this.down(this.pos[last]!);
  }

  pop(): number {
    const top = this.heap[0]!;
    this.pos[top] = -1;
    const last = this.heap[--this.n]!;
    if (this.n > 0) {
      this.heap[0] = last;
      this.pos[last] = 0;
      this.down(0);
    }
    return top;
  }

  private up(i: number): void {
    const h = this.heap;
    const k = h[i]!;
    const p = this.pri[k]!;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const pk = h[parent]!;
      if (this.pri[pk]! >= p) break;
      h[i] = pk;
      this.pos[pk] = i;
      i = parent;
    }
    h[i] = k;
    this.pos[k] = i;
  }

  private down(i: number): void {
    const h = this.heap;
    const k = h[i]!;
    const p = this.pri[k]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= this.n) break;
      const r = l + 1;
      const c = r < this.n && this.pri[h[r]!]! > this.pri[h[l]!]! ? r : l;
      const ck = h[c]!;
      if (this.pri[ck]! <= p) break;
      h[i] = ck;
      this.pos[ck] = i;
      i = c;
    }
    h[i] = k;
    this.pos[k] = i;
  }
}

export function simulateBelady(
  trace: CacheTrace,
  capacity: number,
  opts: ReplayOptions = {},
): ReplayResult {
  const unit: CacheUnit = opts.unit ?? 'objects';
  if (!(capacity >= 0) || (unit === 'objects' && !Number.isInteger(capacity))) {
    throw new CachePolicyError(
      'capacity',
      'range',
      `capacity must be >= 0 (an integer in object mode), got ${capacity}`,
    );
  }
  const [start, end] = segmentOf(trace, opts);
  const next = nextUseTimes(trace, start, end);
  const heap = new NextUseHeap(trace.keyCount);
  const stored = new Float64Array(trace.keyCount);
  // Writes take their own loop, so a trace without them keeps this branch-free one.
  if (trace.invalidations) {
    return beladyWithInvalidations(trace, capacity, unit, start, end, next, heap, stored);
  }
  const keys = trace.keys;
  const sizes = trace.sizes;
  let used = 0;
  let hits = 0;
  let bytesRequested = 0;
  let bytesHit = 0;
  for (let i = start; i < end; i++) {
    const k = keys[i]!;
    const bytes = sizes ? sizes[i]! : 1;
    bytesRequested += bytes;
    const size = entryUnits(unit, bytes);
    if (heap.pos[k]! >= 0) {
      hits++;
      bytesHit += bytes;
      heap.raise(k, next[i - start]!);
      // At another size, the entry is that size now (as replay.ts's resizedHit): what no
      // longer fits goes, the furthest next use first (possibly this very entry).
      if (stored[k] !== size) {
        used += size - stored[k]!;
        stored[k] = size;
        while (used > capacity) used -= stored[heap.pop()]!;
      }
      continue;
    }
    if (size > capacity) continue;
    while (used + size > capacity) used -= stored[heap.pop()]!;
    stored[k] = size;
    used += size;
    heap.push(k, next[i - start]!);
  }
  const counts = { requests: end - start, hits, bytesRequested, bytesHit };
  return makeResult('belady', capacity, unit, counts);
}

function beladyWithInvalidations(
  trace: CacheTrace,
  capacity: number,
  unit: CacheUnit,
  start: number,
  end: number,
  next: Int32Array,
  heap: NextUseHeap,
  stored: Float64Array,
): ReplayResult {
  const keys = trace.keys;
  const sizes = trace.sizes;
  const inv = trace.invalidations!;
  let requests = 0;
  let used = 0;
  let hits = 0;
  let bytesRequested = 0;
  let bytesHit = 0;
  for (let i = start; i < end; i++) {
    const k = keys[i]!;
    if (inv[i] === 1) {
      if (heap.pos[k]! >= 0) {
        heap.remove(k);
        used -= stored[k]!;
      }
      continue;
    }
    requests++;
    const bytes = sizes ? sizes[i]! : 1;
    bytesRequested += bytes;
    const size = entryUnits(unit, bytes);
    if (heap.pos[k]! >= 0) {
      hits++;
      bytesHit += bytes;
      heap.raise(k, next[i - start]!);
      // At another size, the entry is that size now (as replay.ts's resizedHit): what no
      // longer fits goes, the furthest next use first (possibly this very entry).
      if (stored[k] !== size) {
        used += size - stored[k]!;
        stored[k] = size;
        while (used > capacity) used -= stored[heap.pop()]!;
      }
      continue;
    }
    if (size > capacity) continue;
    while (used + size > capacity) used -= stored[heap.pop()]!;
    stored[k] = size;
    used += size;
    heap.push(k, next[i - start]!);
  }
  const counts = { requests, hits, bytesRequested, bytesHit };
  return makeResult('belady', capacity, unit, counts);
}
