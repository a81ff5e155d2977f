// The TPC-H task durations file (`scale,query,stage,num_executors,wave,duration_ms`, usually
// gzipped): 1.6 M rows, so rows are scanned as bytes rather than split into strings (about 3x
// faster on the shared file), and the result is cached per file and process. Lines come from
// csv.ts like every loader's; only a line holding a quote goes through the general CSV splitter.
// Columns are found by name, in any order; when scale,query,stage lead (as in the shared file)
// a run of rows of one stage is recognised by its byte prefix, without decoding it. Of the
// columns not replayed, num_executors is checked when present (an integer >= 1).
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { columns, csvFields, forEachLineBytes, parseDecimal } from './csv.ts';
import { TraceFormatError } from './errors.ts';
import { sharedTrace } from './shared-traces.ts';

export const TPCH_DURATIONS_FILE = sharedTrace('jobs/tpch_task_durations.csv.gz');

export const stageKey = (scale: string, query: string, stage: number) =>
  `${scale},${query},${stage}`;

const durationCache = new Map<
  string,
  { size: number; mtimeMs: number; samples: Map<string, Float64Array> }
>();

/** Duration samples per stage (`scale,query,stage` -> ms), read once per file and process. */
export function loadTpchDurations(file: string = TPCH_DURATIONS_FILE): Map<string, Float64Array> {
  let st;
  try {
    st = statSync(file);
  } catch (err) {
    throw new TraceFormatError(file, 0, `cannot read: ${(err as Error).message}`);
  }
  const key = resolve(file);
  const hit = durationCache.get(key);
  if (hit && hit.size === st.size && hit.mtimeMs === st.mtimeMs) return hit.samples;
  const samples = parseDurations(file);
  durationCache.set(key, { size: st.size, mtimeMs: st.mtimeMs, samples });
  return samples;
}

const COMMA = 0x2c;
const QUOTE = 0x22;

/** Where the fields are, from the header. */
interface Layout {
  ncols: number;
  scale: number;
  query: number;
  stage: number;
  dur: number;
  /** -1 when absent. */
  executors: number;
  /** scale,query,stage are the first three columns, so they are a prefix of each row. */
  keyLeads: boolean;
}

function layoutOf(file: string, line: number, text: string): Layout {
  const header = csvFields(file, line, text).map((s) => s.trim());
  const col = columns(
    { file, header, headerLine: line },
    ['scale', 'query', 'stage', 'duration_ms'],
    ['num_executors'],
  );
  return {
    ncols: header.length,
    scale: col.scale,
    query: col.query,
    stage: col.stage,
    dur: col.duration_ms,
    executors: col.num_executors,
    keyLeads: col.scale === 0 && col.query === 1 && col.stage === 2,
  };
}

function isBlank(buf: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (buf[i] !== 0x20 && buf[i] !== 0x09) return false;
  return true;
}

