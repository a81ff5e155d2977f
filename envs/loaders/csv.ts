// The one reader of trace files every loader shares: lines, then CSV on top of them.
// - A plain file is streamed in 1 MiB chunks, so memory stays bounded by the longest line (itself
//   bounded) however large the trace; a loader that wants only the first rows stops early.
// - A gzipped file (known by its magic bytes, not its name) is decompressed whole, with a bound:
//   Node has no synchronous streaming gunzip, and the gzipped traces we know are tens of MB.
// - Lines end in \n or \r\n; a UTF-8 byte-order mark before the first line is dropped.
// - CSV: the first non-blank line is the header, columns are found by name, blank lines are
//   skipped, fields may be double-quoted with "" for a quote (no newlines inside a field, and
//   nothing but blanks between the closing quote and the delimiter).
// Bad input throws TraceFormatError with the file, the line and the reason.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { constants as zlibConstants, gunzipSync } from 'node:zlib';
import { TraceFormatError } from './errors.ts';

const CHUNK_BYTES = 1 << 20;
/** Longest line any loader accepts: no trace format has one; a binary file might. */
export const MAX_LINE_BYTES = 16 << 20;
/** Largest gzipped file read whole, compressed and decompressed. */
export const MAX_TRACE_BYTES = 1 << 30;
/** Most rows `readCsv` holds in memory (a bound on a wrong path; big traces stream instead). */
export const MAX_CSV_ROWS = 20_000_000;

const NL = 0x0a;
const CR = 0x0d;

/** One line as bytes, `buf[from, to)` without its line ending; return false to stop reading. */
export type LineBytesFn = (buf: Buffer, from: number, to: number, lineNo: number) => boolean | void;

/** What to read: `file` names the source in errors; `content`, when given, is read instead. */
export interface LineSource {
  file: string;
  content?: string | Buffer;
}

function cannotRead(file: string, what: string, err: unknown): TraceFormatError {
  return new TraceFormatError(file, 0, `cannot ${what}: ${(err as Error).message}`);
}

const isGzip = (buf: Buffer, n: number): boolean => n >= 2 && buf[0] === 0x1f && buf[1] === 0x8b;

/** Calls `fn` for each line's bytes with its 1-based number; returns the last line's number. */
export function forEachLineBytes(source: LineSource, fn: LineBytesFn): number {
  const { file, content } = source;
  const lines = new LineSplitter(file, fn);
  if (content !== undefined) {
    lines.feed(typeof content === 'string' ? Buffer.from(content) : content, true);
    return lines.lineNo;
  }
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    throw cannotRead(file, 'read', err);
  }
  try {
    let buf: Buffer = Buffer.allocUnsafe(CHUNK_BYTES);
    let have = readChunk(file, fd, buf, 0);
    if (isGzip(buf, have)) {
      lines.feed(gunzipWhole(file, fd, buf.subarray(0, have)), true);
      return lines.lineNo;
    }
    for (;;) {
      let eof = false;
      while (have < buf.length && !eof) {
        const n = readChunk(file, fd, buf, have);
        have += n;
        eof = n === 0;
      }
      const used = lines.feed(buf.subarray(0, have), eof);
      if (eof || lines.stopped) return lines.lineNo;
      // Keep the unfinished line at the front; a line as long as the buffer doubles it.
      if (used === 0) buf = growLineBuffer(file, lines.lineNo + 1, buf);
      else buf.copy(buf, 0, used, have);
      have -= used;
    }
  } finally {
    closeSync(fd);
  }
}

function readChunk(file: string, fd: number, buf: Buffer, at: number): number {
  if (at >= buf.length) return 0;
  try {
    return readSync(fd, buf, at, buf.length - at, null);
  } catch (err) {
    throw cannotRead(file, 'read', err);
  }
}

