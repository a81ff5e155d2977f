// What the job-trace loaders share beyond csv.ts: field parsers bound to one file that say
// which column was wrong and why.
import { parseDecimal, type CsvRow } from './csv.ts';
import { TraceFormatError } from './errors.ts';

// Kept for callers outside envs/ that import them from here.
export { PROJECT_ROOT, sharedTrace } from './shared-traces.ts';
/** The loaders' one error type, under the name callers of the job loaders know it by. */
export { TraceFormatError as JobTraceError } from './errors.ts';

/**
 * Longest time span a job trace may give, in seconds (about 32 years): a job's duration, and
 * the time from the trace's first arrival to any other. Spans, not absolute times, so a trace
 * in epoch seconds loads like one that starts at 0.
 */
export const MAX_TRACE_SECONDS = 1e9;
/**
 * Largest absolute time a job trace may give, in seconds: epoch seconds fit (until about the
 * year 5100), epoch milliseconds or microseconds written in a seconds column do not.
 */
export const MAX_TIME_SECONDS = 1e11;

interface NumberRule {
  min?: number;
  max?: number;
  integer?: boolean;
}

/** Field parsers bound to one file; each throws a TraceFormatError naming the column. */
export class FieldReader {
  constructor(
    readonly file: string,
    readonly header: readonly string[],
  ) {}

  text(row: CsvRow, col: number): string {
    return (row.fields[col] ?? '').trim();
  }

  number(row: CsvRow, col: number, rule: NumberRule = {}): number {
    const name = this.header[col] ?? `column ${col}`;
    const s = this.text(row, col);
    const v = parseDecimal(s);
    if (!Number.isFinite(v))
      this.fail(row, `${name} must be a decimal number, got ${JSON.stringify(s)}`);
    // Safe integers only: past 2^53 neighbours round together (two stage ids became one).
    if (rule.integer && !Number.isSafeInteger(v))
      this.fail(row, `${name} must be an integer of at most 2^53 - 1, got ${s}`);
    if (rule.min !== undefined && v < rule.min)
      this.fail(row, `${name} must be >= ${rule.min}, got ${s}`);
    if (rule.max !== undefined && v > rule.max)
      this.fail(row, `${name} must be <= ${rule.max}, got ${s}`);
    return v;
  }

  /** An optional number: `fallback` when the column is absent (-1) or the field empty. */
  optionalNumber(row: CsvRow, col: number, fallback: number, rule: NumberRule = {}): number {
    if (col < 0 || this.text(row, col) === '') return fallback;
    return this.number(row, col, rule);
  }

  fail(row: Pick<CsvRow, 'line'>, reason: string): never {
    throw new TraceFormatError(this.file, row.line, reason);
  }
}

/**
 * Arrival times in seconds as a trace gives them, turned into ms from the earliest one, as the
 * request loader does: a trace in epoch seconds and the same trace starting at 0 replay alike.
 */
export class Arrivals {
  private readonly s: number[] = [];
  private readonly lines: number[] = [];

  constructor(
    private readonly reader: FieldReader,
    /** The column the times come from, for messages. */
    private readonly column: string,
  ) {}

  add(row: Pick<CsvRow, 'line'>, seconds: number): void {
    this.s.push(seconds);
    this.lines.push(row.line);
  }

  /** Ms after the earliest time, in the order added; a span over MAX_TRACE_SECONDS fails. */
  rebasedMs(): number[] {
    let first = 0;
    for (let i = 1; i < this.s.length; i++)
      if ((this.s[i] as number) < (this.s[first] as number)) first = i;
    const origin = this.s[first] as number;
    return this.s.map((t, i) => {
      if (t - origin > MAX_TRACE_SECONDS) {
        this.reader.fail(
          { line: this.lines[i] as number },
          `${this.column} ${t} is more than ${MAX_TRACE_SECONDS} s after the trace's earliest ` +
            `(${origin}, line ${this.lines[first]})`,
        );
      }
      return Math.round((t - origin) * 1000);
    });
  }
}
