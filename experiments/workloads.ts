// Reading an experiment's trace, whatever the file: each trace family has its formats and one
// loader per format, so `knobos exp <name> --trace FILE --format FMT` runs on any file of a
// supported format, not only the shared ones. A jobs trace becomes a scenario (a workload and
// its cluster per seed), replayed at the offered load the run asks for (85% by default).
import { existsSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { CACHE_TRACE_FORMATS, loadCacheTrace } from '../envs/loaders/cache-load.ts';
import type { CacheTrace } from '../envs/loaders/cache-trace.ts';
import { loadAlibabaGpu } from '../envs/loaders/jobs-alibaba.ts';
import { loadJobsCsv } from '../envs/loaders/jobs-csv.ts';
import { loadTpchDags, tpchWorkloadFrom, type TpchDag } from '../envs/loaders/jobs-tpch.ts';
import { traceSource, type MessageSource } from '../envs/messaging/index.ts';
import { TraceFormatError } from '../envs/loaders/errors.ts';
import { notRescalable, rescaleToLoad } from '../envs/scheduler/load.ts';
import { uniformWorkers, type Workload, type WorkerSpec } from '../envs/scheduler/types.ts';
import type { JobsScenario, LoadedTrace, RunContext, TraceKind, TraceSource } from './spec.ts';

/** The project root (this file is experiments/workloads.ts): spec trace paths are relative to it. */
export const PROJECT_ROOT = resolve(import.meta.dirname, '..');

/** The formats of each trace family (the values of --format). */
export const TRACE_FORMATS: Record<TraceKind, readonly string[]> = {
  cache: CACHE_TRACE_FORMATS,
  jobs: ['tpch', 'csv', 'alibaba'],
  requests: ['azure'],
};

/** A bad --trace/--format pair: names the field and the rule. */
export class TraceOptionError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = 'TraceOptionError';
  }
}

/** The simulated cluster for traces without their own: TPC-H tasks take one core each. */
export const JOBS_CLUSTER = { workers: 25, quickWorkers: 4 } as const;
/** Jobs per TPC-H draw (Decima streams jobs into a 50-executor cluster; ours is half that). */
export const TPCH_JOBS = { jobs: 60, quickJobs: 4 } as const;
/** A fixed jobs trace in a quick run keeps only its first jobs. */
export const QUICK_TRACE_JOBS = 200;
/** A cache trace in a quick run keeps only its first requests. */
export const QUICK_CACHE_REQUESTS = 5_000;
/** A requests trace in a quick run keeps only its first rows. */
export const QUICK_REQUEST_ROWS = 1_000;

/** A spec's trace path is relative to the project root; a user's is relative to the cwd. */
export function specPath(path: string): string {
  return isAbsolute(path) ? path : resolve(PROJECT_ROOT, path);
}

export function checkFormat(kind: TraceKind, format: string): void {
  const formats = TRACE_FORMATS[kind];
  if (!formats.includes(format)) {
    throw new TraceOptionError(
      'format',
      `--format for a ${kind} trace must be one of ${formats.join(', ')}, got ${format}`,
    );
  }
}

/** The file next to `file` named `sibling`, or undefined if there is none. */
function siblingFile(file: string, sibling: string): string | undefined {
  const p = join(dirname(file), sibling);
  return existsSync(p) ? p : undefined;
}

function clusterFor(workload: Workload, quick: boolean): WorkerSpec[] {
  let cpu = 1;
  let memMb = 4_096;
  let gpu = 0;
  for (const j of workload.jobs) {
    for (const s of j.stages) {
      cpu = Math.max(cpu, s.demand.cpu);
      memMb = Math.max(memMb, s.demand.memMb);
      gpu = Math.max(gpu, s.demand.gpu);
    }
  }
  const n = quick ? JOBS_CLUSTER.quickWorkers : JOBS_CLUSTER.workers;
  return uniformWorkers(n, { cpu, memMb, gpu });
}