function growLineBuffer(file: string, lineNo: number, buf: Buffer): Buffer {
  if (buf.length > MAX_LINE_BYTES) {
    throw new TraceFormatError(file, lineNo, `line longer than ${MAX_LINE_BYTES} bytes`);
  }
  const bigger = Buffer.allocUnsafe(buf.length * 2);
  buf.copy(bigger);
  return bigger;
}

function gunzipWhole(file: string, fd: number, head: Buffer): Buffer {
  let sizeBytes: number;
  try {
    sizeBytes = fstatSync(fd).size;
  } catch (err) {
    throw cannotRead(file, 'read', err);
  }
  if (sizeBytes > MAX_TRACE_BYTES) {
    throw new TraceFormatError(file, 0, `gzipped file larger than ${MAX_TRACE_BYTES} bytes`);
  }
  const raw = Buffer.allocUnsafe(sizeBytes);
  head.copy(raw);
  let have = head.length;
  while (have < sizeBytes) {
    const n = readChunk(file, fd, raw, have);
    if (n === 0) break;
    have += n;
  }
  try {
    return gunzipSync(raw.subarray(0, have), { maxOutputLength: MAX_TRACE_BYTES });
  } catch (err) {
    throw cannotRead(file, 'decompress', err);
  }
}

/** Cuts bytes into lines; `feed` returns how many bytes it consumed (whole lines only). */
class LineSplitter {
  lineNo = 0;
  stopped = false;

  constructor(
    private readonly file: string,
    private readonly fn: LineBytesFn,
  ) {}

  feed(buf: Buffer, final: boolean): number {
    let pos = 0;
    while (pos < buf.length && !this.stopped) {
      let nl = buf.indexOf(NL, pos);
      if (nl < 0) {
        if (!final) return pos;
        nl = buf.length;
      }
      this.emit(buf, pos, nl);
      pos = nl + 1;
    }
    return Math.min(pos, buf.length);
  }

  private emit(buf: Buffer, from: number, to: number): void {
    this.lineNo++;
    if (to > from && buf[to - 1] === CR) to--;
    if (this.lineNo === 1 && buf[from] === 0xef && buf[from + 1] === 0xbb && buf[from + 2] === 0xbf)
      from += 3;
    if (to - from > MAX_LINE_BYTES) {
      throw new TraceFormatError(
        this.file,
        this.lineNo,
        `line longer than ${MAX_LINE_BYTES} bytes`,
      );
    }
    if (this.fn(buf, from, to, this.lineNo) === false) this.stopped = true;
  }
}

/** As forEachLineBytes, each line decoded as UTF-8. */
export function forEachLine(
  source: LineSource,
  fn: (line: string, lineNo: number) => boolean | void,
): number {
  return forEachLineBytes(source, (buf, from, to, lineNo) =>
    fn(buf.toString('utf8', from, to), lineNo),
  );
}

/**
 * Splits one CSV line. A field whose first non-blank character is `"` is quoted: `""` inside
 * stands for one quote and the delimiter is literal; after its closing quote only blanks may
 * come before the delimiter (they are dropped, as are blanks before the opening quote). Other
 * fields are taken as they are. Returns null for a malformed line (an unterminated quoted
 * field, text after a closing quote); `csvFields` says why.
 */
export function splitCsvLine(line: string, delimiter = ','): string[] | null {
  const out = splitOrWhy(line, delimiter);
  return typeof out === 'string' ? null : out;
}

/** As splitCsvLine; a malformed line throws TraceFormatError naming the file, line and field. */
export function csvFields(file: string, lineNo: number, line: string, delimiter = ','): string[] {
  const out = splitOrWhy(line, delimiter);
  if (typeof out === 'string') throw new TraceFormatError(file, lineNo, out);
  return out;
}

const isBlank = (c: string): boolean => c === ' ' || c === '\t';

