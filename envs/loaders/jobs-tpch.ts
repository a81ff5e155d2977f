// TPC-H query DAGs on Spark, from Decima (hongzimao/decima-sim): a stages CSV
// (`scale,query,stage,num_tasks,parents,children,...`, parents and children `;`-separated stage
// ids) and a gzipped CSV of measured task durations (`scale,query,stage,...,duration_ms`). A
// workload draws DAGs uniformly over (scale, query) as Decima does, each task's duration
// uniformly from its stage's measured samples, and Poisson arrivals rescaled to a target load.
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { createRng } from '../core/index.ts';
import { rescaleToLoad } from '../scheduler/load.ts';
import type { JobSpec, StageSpec, Workload, WorkerSpec } from '../scheduler/types.ts';
import { FieldReader, JobTraceError, columns, readCsv, sharedTrace } from './jobs-common.ts';

export const TPCH_STAGES_FILE = sharedTrace('jobs/tpch_stages.csv');
export const TPCH_DURATIONS_FILE = sharedTrace('jobs/tpch_task_durations.csv.gz');

export interface TpchStage {
  /** The stage id in the file. */
  id: number;
  numTasks: number;
  /** Indices into the DAG's `stages`. */
  parents: number[];
  /** Measured task durations, ms. */
  samples: Float64Array;
  meanMs: number;
}

export interface TpchDag {
  scale: string;
  query: string;
  stages: TpchStage[];
}

const stageKey = (scale: string, query: string, stage: number) => `${scale},${query},${stage}`;

// ---- the durations file: 1.6 M rows, parsed from bytes and cached per process ----

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
    throw new JobTraceError(file, 0, `cannot read: ${(err as Error).message}`);
  }
  const key = resolve(file);
  const hit = durationCache.get(key);
  if (hit && hit.size === st.size && hit.mtimeMs === st.mtimeMs) return hit.samples;
  const raw = readFileSync(file);
  const buf = file.endsWith('.gz') ? gunzipSync(raw) : raw;
  const samples = parseDurations(file, buf);
  durationCache.set(key, { size: st.size, mtimeMs: st.mtimeMs, samples });
  return samples;
}

const COMMA = 0x2c;
const NL = 0x0a;
const CR = 0x0d;

function parseDurations(file: string, buf: Buffer): Map<string, Float64Array> {
  let nl = buf.indexOf(NL);
  if (nl < 0) nl = buf.length;
  const header = buf
    .toString('latin1', 0, nl)
    .replace(/\r$/, '')
    .split(',')
    .map((s) => s.trim());
  // The stage's identity must lead the row, so a run of rows of one stage shares a byte prefix.
  if (header[0] !== 'scale' || header[1] !== 'query' || header[2] !== 'stage') {
    throw new JobTraceError(file, 1, 'header must start with scale,query,stage');
  }
  const durCol = header.indexOf('duration_ms');
  if (durCol < 3) throw new JobTraceError(file, 1, 'header lacks column duration_ms');
  const ncols = header.length;
  const buckets = new Map<string, number[]>();
  const commas = new Int32Array(ncols + 1);
  let bucket: number[] = [];
  let prevStart = -1;
  let prevEnd = -1;
  let line = 1;
  let pos = nl + 1;
  while (pos < buf.length) {
    line++;
    let end = buf.indexOf(NL, pos);
    if (end < 0) end = buf.length;
    let stop = end;
    if (stop > pos && buf[stop - 1] === CR) stop--;
    if (stop === pos) {
      pos = end + 1;
      continue;
    }
    let n = 0;
    for (let i = pos; i < stop && n <= ncols; i++) if (buf[i] === COMMA) commas[n++] = i;
    if (n !== ncols - 1)
      throw new JobTraceError(file, line, `expected ${ncols} fields like the header, got ${n + 1}`);
    const keyEnd = commas[2] as number;
    if (prevStart < 0 || buf.compare(buf, prevStart, prevEnd, pos, keyEnd) !== 0) {
      bucket = bucketFor(file, line, buf, pos, commas, buckets);
      prevStart = pos;
      prevEnd = keyEnd;
    }
    const from = durCol === 0 ? pos : (commas[durCol - 1] as number) + 1;
    const to = durCol === ncols - 1 ? stop : (commas[durCol] as number);
    bucket.push(parseDuration(file, line, buf, from, to));
    pos = end + 1;
  }
  const out = new Map<string, Float64Array>();
  for (const [k, v] of buckets) out.set(k, Float64Array.from(v));
  return out;
}

