// Calibrating the cluster simulator from the scheduler's trace tables: the arrivals of the
// window become jobs (each task a stage, its parents the DAG), with run times from the
// durations trace. The streams are read as traceWindow cuts them (the newest part of the
// window, one span for all, after any sampled record). `durationSource: 'estimates'` uses the
// submitters' estimates instead of the measured run times: a simulator calibrated that way
// believes what users claim, which is the mis-calibration the fault tests use on purpose.
import type { JobSpec, StageSpec, Workload } from '../../../envs/scheduler/index.ts';
import type { KnobTable } from '../../knobs/table.ts';
import { traceWindow, type TraceWindow } from './common.ts';

export type DurationSource = 'measured' | 'estimates';

/** How far apart the clocks stamping a job's arrivals and its completion may be. */
const CLOCK_SLACK_MS = 100;

interface Arrival {
  at: number;
  id: string;
  job: string;
  tenant: string;
  priority: number;
  cpu: number;
  memMb: number;
  gpu: number;
  /** Share of each device (1..1000), as traced; a whole GPU when the trace has none. */
  gpuMilli: number;
  gpuModels: string[];
  estimateMs: number;
  parents: string[];
}

/** A trace record's number, or `fallback` when the field is absent; NaN when it is garbled. */
function num(v: string | undefined, fallback: number): number {
  return v === undefined || v === '' ? fallback : Number(v);
}

export interface SchedulerTraceWindow {
  workload: Workload;
  /** Jobs with an arrival traced in the window (finished or not: `minJobs` counts these). */
  jobs: number;
  /**
   * Completion time (ms) of each job of the workload seen to complete in the window. Jobs still
   * running at its end are not here: the long ones are the likeliest to be, so a fit compares
   * the simulated completion times of these jobs only.
   */
  completedMs: ReadonlyMap<string, number>;
  /** Jobs of the workload that failed in the window (left out of the fit too). */
  failed: number;
  /**
   * Jobs seen to complete whose first tasks are not in the window (it was cut between them):
   * their completion time counts tasks the workload does not hold, so the fit leaves them out.
   */
  partial: number;
  /** Arrival records left out: a numeric field that is no number (none from the service). */
  garbled: number;
  sampled: TraceWindow<string>['sampled'];
}

