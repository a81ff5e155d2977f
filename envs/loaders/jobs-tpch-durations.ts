// The TPC-H task durations file (`scale,query,stage,...,duration_ms`, usually gzipped): 1.6 M
// rows, so rows are scanned as bytes rather than split into strings (about 3x faster on the
// shared file), and the result is cached per file and process. Lines come from csv.ts like every
// loader's; only a line holding a quote goes through the general CSV splitter.
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { forEachLineBytes, splitCsvLine } from './csv.ts';
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
  durCol: number;
}

function layoutOf(file: string, line: number, text: string): Layout {
  const header = (splitCsvLine(text) ?? []).map((s) => s.trim());
  // The stage's identity must lead the row, so a run of rows of one stage shares a byte prefix.
  if (header[0] !== 'scale' || header[1] !== 'query' || header[2] !== 'stage') {
    throw new TraceFormatError(file, line, 'header must start with scale,query,stage');
  }
  const durCol = header.indexOf('duration_ms');
  if (durCol < 3) throw new TraceFormatError(file, line, 'header lacks column duration_ms');
  return { ncols: header.length, durCol };
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
    const { ncols, durCol } = layout;
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
      bucket = bucketFor(file, line, fields[0], fields[1], fields[2], buckets);
      prevLen = -1;
      bucket.push(durationOf(file, line, fields[durCol] as string));
      return;
    }
    if (n !== ncols - 1) {
      throw new TraceFormatError(
        file,
        line,
        `expected ${ncols} fields like the header, got ${n + 1}`,
      );
    }
    const keyEnd = commas[2] as number;
    if (prevLen !== keyEnd - from || buf.compare(prevKey, 0, prevLen, from, keyEnd) !== 0) {
      const at = (k: number) => commas[k] as number;
      bucket = bucketFor(
        file,
        line,
        buf.toString('utf8', from, at(0)),
        buf.toString('utf8', at(0) + 1, at(1)),
        buf.toString('utf8', at(1) + 1, at(2)),
        buckets,
      );
      if (keyEnd - from > prevKey.length) prevKey = Buffer.alloc(2 * (keyEnd - from));
      prevLen = buf.copy(prevKey, 0, from, keyEnd);
    }
    const start = durCol === 0 ? from : (commas[durCol - 1] as number) + 1;
    const end = durCol === ncols - 1 ? to : (commas[durCol] as number);
    bucket.push(parseDuration(file, line, buf, start, end));
  });
  if (!layout) throw new TraceFormatError(file, 1, 'empty file: expected a header line');
  const out = new Map<string, Float64Array>();
  for (const [k, v] of buckets) out.set(k, Float64Array.from(v));
  return out;
}

function quotedRow(file: string, line: number, text: string, ncols: number): string[] {
  const fields = splitCsvLine(text);
  if (fields === null) throw new TraceFormatError(file, line, 'unterminated quoted field');
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
  const stage = Number(stageText);
  if (scale === '' || query === '')
    throw new TraceFormatError(file, line, 'scale and query must not be empty');
  if (stageText === '' || !Number.isInteger(stage) || stage < 0) {
    throw new TraceFormatError(
      file,
      line,
      `stage must be an integer >= 0, got ${JSON.stringify(stageText)}`,
    );
  }
  const key = stageKey(scale, query, stage);
  let b = buckets.get(key);
  if (!b) buckets.set(key, (b = []));
  return b;
}

/** Digits fast; anything else through durationOf. */
function parseDuration(file: string, line: number, buf: Buffer, from: number, to: number): number {
  let v = 0;
  let i = from;
  for (; i < to; i++) {
    const c = buf[i] as number;
    if (c < 0x30 || c > 0x39) break;
    v = v * 10 + (c - 0x30);
  }
  if (i === to && to > from) return v;
  return durationOf(file, line, buf.toString('utf8', from, to));
}

function durationOf(file: string, line: number, text: string): number {
  const s = text.trim();
  const x = s === '' ? Number.NaN : Number(s);
  if (!Number.isFinite(x) || x < 0) {
    throw new TraceFormatError(
      file,
      line,
      `duration_ms must be a number >= 0, got ${JSON.stringify(s)}`,
    );
  }
  return x;
}