function bucketFor(
  file: string,
  line: number,
  buf: Buffer,
  pos: number,
  commas: Int32Array,
  buckets: Map<string, number[]>,
): number[] {
  const scale = buf.toString('latin1', pos, commas[0]).trim();
  const query = buf.toString('latin1', (commas[0] as number) + 1, commas[1]).trim();
  const stageText = buf.toString('latin1', (commas[1] as number) + 1, commas[2]).trim();
  const stage = Number(stageText);
  if (scale === '' || query === '')
    throw new JobTraceError(file, line, 'scale and query must not be empty');
  if (stageText === '' || !Number.isInteger(stage) || stage < 0) {
    throw new JobTraceError(
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

/** Digits fast; anything else through Number(), with the same checks. */
function parseDuration(file: string, line: number, buf: Buffer, from: number, to: number): number {
  let v = 0;
  let i = from;
  for (; i < to; i++) {
    const c = buf[i] as number;
    if (c < 0x30 || c > 0x39) break;
    v = v * 10 + (c - 0x30);
  }
  if (i === to && to > from) return v;
  const s = buf.toString('latin1', from, to).trim();
  const x = s === '' ? Number.NaN : Number(s);
  if (!Number.isFinite(x) || x < 0) {
    throw new JobTraceError(
      file,
      line,
      `duration_ms must be a number >= 0, got ${JSON.stringify(s)}`,
    );
  }
  return x;
}

// ---- the stages file ----

function stageIds(
  reader: FieldReader,
  row: { line: number; fields: string[] },
  col: number,
): number[] {
  const s = reader.text(row, col);
  if (s === '') return [];
  return s.split(';').map((part) => {
    const v = Number(part.trim());
    if (part.trim() === '' || !Number.isInteger(v) || v < 0) {
      reader.fail(
        row,
        `${reader.header[col]} must be ;-separated stage ids, got ${JSON.stringify(s)}`,
      );
    }
    return v;
  });
}

/** The DAGs of a stages file, each stage with its duration samples. */
export function loadTpchDags(
  stagesFile: string = TPCH_STAGES_FILE,
  durationsFile: string = TPCH_DURATIONS_FILE,
): TpchDag[] {
  const csv = readCsv(stagesFile);
  const col = columns(csv, ['scale', 'query', 'stage', 'num_tasks', 'parents'], ['children']);
  const r = new FieldReader(stagesFile, csv.header);
  const samples = loadTpchDurations(durationsFile);
  interface Raw {
    id: number;
    numTasks: number;
    parents: number[];
    children: number[] | null;
    line: number;
  }
  const dags = new Map<string, { scale: string; query: string; raw: Raw[] }>();
  for (const row of csv.rows) {
    const scale = r.text(row, col.scale);
    const query = r.text(row, col.query);
    if (scale === '' || query === '') r.fail(row, 'scale and query must not be empty');
    const id = r.number(row, col.stage, { integer: true, min: 0 });
    const numTasks = r.number(row, col.num_tasks, { integer: true, min: 1 });
    const parents = stageIds(r, row, col.parents);
    const children = col.children >= 0 ? stageIds(r, row, col.children) : null;
    const key = `${scale},${query}`;
    let dag = dags.get(key);
    if (!dag) dags.set(key, (dag = { scale, query, raw: [] }));
    if (dag.raw.some((s) => s.id === id)) r.fail(row, `stage ${id} of ${key} appears twice`);
    dag.raw.push({ id, numTasks, parents, children, line: row.line });
  }
  return [...dags.values()].map(({ scale, query, raw }) => {
    const index = new Map(raw.map((s, i) => [s.id, i]));
    const stages = raw.map((s): TpchStage => {
      const where = (reason: string) => new JobTraceError(stagesFile, s.line, reason);
      const parents = s.parents.map((p) => {
        const i = index.get(p);
        if (i === undefined || p === s.id)
          throw where(`parent ${p} is not another stage of ${scale},${query}`);
        return i;
      });
      for (const c of s.children ?? []) {
        const child = raw[index.get(c) ?? -1];
        if (!child || !child.parents.includes(s.id)) {
          throw where(`child ${c} does not list stage ${s.id} among its parents`);
        }
      }
      const got = samples.get(stageKey(scale, query, s.id));
      if (!got || got.length === 0) {
        throw where(`no duration samples for ${stageKey(scale, query, s.id)} in ${durationsFile}`);
      }
      let sum = 0;
      for (const x of got) sum += x;
      return { id: s.id, numTasks: s.numTasks, parents, samples: got, meanMs: sum / got.length };
    });
    return { scale, query, stages };
  });
}

export interface TpchWorkloadOptions {
  stagesFile?: string;
  durationsFile?: string;
  /** Jobs to draw (default 100). */
  jobs?: number;
  /** Offered load on `workers` (default 0.85). */
  load?: number;
  workers: readonly WorkerSpec[];
  seed?: number;
  /** Tenants, assigned uniformly at random (default 4). */
  tenants?: number;
  /** What one task needs (default one core). */
  cpuPerTask?: number;
  memMbPerTask?: number;
}

/** A stream of TPC-H jobs with Poisson arrivals at the target load. */
export function tpchWorkload(opts: TpchWorkloadOptions): Workload {
  const dags = loadTpchDags(opts.stagesFile, opts.durationsFile);
  return tpchWorkloadFrom(dags, opts);
}

/** As `tpchWorkload`, from DAGs already loaded (sampling only; no file access). */
export function tpchWorkloadFrom(dags: readonly TpchDag[], opts: TpchWorkloadOptions): Workload {
  const n = opts.jobs ?? 100;
  const tenants = opts.tenants ?? 4;
  if (!Number.isInteger(n) || n < 2)
    throw new RangeError(`tpch: jobs must be an integer >= 2, got ${n}`);
  if (!Number.isInteger(tenants) || tenants < 1)
    throw new RangeError(`tpch: tenants must be an integer >= 1, got ${tenants}`);
  if (dags.length === 0) throw new RangeError('tpch: no DAGs to draw from');
  const rng = createRng(opts.seed ?? 1);
  const demand = { cpu: opts.cpuPerTask ?? 1, memMb: opts.memMbPerTask ?? 0, gpu: 0 };
  const jobs: JobSpec[] = [];
  let t = 0;
  for (let k = 0; k < n; k++) {
    const dag = dags[rng.int(dags.length)] as TpchDag;
    const stages = dag.stages.map((s): StageSpec => {
      const durationsMs = new Float64Array(s.numTasks);
      for (let i = 0; i < s.numTasks; i++)
        durationsMs[i] = s.samples[rng.int(s.samples.length)] as number;
      return {
        numTasks: s.numTasks,
        parents: s.parents,
        demand,
        durationsMs,
        estimateMs: s.meanMs,
      };
    });
    jobs.push({
      id: `tpch-${dag.scale}-q${dag.query}-${k}`,
      arrivalMs: Math.round(t),
      tenant: `t${rng.int(tenants)}`,
      priority: 0,
      stages,
    });
    t += rng.exponential(1) * 1000;
  }
  return rescaleToLoad({ name: 'tpch', jobs }, opts.workers, opts.load ?? 0.85);
}