/** TPC-H: DAGs drawn per seed with Poisson arrivals at the target load. */
export function tpchScenario(
  dags: readonly TpchDag[],
  ctx: RunContext,
  jobsWanted: number = TPCH_JOBS.jobs,
): JobsScenario {
  const workers = uniformWorkers(ctx.quick ? JOBS_CLUSTER.quickWorkers : JOBS_CLUSTER.workers, {
    cpu: 1,
    memMb: 4_096,
    gpu: 0,
  });
  const jobs = ctx.quick ? Math.min(jobsWanted, TPCH_JOBS.quickJobs) : jobsWanted;
  return {
    name: `tpch(${jobs} jobs, ${workers.length} workers, load ${ctx.load})`,
    scenario: (seed) => ({
      workload: tpchWorkloadFrom(dags, { workers, jobs, load: ctx.load, seed }),
      workers,
    }),
    withJobs: (n) => tpchScenario(dags, ctx, n),
  };
}

/** A fixed jobs trace: the same jobs for every seed (the seed drives the sim's own draws). */
function fixedScenario(file: string, workload: Workload, ctx: RunContext): JobsScenario {
  const cut = ctx.quick
    ? { ...workload, jobs: [...workload.jobs].slice(0, QUICK_TRACE_JOBS) }
    : workload;
  const workers = cut.workers ?? clusterFor(cut, ctx.quick);
  const why = notRescalable(cut.jobs, workers);
  if (why !== null)
    throw new TraceFormatError(file, 0, `a jobs trace replayed at an offered load needs ${why}`);
  const scaled = rescaleToLoad(cut, workers, ctx.load);
  return {
    name: `${basename(workload.name)}(${scaled.jobs.length} jobs, load ${ctx.load})`,
    scenario: () => ({ workload: scaled, workers }),
  };
}

function loadJobs(file: string, format: string, ctx: RunContext): JobsScenario {
  switch (format) {
    case 'tpch': {
      const durations =
        siblingFile(file, 'tpch_task_durations.csv.gz') ??
        siblingFile(file, 'tpch_task_durations.csv');
      if (!durations) {
        throw new TraceOptionError(
          'trace',
          `a tpch stages file needs its task durations next to it ` +
            `(tpch_task_durations.csv.gz or .csv in ${dirname(file)})`,
        );
      }
      return tpchScenario(loadTpchDags(file, durations), ctx);
    }
    case 'csv':
      return fixedScenario(file, loadJobsCsv(file), ctx);
    case 'alibaba': {
      const nodes = siblingFile(file, basename(file).replace(/pods/, 'nodes'));
      if (!nodes || nodes === file) {
        throw new TraceOptionError(
          'trace',
          `an alibaba pods file needs its nodes file next to it (the name with pods -> nodes)`,
        );
      }
      return fixedScenario(file, loadAlibabaGpu({ podsFile: file, nodesFile: nodes }), ctx);
    }
    default:
      throw new TraceOptionError('format', `unknown jobs format ${format}`);
  }
}

/** Reads the trace `source` of family `kind`; `file` is the path resolved for reading. */
export async function loadTrace(
  kind: TraceKind,
  source: TraceSource,
  file: string,
  ctx: RunContext,
): Promise<LoadedTrace> {
  checkFormat(kind, source.format);
  if (!existsSync(file)) throw new TraceOptionError('trace', `no such file: ${source.path}`);
  switch (kind) {
    case 'cache': {
      const trace: CacheTrace = loadCacheTrace(file, {
        format: source.format as (typeof CACHE_TRACE_FORMATS)[number],
        ...(ctx.quick ? { maxRequests: QUICK_CACHE_REQUESTS } : {}),
      });
      return { kind, source, trace };
    }
    case 'jobs':
      return { kind, source, jobs: loadJobs(file, source.format, ctx) };
    case 'requests': {
      const messages: MessageSource = await traceSource(
        file,
        undefined,
        ctx.quick ? { maxRows: QUICK_REQUEST_ROWS } : {},
      );
      return { kind, source, messages };
    }
  }
}
