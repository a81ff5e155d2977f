// libCacheSim-style CSV cache traces: a header row naming the columns, then one request per
// row. The key column is chosen by name (default: the first column called obj_id, key or lbn);
// the size column by name (default: the first called obj_size or size, if any). Any file of
// this shape loads, not only the shipped ones.
import {
  CacheTraceBuilder,
  CacheTraceError,
  checkMaxRequests,
  forEachLine,
  parseSizeBytes,
  type CacheLoadOptions,
  type CacheTrace,
} from './cache-trace.ts';

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

/** Splits one CSV line; handles double-quoted fields with "" escapes (no embedded newlines). */
export function splitCsvLine(line: string, delimiter: string): string[] | null {
  if (!line.includes('"')) return line.split(delimiter);
  const out: string[] = [];
  let field = '';
  let i = 0;
  let quoted = false;
  while (i < line.length) {
    const c = line[i]!;
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        field += '"';
        i += 2;
        continue;
      }
      if (c === '"') quoted = false;
      else field += c;
      i++;
    } else if (c === '"' && field === '') {
      quoted = true;
      i++;
    } else if (line.startsWith(delimiter, i)) {
      out.push(field);
      field = '';
      i += delimiter.length;
    } else {
      field += c;
      i++;
    }
  }
  if (quoted) return null;
  out.push(field);
  return out;
}

function findColumn(
  file: string,
  header: string[],
  wanted: string | undefined,
  defaults: string[],
  what: string,
): number {
  const names = header.map((h) => h.trim());
  if (wanted !== undefined) {
    const i = names.indexOf(wanted);
    if (i < 0) {
      throw new CacheTraceError(
        file,
        1,
        `no ${what} column named '${wanted}' in the header (columns: ${names.join(', ')})`,
      );
    }
    return i;
  }
  return names.findIndex((h) => defaults.includes(h.toLowerCase()));
}

export function loadCacheCsv(file: string, opts: CacheCsvOptions = {}): CacheTrace {
  const delimiter = opts.delimiter ?? ',';
  const maxRequests = checkMaxRequests(opts.maxRequests);
  let header: string[] | undefined;
  let keyCol = -1;
  let sizeCol = -1;
  let builder: CacheTraceBuilder | undefined;
  const lastLine = forEachLine(file, (line, lineNo) => {
    if (line.trim() === '') return true;
    const fields = splitCsvLine(line, delimiter);
    if (fields === null) throw new CacheTraceError(file, lineNo, 'unterminated quoted field');
    if (!header) {
      header = fields;
      keyCol = findColumn(file, header, opts.keyColumn, DEFAULT_KEY_COLUMNS, 'key');
      if (keyCol < 0) {
        throw new CacheTraceError(
          file,
          lineNo,
          `no key column: name one (columns: ${header.join(', ')}; defaults: ${DEFAULT_KEY_COLUMNS.join(', ')})`,
        );
      }
      sizeCol =
        opts.sizeColumn === null
          ? -1
          : findColumn(file, header, opts.sizeColumn, DEFAULT_SIZE_COLUMNS, 'size');
      builder = new CacheTraceBuilder(file, sizeCol >= 0);
      return true;
    }
    if (fields.length !== header.length) {
      throw new CacheTraceError(
        file,
        lineNo,
        `expected ${header.length} fields as in the header, got ${fields.length}`,
      );
    }
    const key = fields[keyCol]!.trim();
    if (key === '') {
      throw new CacheTraceError(file, lineNo, `empty key in column '${header[keyCol]}'`);
    }
    let size = 1;
    if (sizeCol >= 0) {
      const parsed = parseSizeBytes(fields[sizeCol]!);
      if (parsed === null) {
        throw new CacheTraceError(
          file,
          lineNo,
          `size in column '${header[sizeCol]}' must be a non-negative integer, got '${fields[sizeCol]}'`,
        );
      }
      size = parsed;
    }
    builder!.push(key, size);
    return builder!.length < maxRequests;
  });
  if (!builder) throw new CacheTraceError(file, lastLine, 'no header row');
  return builder.build(lastLine);
}
