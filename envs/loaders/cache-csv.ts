// libCacheSim-style CSV cache traces: a header row naming the columns, then one request per
// row. The key column is chosen by name (default: the first column called obj_id, key or lbn);
// the size column by name (default: the first called obj_size or size, if any). Any file of
// this shape loads, not only the shipped ones. Columns not replayed are still checked where a
// rule is known, so a file that is not what it claims to be is refused, not half-read: `time`,
// when present, is a decimal number >= 0 (libCacheSim's CSV traces, ours included, all write
// one); `op` is 2a (write) or 28 (read) in a file of the traces README's block I/O format
// (`version,time,op,size,lbn`); other CSVs name their ops as they like (read/write, get/set).
//
// A row whose `op` is `write` (any case) is an invalidation, not a request: in the file
// service's access trace (`time,key,size,op`) a write drops the reader's cached chunk. In the
// block I/O format a write stays a request, as libCacheSim replays it (a block cache takes the
// written block in). `invalidatingOps` says otherwise for a given file.
import {
  CacheTraceBuilder,
  checkMaxRequests,
  parseSizeBytes,
  type CacheLoadOptions,
  type CacheTrace,
} from './cache-trace.ts';
import { findColumnOnce, forEachCsvRow, parseDecimal } from './csv.ts';
import { TraceFormatError } from './errors.ts';

export interface CacheCsvOptions extends CacheLoadOptions {
  /** Name of the key column. */
  keyColumn?: string;
  /** Name of the size column; null to ignore sizes even when a size column exists. */
  sizeColumn?: string | null;
  /** Field separator, default ','. */
  delimiter?: string;
  /**
   * Values of the `op` column (any case) whose rows are invalidations: the key's cached copy
   * is dropped and no request is counted. Default ['write'], or none in the block I/O format;
   * [] replays every row as a request. Naming some needs an `op` column.
   */
  invalidatingOps?: readonly string[];
}

/** Key columns looked for, in this order and any case, when none is named. */
export const DEFAULT_KEY_COLUMNS: readonly string[] = ['obj_id', 'key', 'lbn'];
const DEFAULT_SIZE_COLUMNS = ['obj_size', 'size'];
/** The columns of the traces README's block I/O format, and its op codes (SCSI). */
const BLOCK_IO_COLUMNS = ['version', 'time', 'op', 'size', 'lbn'];
const BLOCK_IO_OPS = ['2a', '28'];
/** Op values that invalidate by default: the file service's access trace writes `write`. */
const DEFAULT_INVALIDATING_OPS = ['write'];

/** The named column (an error when absent), else the first of `defaults`, any case (or -1). */
function pickColumn(
  file: string,
  line: number,
  header: string[],
  wanted: string | undefined,
  defaults: readonly string[],
  what: string,
): number {
  const csv = { file, header, headerLine: line };
  if (wanted === undefined) return findColumnOnce(csv, defaults, true);
  const i = findColumnOnce(csv, [wanted]);
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
  let timeCol = -1;
  let opCol = -1;
  let blockIo = false;
  let lbnKey = false;
  let invalidating = new Set<string>();
  let builder = new CacheTraceBuilder(file, false);
  const fail = (line: number, col: number, rule: string, got: string): never => {
    throw new TraceFormatError(
      file,
      line,
      `${header[col]} must be ${rule}, got ${JSON.stringify(got.trim())}`,
    );
  };
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
      const csv = { file, header, headerLine: line };
      blockIo = BLOCK_IO_COLUMNS.every((c) => findColumnOnce(csv, [c], true) >= 0);
      lbnKey = blockIo && header[keyCol]?.trim().toLowerCase() === 'lbn';
      timeCol = findColumnOnce(csv, ['time'], true);
      opCol = findColumnOnce(csv, ['op'], true);
      if (timeCol === keyCol || timeCol === sizeCol) timeCol = -1;
      if (opCol === keyCol || opCol === sizeCol) opCol = -1;
      const ops = opts.invalidatingOps ?? (blockIo ? [] : DEFAULT_INVALIDATING_OPS);
      invalidating = new Set(ops.map((o) => o.trim().toLowerCase()));
      if (opts.invalidatingOps?.length && opCol < 0) {
        throw new TraceFormatError(
          file,
          line,
          `invalidatingOps (${opts.invalidatingOps.join(', ')}) needs an op column (columns: ${header.join(', ')})`,
        );
      }
      builder = new CacheTraceBuilder(file, sizeCol >= 0);
    },
    ({ line, fields }) => {
      let key = (fields[keyCol] as string).trim();
      if (key === '') {
        throw new TraceFormatError(file, line, `empty key in column '${header[keyCol]}'`);
      }
      // A block address: '042' and '42' are one block (as numeric ids read them), and 'abc',
      // '-5' or '1.5' are no block at all.
      if (lbnKey) {
        if (!/^\d+$/.test(key)) fail(line, keyCol, 'a block address, an integer >= 0', key);
        key = key.replace(/^0+(?=\d)/, '');
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
      if (timeCol >= 0 && !(parseDecimal(fields[timeCol] as string) >= 0))
        fail(line, timeCol, 'a time, a decimal number >= 0', fields[timeCol] as string);
      const op = opCol >= 0 ? (fields[opCol] as string).trim().toLowerCase() : '';
      if (blockIo && opCol >= 0 && !BLOCK_IO_OPS.includes(op))
        fail(
          line,
          opCol,
          `one of ${BLOCK_IO_OPS.join(', ')} (write, read)`,
          fields[opCol] as string,
        );
      if (invalidating.has(op)) builder.invalidate(key, size);
      else builder.push(key, size);
      return builder.requests < maxRequests;
    },
  );
  return builder.build(lastLine);
}
