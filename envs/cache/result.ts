// What one replay reports, shared by every policy's replay and by Belady's oracle.
import type { CacheUnit } from '../../policies/cache/index.ts';
import type { CacheTrace } from '../loaders/cache-trace.ts';

export interface ReplayResult {
  policy: string;
  capacity: number;
  unit: CacheUnit;
  /** Requests replayed; a trace's invalidations (writes) are applied but not counted. */
  requests: number;
  hits: number;
  /** Bytes requested and bytes served from the cache (requests count 1 byte without sizes). */
  bytes_requested: number;
  bytes_hit: number;
  hit_ratio: number;
  miss_ratio: number;
  byte_hit_ratio: number;
}

export interface ReplayOptions {
  unit?: CacheUnit;
  /** Replay entries [start, end) of the trace (invalidations included); default all of it. */
  start?: number;
  end?: number;
}

export function segmentOf(trace: CacheTrace, opts: ReplayOptions): [number, number] {
  const n = trace.keys.length;
  const start = opts.start ?? 0;
  const end = opts.end ?? n;
  if (!(
    Number.isInteger(start) &&
    Number.isInteger(end) &&
    0 <= start &&
    start < end &&
    end <= n
  )) {
    throw new RangeError(
      `replay segment must satisfy 0 <= start < end <= ${n}, got [${start}, ${end})`,
    );
  }
  return [start, end];
}

/**
 * Refuses a segment holding invalidations, for an analysis whose rule does not survive them:
 * better an error than writes silently replayed as reads.
 */
export function refuseInvalidations(
  trace: CacheTrace,
  [start, end]: readonly [number, number],
  what: string,
  rule: string,
): void {
  const inv = trace.invalidations;
  if (inv && inv.subarray(start, end).includes(1)) {
    throw new RangeError(
      `${what} does not take invalidations (writes), and ${trace.source} has them: ${rule}`,
    );
  }
}

export function makeResult(
  policy: string,
  capacity: number,
  unit: CacheUnit,
  counts: { requests: number; hits: number; bytesRequested: number; bytesHit: number },
): ReplayResult {
  const { requests, hits, bytesRequested, bytesHit } = counts;
  return {
    policy,
    capacity,
    unit,
    requests,
    hits,
    bytes_requested: bytesRequested,
    bytes_hit: bytesHit,
    hit_ratio: requests > 0 ? hits / requests : 0,
    miss_ratio: requests > 0 ? 1 - hits / requests : 1,
    byte_hit_ratio: bytesRequested > 0 ? bytesHit / bytesRequested : 0,
  };
}
