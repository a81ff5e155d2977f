// A cache trace as the simulators replay it: one dense integer id per request (keys are
// interned at load time, so replay indexes flat arrays instead of hashing strings) and, when
// the trace has them, request sizes in bytes. Also the pieces every cache trace loader shares:
// the builder and the checks of sizes and of maxRequests (lines and CSV come from csv.ts).
import { TraceFormatError } from './errors.ts';

export interface CacheTrace {
  /** Where the requests came from (the path as given), for messages and reports. */
  readonly source: string;
  /** Key id of each request, in trace order; ids are 0..keyCount-1 in order of first use. */
  readonly keys: Int32Array;
  /** Size in bytes of each request; undefined when the trace has no sizes. */
  readonly sizes: Float64Array | undefined;
  readonly keyCount: number;
}

/** The loaders' one error type, under the name callers of the cache loaders know it by. */
export { TraceFormatError as CacheTraceError } from './errors.ts';

export interface CacheLoadOptions {
  /** Stop after this many requests (tests that need only the first rows). Default: all. */
  maxRequests?: number;
}

/** Collects requests, interning keys to dense ids; arrays grow by doubling. */
export class CacheTraceBuilder {
  private readonly ids = new Map<string, number>();
  private keys = new Int32Array(1024);
  private sizes: Float64Array | undefined;
  private n = 0;

  constructor(
    private readonly source: string,
    withSizes: boolean,
  ) {
    if (withSizes) this.sizes = new Float64Array(1024);
  }

  get length(): number {
    return this.n;
  }

  push(key: string, sizeBytes = 1): void {
    if (this.n === this.keys.length) this.grow();
    let id = this.ids.get(key);
    if (id === undefined) {
      id = this.ids.size;
      this.ids.set(key, id);
    }
    this.keys[this.n] = id;
    if (this.sizes) this.sizes[this.n] = sizeBytes;
    this.n++;
  }

  build(lastLine: number): CacheTrace {
    if (this.n === 0) throw new TraceFormatError(this.source, lastLine, 'no requests in the file');
    return {
      source: this.source,
      keys: this.keys.slice(0, this.n),
      sizes: this.sizes?.slice(0, this.n),
      keyCount: this.ids.size,
    };
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
  }
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
