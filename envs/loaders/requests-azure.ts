// Loader for request-arrival traces in the Azure LLM inference format (Azure/AzurePublicDataset
// 2023/2024): CSV with a header naming TIMESTAMP (a datetime string), ContextTokens and
// GeneratedTokens; other columns are ignored and order does not matter. Times come back in
// milliseconds relative to the earliest request (the first row of a sorted file). Rows out of
// time order are kept, counted and sorted, since a merged trace may interleave slightly.
// Malformed input fails with the file, the line and the reason.
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { diffMs, parseDatetime, type Instant } from './requests-timestamp.ts';

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
  /** Read at most this many data rows (tests read a few; a bound for huge files). */
  maxRows?: number;
}

/** Most rows a trace may hold unless the caller says otherwise (~24 bytes a row in memory). */
export const DEFAULT_MAX_REQUEST_ROWS = 20_000_000;

export class TraceFormatError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly reason: string,
  ) {
    super(`${file}:${line}: ${reason}`);
    this.name = 'TraceFormatError';
  }
}

const COLUMNS = ['TIMESTAMP', 'ContextTokens', 'GeneratedTokens'] as const;

function splitCsv(line: string): string[] {
  // The format has no embedded commas; quotes around a field are tolerated and removed.
  return line.split(',').map((f) => f.trim().replace(/^"(.*)"$/, '$1'));
}

/** Parses lines one at a time, so a file can be streamed and a string parsed the same way. */
class AzureRequestParser {
  private cols: number[] | undefined;
  private base: Instant | undefined;
  private last = -Infinity;
  private readonly t: number[] = [];
  private readonly ctx: number[] = [];
  private readonly gen: number[] = [];
  outOfOrder = 0;

  constructor(
    private readonly file: string,
    private readonly maxRows: number,
  ) {}

  get rows(): number {
    return this.t.length;
  }

  get full(): boolean {
    return this.t.length >= this.maxRows;
  }

  /** Feeds one line (1-based number); blank lines are skipped. */
  line(text: string, lineNo: number): void {
    const raw = lineNo === 1 ? text.replace(/^\uFEFF/, '') : text;
    if (raw.trim() === '') return;
    if (!this.cols) return this.header(raw, lineNo);
    const fields = splitCsv(raw);
    const [ti, ci, gi] = this.cols as [number, number, number];
    if (fields.length < this.cols.length || fields.length < Math.max(ti, ci, gi) + 1) {
      throw new TraceFormatError(
        this.file,
        lineNo,
        `expected at least ${Math.max(ti, ci, gi) + 1} fields, got ${fields.length}`,
      );
    }
    const when = parseDatetime(fields[ti] as string);
    if (typeof when === 'string')
      throw new TraceFormatError(this.file, lineNo, `TIMESTAMP: ${when}`);
    const context = this.tokens('ContextTokens', fields[ci] as string, lineNo);
    const generated = this.tokens('GeneratedTokens', fields[gi] as string, lineNo);
    this.base ??= when;
    const tMs = diffMs(this.base, when);
    if (tMs < this.last) this.outOfOrder++;
    this.last = tMs;
    this.t.push(tMs);
    this.ctx.push(context);
    this.gen.push(generated);
  }

  private header(text: string, lineNo: number): void {
    const names = splitCsv(text).map((n) => n.toLowerCase());
    this.cols = COLUMNS.map((c) => {
      const i = names.indexOf(c.toLowerCase());
      if (i < 0)
        throw new TraceFormatError(
          this.file,
          lineNo,
          `header lacks column ${c} (got: ${text.trim()})`,
        );
      return i;
    });
  }

  private tokens(column: string, text: string, lineNo: number): number {
    const x = text === '' ? Number.NaN : Number(text);
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
    if (!this.cols) throw new TraceFormatError(this.file, 1, 'empty file: no header');
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

/** Parses a trace held in a string; `file` names it in errors. */
export function parseAzureRequests(
  text: string,
  file: string,
  opts: LoadOptions = {},
): RequestTrace {
  const p = new AzureRequestParser(file, opts.maxRows ?? DEFAULT_MAX_REQUEST_ROWS);
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length && !p.full; i++) p.line(lines[i] as string, i + 1);
  return p.finish();
}

/** Streams a trace file, stopping after maxRows data rows. */
export async function loadAzureRequests(
  path: string,
  opts: LoadOptions = {},
): Promise<RequestTrace> {
  const p = new AzureRequestParser(path, opts.maxRows ?? DEFAULT_MAX_REQUEST_ROWS);
  const stream = createReadStream(path, { encoding: 'utf8' });
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  let lineNo = 0;
  try {
    for await (const line of lines) {
      p.line(line, ++lineNo);
      if (p.full) break;
    }
  } finally {
    lines.close();
    stream.destroy();
  }
  return p.finish();
}

/** The shared Azure code-completion trace, relative to the project root. */
export const AZURE_CODE_TRACE = '../shared/traces/requests/azure_llm2023_code.csv';