/** The fields of a CSV line, or why it is malformed. */
function splitOrWhy(line: string, delimiter: string): string[] | string {
  if (!line.includes('"')) return line.split(delimiter);
  const out: string[] = [];
  let field = '';
  // 0: unquoted, 1: inside quotes, 2: after the closing quote.
  let state = 0;
  for (let i = 0; i < line.length;) {
    const c = line[i] as string;
    if (state === 1) {
      if (c === '"' && line[i + 1] === '"') {
        field += '"';
        i += 2;
        continue;
      }
      if (c === '"') state = 2;
      else field += c;
      i++;
    } else if (line.startsWith(delimiter, i)) {
      out.push(field);
      field = '';
      state = 0;
      i += delimiter.length;
    } else if (state === 2) {
      if (!isBlank(c)) {
        return (
          `text after the closing quote of field ${out.length + 1} ` +
          `(${JSON.stringify(line.slice(i, i + 20))}): a quoted field ends at its closing quote ` +
          '(a quote inside it is written "")'
        );
      }
      i++;
    } else if (c === '"' && field.trim() === '') {
      state = 1;
      field = '';
      i++;
    } else {
      field += c;
      i++;
    }
  }
  if (state === 1) return `unterminated quoted field (field ${out.length + 1})`;
  out.push(field);
  return out;
}

export interface CsvRow {
  /** 1-based line number in the file. */
  line: number;
  /** The fields as written (not trimmed), quotes removed. */
  fields: string[];
}

export interface CsvOptions {
  /** Field separator, default ','. */
  delimiter?: string;
  /**
   * Every row must have as many fields as the header (default). False leaves the count to the
   * caller, for formats that tolerate ragged rows.
   */
  exactFields?: boolean;
}

/**
 * Streams a CSV with a header: `onHeader` gets the header's names (trimmed) and its line, then
 * `onRow` each data row; `onRow` returns false to stop. Returns the last line read.
 */
export function forEachCsvRow(
  source: LineSource,
  opts: CsvOptions,
  onHeader: (header: string[], line: number) => void,
  onRow: (row: CsvRow) => boolean | void,
): number {
  const delimiter = opts.delimiter ?? ',';
  let width = -1;
  const last = forEachLine(source, (text, line) => {
    if (text.trim() === '') return true;
    const fields = csvFields(source.file, line, text, delimiter);
    if (width < 0) {
      width = fields.length;
      onHeader(
        fields.map((f) => f.trim()),
        line,
      );
      return true;
    }
    if (opts.exactFields !== false && fields.length !== width) {
      throw new TraceFormatError(
        source.file,
        line,
        `expected ${width} fields like the header, got ${fields.length}`,
      );
    }
    return onRow({ line, fields });
  });
  if (width < 0) throw new TraceFormatError(source.file, 1, 'empty file: expected a header line');
  return last;
}

export interface Csv {
  file: string;
  header: string[];
  /** The line of the header. */
  headerLine: number;
  rows: CsvRow[];
}

/** A whole CSV in memory (small traces: job lists, nodes, DAGs), at most MAX_CSV_ROWS rows. */
export function readCsv(source: string | LineSource, opts: CsvOptions = {}): Csv {
  const src = typeof source === 'string' ? { file: source } : source;
  const csv: Csv = { file: src.file, header: [], headerLine: 1, rows: [] };
  forEachCsvRow(
    src,
    opts,
    (header, line) => {
      csv.header = header;
      csv.headerLine = line;
    },
    (row) => {
      if (csv.rows.length >= MAX_CSV_ROWS) {
        throw new TraceFormatError(src.file, row.line, `more than ${MAX_CSV_ROWS} rows`);
      }
      csv.rows.push(row);
    },
  );
  return csv;
}

/** Index of the first header name in `names` (-1 for none); `ignoreCase` compares lowercased. */
export function findColumn(
  header: readonly string[],
  names: readonly string[],
  ignoreCase = false,
): number {
  const norm = (s: string): string => (ignoreCase ? s.toLowerCase() : s);
  const wanted = names.map(norm);
  return header.findIndex((h) => wanted.includes(norm(h)));
}

