// Loader for request-arrival traces in the Azure LLM inference format (Azure/AzurePublicDataset
// 2023/2024): CSV with a header naming TIMESTAMP (a datetime string), ContextTokens and
// GeneratedTokens; other columns are ignored and order does not matter. Times come back in
// milliseconds relative to the earliest request (the first row of a sorted file). Rows out of
// time order are kept, counted and sorted, since a merged trace may interleave slightly.
// Malformed input fails with the file, the line and the reason.
import {
  findColumnOnce,
  forEachCsvRow,
  parseDecimal,
  type CsvRow,
  type LineSource,
} from './csv.ts';
import { TraceFormatError } from './errors.ts';
import { diffMs, parseDatetime, type Instant } from './requests-timestamp.ts';
import { sharedTrace } from './shared-traces.ts';

export { TraceFormatError } from './errors.ts';

export interface RequestTrace {
  file: string;
  /** Arrival times in ms from the earliest request, non-decreasing. */
  tMs: Float64Array;
  contextTokens: Float64Array;
  generatedTokens: Float64Array;
  /** Rows whose timestamp was earlier than the row before them. */
  outOfOrderRows: number;
}

export interface LoadOptions {
  /** Read the first this many data rows only, an integer >= 1 (tests read a few). */
  maxRows?: number;
}

/**
 * Most rows a trace may hold unless the caller says otherwise (~24 bytes a row in memory): a
 * longer trace is an error, never cut silently; pass maxRows to read its first rows.
 */
export const DEFAULT_MAX_REQUEST_ROWS = 20_000_000;

const COLUMNS = ['TIMESTAMP', 'ContextTokens', 'GeneratedTokens'] as const;

/** Takes the header and then rows one at a time, from a file or a string alike. */
class AzureRequestParser {
  private cols: [number, number, number] | undefined;
  private base: Instant | undefined;
  private last = -Infinity;
  private readonly t: number[] = [];
  private readonly ctx: number[] = [];
  private readonly gen: number[] = [];
  outOfOrder = 0;

  constructor(
    private readonly file: string,
    /** Rows to read; with `cap`, rows at most (one more is an error) instead. */
    private readonly maxRows: number,
    private readonly cap: boolean,
  ) {}

  get full(): boolean {
    return this.t.length >= this.maxRows;
  }

  header(names: string[], lineNo: number): void {
    const csv = { file: this.file, header: names, headerLine: lineNo };
    const [ti, ci, gi] = COLUMNS.map((c) => {
      const i = findColumnOnce(csv, [c], true);
      if (i < 0) {
        const got = names.join(',');
        throw new TraceFormatError(this.file, lineNo, `header lacks column ${c} (got: ${got})`);
      }
      return i;
    });
    this.cols = [ti as number, ci as number, gi as number];
  }

  /** One data row; the format tolerates extra or missing fields past the ones it reads. */
  row({ line, fields }: CsvRow): boolean {
    if (this.cap && this.full) {
      throw new TraceFormatError(
        this.file,
        line,
        `more than ${this.maxRows} data rows; pass maxRows to read only the first ones`,
      );
    }
    const [ti, ci, gi] = this.cols as [number, number, number];
    const need = Math.max(ti, ci, gi) + 1;
    if (fields.length < need) {
      throw new TraceFormatError(
        this.file,
        line,
        `expected at least ${need} fields, got ${fields.length}`,
      );
    }
    const field = (i: number): string => (fields[i] as string).trim();
    const when = parseDatetime(field(ti));
    if (typeof when === 'string') throw new TraceFormatError(this.file, line, `TIMESTAMP: ${when}`);
    const context = this.tokens('ContextTokens', field(ci), line);
    const generated = this.tokens('GeneratedTokens', field(gi), line);
    this.base ??= when;
    const tMs = diffMs(this.base, when);
    if (tMs < this.last) this.outOfOrder++;
    this.last = tMs;
    this.t.push(tMs);
    this.ctx.push(context);
    this.gen.push(generated);
    return this.cap || !this.full;
  }

  private tokens(column: string, text: string, lineNo: number): number {
    const x = parseDecimal(text);
    if (!Number.isInteger(x) || x < 0) {
      throw new TraceFormatError(
        this.file,
        lineNo,
        `${column}: must be a non-negative integer, got ${JSON.stringify(text)}`,
      );
    }
    return x;
  }

  finish(): RequestTrace {
    if (this.t.length === 0) throw new TraceFormatError(this.file, 2, 'no data rows');
    const order = Array.from(this.t.keys());
    if (this.outOfOrder > 0) order.sort((a, b) => (this.t[a] as number) - (this.t[b] as number));
    // Relative to the earliest request: the first row unless rows were out of order.
    const t0 = this.t[order[0] as number] as number;
    return {
      file: this.file,
      tMs: Float64Array.from(order, (i) => (this.t[i] as number) - t0),
      contextTokens: Float64Array.from(order, (i) => this.ctx[i] as number),
      generatedTokens: Float64Array.from(order, (i) => this.gen[i] as number),
      outOfOrderRows: this.outOfOrder,
    };
  }
}

function parse(source: LineSource, opts: LoadOptions, cap: number): RequestTrace {
  const { maxRows } = opts;
  if (maxRows !== undefined && !(Number.isInteger(maxRows) && maxRows >= 1)) {
    throw new RangeError(`maxRows must be an integer >= 1, got ${maxRows}`);
  }
  const p = new AzureRequestParser(source.file, maxRows ?? cap, maxRows === undefined);
  forEachCsvRow(
    source,
    { exactFields: false },
    (names, line) => p.header(names, line),
    (row) => p.row(row),
  );
  return p.finish();
}

/**
 * Parses a trace held in a string; `file` names it in errors. `cap`, the most rows read when
 * maxRows is not given (more is an error), is DEFAULT_MAX_REQUEST_ROWS unless a test lowers it.
 */
export function parseAzureRequests(
  text: string,
  file: string,
  opts: LoadOptions = {},
  cap: number = DEFAULT_MAX_REQUEST_ROWS,
): RequestTrace {
  return parse({ file, content: text }, opts, cap);
}

/**
 * Streams a trace file, stopping after maxRows data rows. Async for its callers' sake; the
 * reading itself is synchronous, in bounded chunks, like every loader's.
 */
export async function loadAzureRequests(
  path: string,
  opts: LoadOptions = {},
): Promise<RequestTrace> {
  return parse({ file: path }, opts, DEFAULT_MAX_REQUEST_ROWS);
}

/** The shared Azure code-completion trace (`../shared/traces/requests/`). */
export const AZURE_CODE_TRACE = sharedTrace('requests/azure_llm2023_code.csv');
