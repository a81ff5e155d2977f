// Loads a cache trace of either format; what the CLI and the experiments call.
import { loadCacheCsv, type CacheCsvOptions } from './cache-csv.ts';
import { loadCacheKeys } from './cache-keys.ts';
import type { CacheTrace } from './cache-trace.ts';

export const CACHE_TRACE_FORMATS = ['csv', 'keys'] as const;
export type CacheTraceFormat = (typeof CACHE_TRACE_FORMATS)[number];

export interface LoadCacheTraceOptions extends CacheCsvOptions {
  /** Default: `defaultCacheFormat(file)`. */
  format?: CacheTraceFormat;
}

/** The format a cache trace file is read in when none is given: csv for *.csv or *.csv.gz. */
export function defaultCacheFormat(file: string): CacheTraceFormat {
  return /\.csv(\.gz)?$/i.test(file) ? 'csv' : 'keys';
}

export function loadCacheTrace(file: string, opts: LoadCacheTraceOptions = {}): CacheTrace {
  const format = opts.format ?? defaultCacheFormat(file);
  switch (format) {
    case 'csv':
      return loadCacheCsv(file, opts);
    case 'keys':
      return loadCacheKeys(file, opts);
    default:
      throw new RangeError(
        `trace format must be one of ${CACHE_TRACE_FORMATS.join(', ')}, got ${String(format)}`,
      );
  }
}