/**
 * Column index by name for every name in `required` (an error names the missing ones) and in
 * `optional` (-1 when absent). A name twice in the header is an error; so is a name in neither
 * list unless `allowOthers`.
 */
export function columns<K extends string>(
  csv: Pick<Csv, 'file' | 'header' | 'headerLine'>,
  required: readonly K[],
  optional: readonly K[] = [],
  allowOthers = true,
): Record<K, number> {
  const fail = (reason: string): never => {
    throw new TraceFormatError(csv.file, csv.headerLine, reason);
  };
  const known: readonly string[] = [...required, ...optional];
  const at = {} as Record<K, number>;
  csv.header.forEach((name, i) => {
    if (csv.header.indexOf(name) !== i) fail(`column ${name} appears twice in the header`);
    if (known.includes(name)) at[name as K] = i;
    else if (!allowOthers)
      fail(`unknown column ${JSON.stringify(name)} (known: ${known.join(', ')})`);
  });
  const missing = required.filter((k) => at[k] === undefined);
  if (missing.length > 0) fail(`header lacks column(s) ${missing.join(', ')}`);
  for (const k of optional) if (at[k] === undefined) at[k] = -1;
  return at;
}

/**
 * Index of the first header name in `names`, as findColumn; a TraceFormatError when the name
 * found appears twice in the header (which of the two to read would be a guess).
 */
export function findColumnOnce(
  csv: Pick<Csv, 'file' | 'header' | 'headerLine'>,
  names: readonly string[],
  ignoreCase = false,
): number {
  const i = findColumn(csv.header, names, ignoreCase);
  if (i >= 0 && findColumn(csv.header.slice(i + 1), [csv.header[i] as string], ignoreCase) >= 0) {
    throw new TraceFormatError(
      csv.file,
      csv.headerLine,
      `column ${csv.header[i]} appears twice in the header`,
    );
  }
  return i;
}

const DECIMAL = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

/**
 * A finite decimal number (sign, fraction and exponent allowed, as 2.5e-4 or 1.2E+16, which
 * pandas, NumPy and R write for very large or small floats; surrounding blanks ignored), or NaN.
 * Every loader reads numbers through this one check: Number() alone would also take hex (0x10),
 * binary (0b1) and Infinity, which no trace format writes.
 */
export function parseDecimal(text: string): number {
  const s = text.trim();
  const v = DECIMAL.test(s) ? Number(s) : Number.NaN;
  return Number.isFinite(v) ? v : Number.NaN;
}

/** Bytes read to find a file's first line. */
const HEAD_BYTES = 64 << 10;
/** Of those, the ones decompressed when the file is gzipped: at most ~1000x as many out. */
const GZIP_HEAD_BYTES = 8 << 10;

/**
 * The first non-blank line of a file (a byte-order mark dropped, a gzipped file decompressed as
 * far as its first bytes go), without reading the rest; undefined for a file with no such line.
 * A first line longer than the bytes read comes back cut. Throws TraceFormatError when the file
 * cannot be read.
 */
export function firstLine(file: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    throw cannotRead(file, 'read', err);
  }
  let head: Buffer;
  try {
    const buf = Buffer.allocUnsafe(HEAD_BYTES);
    let have = 0;
    for (;;) {
      const n = readChunk(file, fd, buf, have);
      if (n === 0) break;
      have += n;
    }
    head = buf.subarray(0, have);
  } finally {
    closeSync(fd);
  }
  if (isGzip(head, head.length)) {
    try {
      // A sync flush decompresses what the bytes read hold, without needing the stream's end.
      head = gunzipSync(head.subarray(0, GZIP_HEAD_BYTES), {
        finishFlush: zlibConstants.Z_SYNC_FLUSH,
        maxOutputLength: MAX_LINE_BYTES,
      });
    } catch (err) {
      throw cannotRead(file, 'decompress', err);
    }
  }
  let first: string | undefined;
  forEachLine({ file, content: head }, (line) => {
    if (line.trim() === '') return true;
    first = line;
    return false;
  });
  return first;
}
