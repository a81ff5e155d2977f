// A cache trace as the simulators replay it: one dense integer id per entry (keys are
// interned at load time, so replay indexes flat arrays instead of hashing strings), request
// sizes in bytes when the trace has them, and, when it has any, which entries are
// invalidations: a write that drops the key's cached copy (as the file service's reader does
// for a chunk it wrote) and is not a request. Also the pieces every cache trace loader shares:
// the builder and the checks of sizes and of maxRequests (lines and CSV come from csv.ts).
import { TraceFormatError } from './errors.ts';

export interface CacheTrace {
  /** Where the requests came from (the path as given), for messages and reports. */
  readonly source: string;
  /**
   * Key id of each entry (request or invalidation), in trace order; ids are 0..keyCount-1 in
   * order of first use.
   */
  readonly keys: Int32Array;
  /** Size in bytes of each entry (an invalidation's is not replayed); undefined when none. */
  readonly sizes: Float64Array | undefined;
  readonly keyCount: number;
  /**
   * Per entry, 1 when it is an invalidation (a write: the key's cached copy is dropped, no
   * request is counted), else 0. Absent when the trace has no invalidations, which keeps
   * replay of such a trace on its branch-free loop. Hit ratios are over requests only.
   */
  readonly invalidations?: Uint8Array;
}

/** The loaders' one error type, under the name callers of the cache loaders know it by. */
export { TraceFormatError as CacheTraceError } from './errors.ts';

export interface CacheLoadOptions {
  /**
   * Stop after this many requests (tests that need only the first rows); invalidations before
   * the last of them are kept. Default: all.
   */
  maxRequests?: number;
}

/** Distinct keys per id map: under V8's 2^24 entries a Map holds. */
const KEYS_PER_MAP = 1 << 23;

/** Collects requests and invalidations, interning keys to dense ids; arrays grow by doubling. */
export class CacheTraceBuilder {
  /**
   * Key -> dense id. A V8 Map holds at most 2^24 entries, and production cache traces have
   * more distinct keys than that ("Map maximum size exceeded" escaped, naming no file or
   * line): a full map is followed by another, looked up in turn (one for most traces).
   */
  private readonly idMaps: Map<string, number>[] = [new Map()];
  private keyCount = 0;
  private keys = new Int32Array(1024);
  private sizes: Float64Array | undefined;
  /** Allocated at the first invalidation: a trace without any carries no flag array. */
  private inv: Uint8Array | undefined;
  private n = 0;
  private invalidationCount = 0;

  constructor(
    private readonly source: string,
    withSizes: boolean,
    /** Keys per id map (tests set a few to cross maps without 2^23 keys). */
    private readonly keysPerMap = KEYS_PER_MAP,
  ) {
    if (withSizes) this.sizes = new Float64Array(1024);
  }

  /** Entries so far, requests and invalidations. */
  get length(): number {
    return this.n;
  }

  /** Requests so far (entries that are not invalidations). */
  get requests(): number {
    return this.n - this.invalidationCount;
  }

  push(key: string, sizeBytes = 1): void {
    if (this.n === this.keys.length) this.grow();
    let id: number | undefined;
    for (let m = 0; id === undefined && m < this.idMaps.length; m++) id = this.idMaps[m]!.get(key);
    if (id === undefined) {
      let last = this.idMaps[this.idMaps.length - 1]!;
      if (last.size >= this.keysPerMap) this.idMaps.push((last = new Map()));
      id = this.keyCount++;
      last.set(key, id);
    }
    this.keys[this.n] = id;
    if (this.sizes) this.sizes[this.n] = sizeBytes;
    this.n++;
  }

  /** A write of `key`: replay drops the key's cached copy there and counts no request. */
  invalidate(key: string, sizeBytes = 1): void {
    this.push(key, sizeBytes);
    this.inv ??= new Uint8Array(this.keys.length);
    this.inv[this.n - 1] = 1;
    this.invalidationCount++;
  }

  build(lastLine: number): CacheTrace {
    if (this.requests === 0) {
      const what =
        this.n === 0 ? 'no requests in the file' : 'no requests in the file, only writes';
      throw new TraceFormatError(this.source, lastLine, what);
    }
    const trace = {
      source: this.source,
      keys: this.keys.slice(0, this.n),
      sizes: this.sizes?.slice(0, this.n),
      keyCount: this.keyCount,
    };
    return this.inv ? { ...trace, invalidations: this.inv.slice(0, this.n) } : trace;
  }

  private grow(): void {
    const keys = new Int32Array(this.keys.length * 2);
    keys.set(this.keys);
    this.keys = keys;
    if (this.sizes) {
      const sizes = new Float64Array(this.sizes.length * 2);
      sizes.set(this.sizes);
      this.sizes = sizes;
    }
    if (this.inv) {
      const inv = new Uint8Array(this.inv.length * 2);
      inv.set(this.inv);
      this.inv = inv;
    }
  }
}

/** Requests (entries that are not invalidations) among entries [start, end) of a trace. */
export function requestCount(trace: CacheTrace, start = 0, end = trace.keys.length): number {
  const inv = trace.invalidations;
  if (!inv) return end - start;
  let n = 0;
  for (let i = start; i < end; i++) n += 1 - inv[i]!;
  return n;
}

/** A trace from keys in memory (synthetic workloads, tests). */
export function cacheTraceFromKeys(
  keys: readonly (string | number)[],
  sizesBytes?: readonly number[],
  source = 'memory',
): CacheTrace {
  const b = new CacheTraceBuilder(source, sizesBytes !== undefined);
  keys.forEach((k, i) => b.push(String(k), sizesBytes?.[i] ?? 1));
  return b.build(keys.length);
}

/** Parses a size field: a non-negative integer number of bytes, or null when it is not one. */
export function parseSizeBytes(field: string): number | null {
  if (!/^\s*\d+\s*$/.test(field)) return null;
  const v = Number(field);
  return Number.isSafeInteger(v) ? v : null;
}

/** maxRequests as given (an integer >= 1, or Infinity), Infinity when not given. */
export function checkMaxRequests(maxRequests: number | undefined): number {
  if (maxRequests === undefined || maxRequests === Infinity) return Infinity;
  if (!(Number.isInteger(maxRequests) && maxRequests >= 1))
    throw new RangeError(`maxRequests must be an integer >= 1, got ${maxRequests}`);
  return maxRequests;
}
