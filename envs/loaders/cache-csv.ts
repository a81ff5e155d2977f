// libCacheSim-style CSV cache traces: a header row naming the columns, then one request per
// row. The key column is chosen by name (default: the first column called obj_id, key or lbn);
// the size column by name (default: the first called obj_size or size, if any). Any file of
// this shape loads, not only the shipped ones.
import {
  CacheTraceBuilder,
  checkMaxRequests,
  parseSizeBytes,
  type CacheLoadOptions,
  type CacheTrace,
} from './cache-trace.ts';
import { findColumn, forEachCsvRow } from './csv.ts';
import { TraceFormatError } from './errors.ts';

export interface CacheCsvOptions extends CacheLoadOptions {
  /** Name of the key column. */
  keyColumn?: string;
  /** Name of the size column; null to ignore sizes even when a size column exists. */
  sizeColumn?: string | null;
  /** Field separator, default ','. */
  delimiter?: string;
}

const DEFAULT_KEY_COLUMNS = ['obj_id', 'key', 'lbn'];
const DEFAULT_SIZE_COLUMNS = ['obj_size', 'size'];

/** The named column (an error when absent), else the first of `defaults`, any case (or -1). */
function pickColumn(
  file: string,
  line: number,
  header: string[],
  wanted: string | undefined,
  defaults: string[],
  what: string,
): number {
  if (wanted === undefined) return findColumn(header, defaults, true);
  const i = findColumn(header, [wanted]);
  if (i < 0) {
    throw new TraceFormatError(
      file,
      line,
      `no ${what} column named '${wanted}' in the header (columns: ${header.join(', ')})`,
    );
  }
  return i;
}

export function loadCacheCsv(file: string, opts: CacheCsvOptions = {}): CacheTrace {
  const maxRequests = checkMaxRequests(opts.maxRequests);
  let header: string[] = [];
  let keyCol = -1;
  let sizeCol = -1;
  let builder = new CacheTraceBuilder(file, false);
  const lastLine = forEachCsvRow(
    { file },
    { delimiter: opts.delimiter },
    (names, line) => {
      header = names;
      keyCol = pickColumn(file, line, header, opts.keyColumn, DEFAULT_KEY_COLUMNS, 'key');
      if (keyCol < 0) {
        throw new TraceFormatError(
          file,
          line,
          `no key column: name one (columns: ${header.join(', ')}; defaults: ${DEFAULT_KEY_COLUMNS.join(', ')})`,
        );
      }
      sizeCol =
        opts.sizeColumn === null
          ? -1
          : pickColumn(file, line, header, opts.sizeColumn, DEFAULT_SIZE_COLUMNS, 'size');
      builder = new CacheTraceBuilder(file, sizeCol >= 0);
    },
    ({ line, fields }) => {
      const key = (fields[keyCol] as string).trim();
      if (key === '') {
        throw new TraceFormatError(file, line, `empty key in column '${header[keyCol]}'`);
      }
      let size = 1;
      if (sizeCol >= 0) {
        const parsed = parseSizeBytes(fields[sizeCol] as string);
        if (parsed === null) {
          throw new TraceFormatError(
            file,
            line,
            `size in column '${header[sizeCol]}' must be a non-negative integer, got '${fields[sizeCol]}'`,
          );
        }
        size = parsed;
      }
      builder.push(key, size);
      return builder.length < maxRequests;
    },
  );
  return builder.build(lastLine);
}
