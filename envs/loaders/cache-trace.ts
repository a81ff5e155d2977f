// A cache trace as the simulators replay it: one dense integer id per request (keys are
// interned at load time, so replay indexes flat arrays instead of hashing strings) and, when
// the trace has them, request sizes in bytes. Also the pieces every cache trace loader shares:
// the error type, a bounded line reader and the builder.
import { closeSync, openSync, readSync } from 'node:fs';

export interface CacheTrace {
  /** Where the requests came from (the path as given), for messages and reports. */
  readonly source: string;
  /** Key id of each request, in trace order; ids are 0..keyCount-1 in order of first use. */
  readonly keys: Int32Array;
  /** Size in bytes of each request; undefined when the trace has no sizes. */
  readonly sizes: Float64Array | undefined;
  readonly keyCount: number;
}

/** A malformed trace file: names the file, the 1-based line and the reason. */
export class CacheTraceError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly reason: string,
  ) {
    super(`${file}:${line}: ${reason}`);
    this.name = 'CacheTraceError';
  }
}

export interface CacheLoadOptions {
  /** Stop after this many requests (tests that need only the first rows). Default: all. */
  maxRequests?: number;
}

const CHUNK_BYTES = 1 << 20;

/**
 * Calls fn for each line (without its line ending) with its 1-based number, reading the file
 * in 1 MiB chunks so memory stays bounded by the longest line. fn returns false to stop early.
 * Returns the number of the last line read.
 */
export function forEachLine(file: string, fn: (line: string, lineNo: number) => boolean): number {
  const fd = openSync(file, 'r');
  const strip = (raw: string): string => (raw.endsWith('\r') ? raw.slice(0, -1) : raw);
  try {
    const buf = Buffer.allocUnsafe(CHUNK_BYTES);
    const decoder = new TextDecoder('utf-8');
    let carry = '';
    let lineNo = 0;
    for (;;) {
      const n = readSync(fd, buf, 0, CHUNK_BYTES, null);
      if (n === 0) {
        const rest = carry + decoder.decode();
        if (rest !== '') fn(strip(rest), ++lineNo);
        return lineNo;
      }
      const lines = (carry + decoder.decode(buf.subarray(0, n), { stream: true })).split('\n');
      carry = lines.pop() ?? '';
      for (const raw of lines) {
        if (!fn(strip(raw), ++lineNo)) return lineNo;
      }
    }
  } finally {
    closeSync(fd);
  }
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
    if (this.n === 0) throw new CacheTraceError(this.source, lastLine, 'no requests in the file');
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

export function checkMaxRequests(maxRequests: number | undefined): number {
  const m = maxRequests ?? Infinity;
  if (!(m >= 1)) throw new RangeError(`maxRequests must be >= 1, got ${maxRequests}`);
  return m;
}
