// What the job-trace loaders share: the error naming file, line and reason; where the shared
// traces live; reading a CSV with a header; and field parsers that say what was wrong.
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';

/** Bad input in a job trace: `${file}:${line}: ${reason}`. Line numbers count from 1. */
export class JobTraceError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly reason: string,
  ) {
    super(`${file}:${line}: ${reason}`);
    this.name = 'JobTraceError';
  }
}

/** The project root (this file is envs/loaders/jobs-common.ts). */
export const PROJECT_ROOT = resolve(import.meta.dirname, '..', '..');

/** A file under the shared traces, `../shared/traces/` next to the project root. */
export function sharedTrace(relative: string): string {
  return resolve(PROJECT_ROOT, '..', 'shared', 'traces', relative);
}

/** Largest text file a loader reads whole (bounds memory on a wrong path). */
export const MAX_TRACE_BYTES = 1 << 30;

export function readTraceText(file: string): string {
  let size: number;
  try {
    size = statSync(file).size;
  } catch (err) {
    throw new JobTraceError(file, 0, `cannot read: ${(err as Error).message}`);
  }
  if (size > MAX_TRACE_BYTES)
    throw new JobTraceError(file, 0, `larger than ${MAX_TRACE_BYTES} bytes`);
  return readFileSync(file, 'utf8');
}

export interface CsvRow {
  /** 1-based line number in the file. */
  line: number;
  fields: string[];
}

export interface Csv {
  file: string;
  header: string[];
  rows: CsvRow[];
}

/**
 * Reads a CSV with a header line: plain comma-separated fields (no quoting), blank lines
 * skipped, every row as many fields as the header.
 */
export function readCsv(file: string, text: string = readTraceText(file)): Csv {
  const lines = text.split('\n');
  let h = 0;
  while (h < lines.length && (lines[h] as string).trim() === '') h++;
  if (h >= lines.length) throw new JobTraceError(file, 1, 'empty file: expected a header line');
  const header = splitLine(file, h + 1, (lines[h] as string).replace(/\r$/, '')).map((s) =>
    s.trim(),
  );
  const rows: CsvRow[] = [];
  for (let i = h + 1; i < lines.length; i++) {
    const raw = (lines[i] as string).replace(/\r$/, '');
    if (raw.trim() === '') continue;
    const fields = splitLine(file, i + 1, raw);
    if (fields.length !== header.length) {
      throw new JobTraceError(
        file,
        i + 1,
        `expected ${header.length} fields like the header, got ${fields.length}`,
      );
    }
    rows.push({ line: i + 1, fields });
  }
  return { file, header, rows };
}

function splitLine(file: string, line: number, raw: string): string[] {
  if (raw.includes('"')) throw new JobTraceError(file, line, 'quoted fields are not supported');
  return raw.split(',');
}

/** Column index by name, for every name in `required` (an error names the missing ones). */
export function columns<K extends string>(
  csv: Csv,
  required: readonly K[],
  optional: readonly K[] = [],
  allowOthers = true,
): Record<K, number> {
  const at = {} as Record<K, number>;
  const seen = new Set<string>();
  csv.header.forEach((name, i) => {
    if (seen.has(name))
      throw new JobTraceError(csv.file, 1, `column ${name} appears twice in the header`);
    seen.add(name);
    if (
      (required as readonly string[]).includes(name) ||
      (optional as readonly string[]).includes(name)
    ) {
      at[name as K] = i;
    } else if (!allowOthers) {
      const known = [...required, ...optional].join(', ');
      throw new JobTraceError(
        csv.file,
        1,
        `unknown column ${JSON.stringify(name)} (known: ${known})`,
      );
    }
  });
  const missing = required.filter((k) => at[k] === undefined);
  if (missing.length > 0) {
    throw new JobTraceError(csv.file, 1, `header lacks column(s) ${missing.join(', ')}`);
  }
  for (const k of optional) if (at[k] === undefined) at[k] = -1;
  return at;
}

/** Field parsers bound to one file; each throws a JobTraceError naming the column. */
export class FieldReader {
  constructor(
    readonly file: string,
    readonly header: readonly string[],
  ) {}

  text(row: CsvRow, col: number): string {
    return (row.fields[col] ?? '').trim();
  }

  number(
    row: CsvRow,
    col: number,
    rule: { min?: number; max?: number; integer?: boolean } = {},
  ): number {
    const name = this.header[col] ?? `column ${col}`;
    const s = this.text(row, col);
    const v = s === '' ? Number.NaN : Number(s);
    if (!Number.isFinite(v))
      throw new JobTraceError(
        this.file,
        row.line,
        `${name} must be a number, got ${JSON.stringify(s)}`,
      );
    if (rule.integer && !Number.isInteger(v))
      throw new JobTraceError(this.file, row.line, `${name} must be an integer, got ${s}`);
    if (rule.min !== undefined && v < rule.min)
      throw new JobTraceError(this.file, row.line, `${name} must be >= ${rule.min}, got ${s}`);
    if (rule.max !== undefined && v > rule.max)
      throw new JobTraceError(this.file, row.line, `${name} must be <= ${rule.max}, got ${s}`);
    return v;
  }

  /** An optional number: `fallback` when the column is absent (-1) or the field empty. */
  optionalNumber(
    row: CsvRow,
    col: number,
    fallback: number,
    rule: { min?: number; max?: number; integer?: boolean } = {},
  ): number {
    if (col < 0 || this.text(row, col) === '') return fallback;
    return this.number(row, col, rule);
  }

  fail(row: CsvRow, reason: string): never {
    throw new JobTraceError(this.file, row.line, reason);
  }
}
