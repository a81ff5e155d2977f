// TPC-H query DAGs on Spark, from Decima (hongzimao/decima-sim): a stages CSV
// (`scale,query,stage,num_tasks,parents,children,...`, parents and children `;`-separated stage
// ids) and a gzipped CSV of measured task durations (`scale,query,stage,...,duration_ms`). A
// workload draws DAGs uniformly over (scale, query) as Decima does, each task's duration
// uniformly from its stage's measured samples, and Poisson arrivals rescaled to a target load.
// The durations file has its own reader (jobs-tpch-durations.ts): it is large.
import { createRng } from '../core/index.ts';
import { rescaleToLoad } from '../scheduler/load.ts';
import type { JobSpec, StageSpec, Workload, WorkerSpec } from '../scheduler/types.ts';
import { columns, parseDecimal, readCsv, type CsvRow } from './csv.ts';
import { TraceFormatError } from './errors.ts';
import { FieldReader } from './jobs-common.ts';
import { TPCH_DURATIONS_FILE, loadTpchDurations, stageKey } from './jobs-tpch-durations.ts';
import { sharedTrace } from './shared-traces.ts';

export { TPCH_DURATIONS_FILE, loadTpchDurations } from './jobs-tpch-durations.ts';
export const TPCH_STAGES_FILE = sharedTrace('jobs/tpch_stages.csv');
/** Most tasks a stage may have (the shared trace's largest has 593): each gets a duration array. */
export const MAX_STAGE_TASKS = 1_000_000;

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

// ---- the stages file ----

function stageIds(reader: FieldReader, row: CsvRow, col: number): number[] {
  const s = reader.text(row, col);
  if (s === '') return [];
  return s.split(';').map((part) => {
    const v = parseDecimal(part);
    if (part.trim() === '' || !Number.isSafeInteger(v) || v < 0) {
      reader.fail(
        row,
        `${reader.header[col]} must be ;-separated stage ids (integers 0..2^53 - 1), got ${JSON.stringify(s)}`,
      );
    }
    return v;
  });
}

/** A stage as its row gives it: ids, not yet indices. */
interface Raw {
  id: number;
  numTasks: number;
  parents: number[];
  /** null when the file has no children column. */
  children: number[] | null;
  line: number;
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
  const dags = new Map<string, { scale: string; query: string; raw: Raw[] }>();
  for (const row of csv.rows) {
    const scale = r.text(row, col.scale);
    const query = r.text(row, col.query);
    if (scale === '' || query === '') r.fail(row, 'scale and query must not be empty');
    const id = r.number(row, col.stage, { integer: true, min: 0 });
    const numTasks = r.number(row, col.num_tasks, {
      integer: true,
      min: 1,
      max: MAX_STAGE_TASKS,
    });
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
    const dag = `${scale},${query}`;
    // The links, both ways: a parent is another stage of the DAG, a child lists this stage
    // among its parents and, when the file has children, a parent lists it among its children.
    const parentsOf = raw.map((s) => {
      const where = (reason: string) => new TraceFormatError(stagesFile, s.line, reason);
      const parents = s.parents.map((p) => {
        const i = index.get(p);
        if (i === undefined || p === s.id)
          throw where(`parent ${p} is not another stage of ${dag}`);
        return i;
      });
      for (const c of s.children ?? []) {
        const child = raw[index.get(c) ?? -1];
        if (!child || !child.parents.includes(s.id)) {
          throw where(`child ${c} does not list stage ${s.id} among its parents`);
        }
      }
      return parents;
    });
    raw.forEach((s, k) => {
      for (const i of parentsOf[k] as number[]) {
        const parent = raw[i] as Raw;
        if (parent.children && !parent.children.includes(s.id)) {
          throw new TraceFormatError(
            stagesFile,
            s.line,
            `parent ${parent.id} does not list stage ${s.id} among its children (line ${parent.line})`,
          );
        }
      }
    });
    checkAcyclic(stagesFile, dag, raw, parentsOf);
    const stages = raw.map((s, k): TpchStage => {
      const got = samples.get(stageKey(scale, query, s.id));
      if (!got || got.length === 0) {
        throw new TraceFormatError(
          stagesFile,
          s.line,
          `no duration samples for ${stageKey(scale, query, s.id)} in ${durationsFile}`,
        );
      }
      let sum = 0;
      for (const x of got) sum += x;
      return {
        id: s.id,
        numTasks: s.numTasks,
        parents: parentsOf[k] as number[],
        samples: got,
        meanMs: sum / got.length,
      };
    });
    return { scale, query, stages };
  });
}

/**
 * A DAG's stages must have an order in which each comes after its parents (Kahn's algorithm);
 * a cycle fails at the line of its first stage in the file, naming the stages around it.
 */
function checkAcyclic(
  file: string,
  dag: string,
  raw: readonly Raw[],
  parentsOf: readonly (readonly number[])[],
): void {
  const lineOf = (k: number | undefined) => (raw[k as number] as Raw).line;
  const waiting = parentsOf.map((ps) => ps.length);
  const children: number[][] = raw.map(() => []);
  parentsOf.forEach((ps, k) => ps.forEach((p) => (children[p] as number[]).push(k)));
  const ready = waiting.flatMap((w, k) => (w === 0 ? [k] : []));
  let done = 0;
  while (ready.length > 0) {
    const k = ready.pop() as number;
    done++;
    for (const c of children[k] as number[]) {
      waiting[c] = (waiting[c] as number) - 1;
      if (waiting[c] === 0) ready.push(c);
    }
  }
  if (done === raw.length) return;
  // Walk parents among the stages left (each has one left) until a stage repeats: a cycle.
  const left = (k: number) => (waiting[k] as number) > 0;
  let k = waiting.findIndex((w) => w > 0);
  const seen = new Map<number, number>();
  const path: number[] = [];
  while (!seen.has(k)) {
    seen.set(k, path.length);
    path.push(k);
    k = (parentsOf[k] as number[]).find(left) as number;
  }
  // The cycle from its stage first in the file, each a parent of the next.
  const cycle = path.slice(seen.get(k)).reverse();
  let at = 0;
  for (let i = 1; i < cycle.length; i++) if (lineOf(cycle[i]) < lineOf(cycle[at])) at = i;
  const ids = [...cycle.slice(at), ...cycle.slice(0, at + 1)].map((i) => (raw[i] as Raw).id);
  throw new TraceFormatError(
    file,
    lineOf(cycle[at]),
    `stages ${ids.join(' -> ')} of ${dag} form a cycle (each a parent of the next)`,
  );
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
  // Cores are counted in millicores: a share that rounds to 0 would take no CPU at all.
  if (!Number.isFinite(demand.cpu) || Math.round(demand.cpu * 1000) < 1)
    throw new RangeError(`tpch: cpuPerTask must be at least 0.001, got ${demand.cpu}`);
  if (!Number.isFinite(demand.memMb) || demand.memMb < 0)
    throw new RangeError(`tpch: memMbPerTask must be a finite number >= 0, got ${demand.memMb}`);
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
