// Loads a cache trace of either format; what the CLI and the experiments call.
import { DEFAULT_KEY_COLUMNS, loadCacheCsv, type CacheCsvOptions } from './cache-csv.ts';
import { loadCacheKeys } from './cache-keys.ts';
import type { CacheTrace } from './cache-trace.ts';
import { firstLine, splitCsvLine } from './csv.ts';
import { TraceFormatError } from './errors.ts';

export const CACHE_TRACE_FORMATS = ['csv', 'keys'] as const;
export type CacheTraceFormat = (typeof CACHE_TRACE_FORMATS)[number];

export interface LoadCacheTraceOptions extends CacheCsvOptions {
  /** Default: `defaultCacheFormat(file)`. */
  format?: CacheTraceFormat;
}

/** Columns besides the key that cache traces carry (libCacheSim's CSV, the shared trace). */
const OTHER_CACHE_COLUMNS = ['time', 'timestamp', 'op', 'size', 'obj_size', 'version', 'ttl'];

/**
 * The format a cache trace file is read in when none is given, from its first non-blank line
 * (not its name: a CSV may be called anything, and gzipped): csv when that line holds a `,`,
 * names a key column (obj_id, key or lbn, any case), or is column names split by `;`, `|` or a
 * tab, a key column and another cache column among them — a header — else keys. A file that
 * cannot be read falls back to its name (csv for *.csv or *.csv.gz), and loading it says why.
 */
export function defaultCacheFormat(file: string): CacheTraceFormat {
  let line: string | undefined;
  try {
    line = firstLine(file);
  } catch (err) {
    if (!(err instanceof TraceFormatError)) throw err;
    return /\.csv(\.gz)?$/i.test(file) ? 'csv' : 'keys';
  }
  if (line === undefined) return 'keys';
  if (line.includes(',')) return 'csv';
  // A header with another separator (time;obj_id;obj_size, as a locale's spreadsheet writes
  // it, was read as keys: the header a request, each whole row one key): column names only,
  // a key column among them and another column a cache trace has. A key such as user|key or
  // tenant;obj_id stays a key.
  for (const sep of [';', '|', '\t']) {
    const names = line.split(sep).map((n) => n.trim().toLowerCase());
    if (
      names.length >= 2 &&
      names.every((n) => /^[a-z_][a-z0-9_]*$/.test(n)) &&
      names.some((n) => DEFAULT_KEY_COLUMNS.includes(n)) &&
      names.some((n) => OTHER_CACHE_COLUMNS.includes(n))
    )
      return 'csv';
  }
  const name = (splitCsvLine(line)?.[0] ?? line).trim().toLowerCase();
  return DEFAULT_KEY_COLUMNS.includes(name) ? 'csv' : 'keys';
}

export function loadCacheTrace(file: string, opts: LoadCacheTraceOptions = {}): CacheTrace {
  // Naming a column or a delimiter only makes sense for a CSV.
  const csvOnly = opts.keyColumn !== undefined || opts.delimiter !== undefined;
  const format = opts.format ?? (csvOnly ? 'csv' : defaultCacheFormat(file));
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