function parseDurations(file: string): Map<string, Float64Array> {
  let layout: Layout | undefined;
  const buckets = new Map<string, number[]>();
  let commas = new Int32Array(0);
  let bucket: number[] = [];
  // The key bytes of the previous row, copied: a streamed buffer is reused between chunks.
  let prevKey = Buffer.alloc(64);
  let prevLen = -1;
  forEachLineBytes({ file }, (buf, from, to, line) => {
    if (isBlank(buf, from, to)) return;
    if (!layout) {
      layout = layoutOf(file, line, buf.toString('utf8', from, to));
      commas = new Int32Array(layout.ncols + 1);
      return;
    }
    const { ncols } = layout;
    // Commas found in one pass; a quote sends the line to the general splitter instead.
    let n = 0;
    let quoted = false;
    for (let i = from; i < to; i++) {
      const c = buf[i];
      if (c === COMMA) {
        if (n <= ncols) commas[n] = i;
        n++;
      } else if (c === QUOTE) {
        quoted = true;
        break;
      }
    }
    if (quoted) {
      const fields = quotedRow(file, line, buf.toString('utf8', from, to), ncols);
      const f = (k: number) => fields[k] as string;
      bucket = bucketFor(file, line, f(layout.scale), f(layout.query), f(layout.stage), buckets);
      prevLen = -1;
      if (layout.executors >= 0) executorsOf(file, line, f(layout.executors));
      bucket.push(durationOf(file, line, f(layout.dur)));
      return;
    }
    if (n !== ncols - 1) {
      throw new TraceFormatError(
        file,
        line,
        `expected ${ncols} fields like the header, got ${n + 1}`,
      );
    }
    if (!layout.keyLeads) {
      const { scale, query, stage } = layout;
      bucket = bucketFor(
        file,
        line,
        fieldText(buf, from, to, commas, ncols, scale),
        fieldText(buf, from, to, commas, ncols, query),
        fieldText(buf, from, to, commas, ncols, stage),
        buckets,
      );
    } else {
      const keyEnd = commas[2] as number;
      if (prevLen !== keyEnd - from || buf.compare(prevKey, 0, prevLen, from, keyEnd) !== 0) {
        bucket = bucketFor(
          file,
          line,
          buf.toString('utf8', from, commas[0]),
          buf.toString('utf8', (commas[0] as number) + 1, commas[1]),
          buf.toString('utf8', (commas[1] as number) + 1, keyEnd),
          buckets,
        );
        if (keyEnd - from > prevKey.length) prevKey = Buffer.alloc(2 * (keyEnd - from));
        prevLen = buf.copy(prevKey, 0, from, keyEnd);
      }
    }
    const ex = layout.executors;
    if (ex >= 0) {
      const a = ex === 0 ? from : (commas[ex - 1] as number) + 1;
      const b = ex === ncols - 1 ? to : (commas[ex] as number);
      if (!(digitsValue(buf, a, b) >= 1))
        executorsOf(file, line, fieldText(buf, from, to, commas, ncols, ex));
    }
    const d = layout.dur;
    const a = d === 0 ? from : (commas[d - 1] as number) + 1;
    const b = d === ncols - 1 ? to : (commas[d] as number);
    const ms = digitsValue(buf, a, b);
    bucket.push(ms >= 0 ? ms : durationOf(file, line, buf.toString('utf8', a, b)));
  });
  if (!layout) throw new TraceFormatError(file, 1, 'empty file: expected a header line');
  const out = new Map<string, Float64Array>();
  for (const [k, v] of buckets) out.set(k, Float64Array.from(v));
  return out;
}

function quotedRow(file: string, line: number, text: string, ncols: number): string[] {
  const fields = csvFields(file, line, text);
  if (fields.length !== ncols) {
    throw new TraceFormatError(
      file,
      line,
      `expected ${ncols} fields like the header, got ${fields.length}`,
    );
  }
  return fields;
}

function bucketFor(
  file: string,
  line: number,
  scaleText: string | undefined,
  queryText: string | undefined,
  stageField: string | undefined,
  buckets: Map<string, number[]>,
): number[] {
  const scale = (scaleText ?? '').trim();
  const query = (queryText ?? '').trim();
  const stageText = (stageField ?? '').trim();
  const stage = parseDecimal(stageText);
  if (scale === '' || query === '')
    throw new TraceFormatError(file, line, 'scale and query must not be empty');
  if (stageText === '' || !Number.isSafeInteger(stage) || stage < 0) {
    throw new TraceFormatError(
      file,
      line,
      `stage must be an integer in 0..2^53 - 1, got ${JSON.stringify(stageText)}`,
    );
  }
  const key = stageKey(scale, query, stage);
  let b = buckets.get(key);
  if (!b) buckets.set(key, (b = []));
  return b;
}

/** Field k of the row buf[from, to), whose commas are at `commas`. */
function fieldText(
  buf: Buffer,
  from: number,
  to: number,
  commas: Int32Array,
  ncols: number,
  k: number,
): string {
  const a = k === 0 ? from : (commas[k - 1] as number) + 1;
  return buf.toString('utf8', a, k === ncols - 1 ? to : (commas[k] as number));
}

/** The value of buf[from, to) when it is all decimal digits (at most 15), else -1. */
function digitsValue(buf: Buffer, from: number, to: number): number {
  if (to <= from || to - from > 15) return -1;
  let v = 0;
  for (let i = from; i < to; i++) {
    const c = buf[i] as number;
    if (c < 0x30 || c > 0x39) return -1;
    v = v * 10 + (c - 0x30);
  }
  return v;
}

function durationOf(file: string, line: number, text: string): number {
  const x = parseDecimal(text);
  if (!(x >= 0)) {
    throw new TraceFormatError(
      file,
      line,
      `duration_ms must be a decimal number >= 0, got ${JSON.stringify(text.trim())}`,
    );
  }
  return x;
}

function executorsOf(file: string, line: number, text: string): number {
  const x = parseDecimal(text);
  if (!(Number.isInteger(x) && x >= 1)) {
    throw new TraceFormatError(
      file,
      line,
      `num_executors must be an integer >= 1, got ${JSON.stringify(text.trim())}`,
    );
  }
  return x;
}
