// What the job-trace loaders share beyond csv.ts: field parsers bound to one file that say
// which column was wrong and why.
import type { CsvRow } from './csv.ts';
import { TraceFormatError } from './errors.ts';

// Kept for callers outside envs/ that import them from here.
export { PROJECT_ROOT, sharedTrace } from './shared-traces.ts';
/** The loaders' one error type, under the name callers of the job loaders know it by. */
export { TraceFormatError as JobTraceError } from './errors.ts';

/** Largest time a job trace may give (arrival, duration), in seconds: about 32 years. */
export const MAX_TRACE_SECONDS = 1e9;

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
    const v = s === '' ? Number.NaN : Number(s);
    if (!Number.isFinite(v)) this.fail(row, `${name} must be a number, got ${JSON.stringify(s)}`);
    if (rule.integer && !Number.isInteger(v))
      this.fail(row, `${name} must be an integer, got ${s}`);
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
