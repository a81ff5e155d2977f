// Loads a cache trace of either format; what the CLI and the experiments call.
import { loadCacheCsv, type CacheCsvOptions } from './cache-csv.ts';
import { loadCacheKeys } from './cache-keys.ts';
import type { CacheTrace } from './cache-trace.ts';

export const CACHE_TRACE_FORMATS = ['csv', 'keys'] as const;
export type CacheTraceFormat = (typeof CACHE_TRACE_FORMATS)[number];

export interface LoadCacheTraceOptions extends CacheCsvOptions {
  /** Default: csv for a .csv file, keys otherwise. */
  format?: CacheTraceFormat;
}

export function loadCacheTrace(file: string, opts: LoadCacheTraceOptions = {}): CacheTrace {
  const format = opts.format ?? (file.toLowerCase().endsWith('.csv') ? 'csv' : 'keys');
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