export async function workloadFromTraces(
  knobs: KnobTable,
  opts: { fromMs: number; toMs: number; maxRecords: number; durationSource: DurationSource },
): Promise<SchedulerTraceWindow> {
  const w = await traceWindow(
    knobs.redis,
    knobs.keys,
    'scheduler',
    ['arrivals', 'durations', 'jobs'],
    opts,
  );
  const { arrivals, durations, jobs: completions } = w.records;
  const measured = new Map<string, number>();
  /** When each task's successful run was recorded: a one-task job completed then. */
  const doneAt = new Map<string, number>();
  const dead = new Set<string>();
  for (const d of durations) {
    const id = d.fields['id'] ?? '';
    if (d.fields['outcome'] === undefined || d.fields['outcome'] === 'ok') {
      // A record without a usable run time says nothing of it (a NaN would reach the median
      // and every estimate made from it); its completion time still counts.
      const ms = num(d.fields['duration_ms'], Number.NaN);
      if (Number.isFinite(ms) && ms >= 0) measured.set(id, ms);
      doneAt.set(id, Number(d.fields['at']));
    } else if (d.fields['outcome'] === 'dead') dead.add(id);
  }
  const byJob = new Map<string, Arrival[]>();
  let garbled = 0;
  for (const e of arrivals) {
    const f = e.fields;
    const a: Arrival = {
      at: Number(f['at']),
      id: f['id'] ?? '',
      job: f['job'] ?? f['id'] ?? '',
      tenant: f['tenant'] ?? 'default',
      priority: num(f['priority'], 0),
      cpu: num(f['cpu'], 1),
      memMb: num(f['mem_mb'], 0),
      gpu: num(f['gpu'], 0),
      gpuMilli: num(f['gpu_milli'], 1000),
      gpuModels: f['gpu_models'] ? f['gpu_models'].split(',').filter(Boolean) : [],
      estimateMs: num(f['estimate_ms'], -1),
      parents: f['parents'] ? (f['parents'] as string).split(',').filter(Boolean) : [],
    };
    // A garbled record is left out rather than handed to the simulator as NaN.
    const bad = (['at', 'priority', 'cpu', 'memMb', 'gpu', 'gpuMilli', 'estimateMs'] as const).find(
      (k) => !Number.isFinite(a[k]),
    );
    if (bad !== undefined) {
      garbled++;
      continue;
    }
    const list = byJob.get(a.job) ?? [];
    list.push(a);
    byJob.set(a.job, list);
  }
  const known = [...measured.values()].sort((a, b) => a - b);
  const medianMs = known.length ? (known[Math.floor(known.length / 2)] as number) : 1_000;
  // A loop, not Math.min(...all): one argument per arrival overflows the stack past ~120k.
  let start = Infinity;
  for (const list of byJob.values()) for (const a of list) if (a.at < start) start = a.at;
  const jobs: JobSpec[] = [];
  for (const [id, tasks] of byJob) {
    const index = new Map(tasks.map((t, i) => [t.id, i]));
    const stages: StageSpec[] = tasks.map((t) => {
      const estimate = t.estimateMs >= 0 ? t.estimateMs : medianMs;
      const run = opts.durationSource === 'estimates' ? estimate : (measured.get(t.id) ?? estimate);
      return {
        numTasks: 1,
        parents: t.parents.flatMap((p) => (index.has(p) ? [index.get(p) as number] : [])),
        // The GPU share and models as submitted (as the live policy's views have them): a
        // 250-milli task taken for a whole GPU needed four where one served four live.
        demand: {
          cpu: t.cpu,
          memMb: t.memMb,
          gpu: t.gpu,
          ...(t.gpu > 0 && t.gpuMilli !== 1000 ? { gpuMilli: t.gpuMilli } : {}),
          ...(t.gpuModels.length > 0 ? { gpuModels: t.gpuModels } : {}),
        },
        durationsMs: [Math.max(1, run)],
        estimateMs: estimate,
      };
    });
    const first = tasks[0] as Arrival;
    jobs.push({
      id,
      arrivalMs: tasks.reduce((m, t) => Math.min(m, t.at), Infinity) - start,
      tenant: first.tenant,
      priority: first.priority,
      stages,
    });
  }
  jobs.sort((a, b) => a.arrivalMs - b.arrivalMs);
  // Only jobs that arrived in the window: a completion of an earlier job has no arrival here.
  // Workers trace only multi-task jobs to the jobs stream; a task that is its own job completed
  // when its successful run was recorded, counted from its arrival.
  const completedMs = new Map<string, number>();
  let failed = 0;
  let partial = 0;
  for (const c of completions) {
    const job = c.fields['job'] ?? '';
    const tasks = byJob.get(job);
    if (!tasks) continue;
    if (c.fields['failed'] === 'true') failed++;
    else {
      // A job the window's cut split: a task's parent is not here, or the job began (its
      // completion time before it ended) before its first task here did.
      const ids = new Set(tasks.map((t) => t.id));
      const began = Number(c.fields['at']) - Number(c.fields['completion_ms']);
      const firstAt = Math.min(...tasks.map((t) => t.at));
      if (tasks.some((t) => t.parents.some((p) => !ids.has(p))) || began < firstAt - CLOCK_SLACK_MS)
        partial++;
      else completedMs.set(job, Number(c.fields['completion_ms']));
    }
  }
  for (const [id, tasks] of byJob) {
    const only = tasks.length === 1 ? (tasks[0] as Arrival) : undefined;
    if (!only || only.id !== id) continue;
    const end = doneAt.get(id);
    if (end !== undefined && end >= only.at) completedMs.set(id, end - only.at);
    else if (dead.has(id)) failed++;
  }
  return {
    workload: { name: 'live scheduler traces', jobs },
    jobs: jobs.length,
    completedMs,
    failed,
    partial,
    garbled,
    sampled: w.sampled,
  };
}
