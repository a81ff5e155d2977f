// The Alibaba GPU-sharing cluster trace (alibaba/clusterdata cluster-trace-gpu-v2023, the
// "Beware of Fragmentation" ATC'23 trace): pods (`name,cpu_milli,memory_mib,num_gpu,gpu_milli,
// gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time`, seconds) and nodes
// (`sn,cpu_milli,memory_mib,gpu,model`). Each pod is a one-task job that arrives at its creation
// time and runs for deletion - scheduled time on a node the simulator's policy picks.
//
// Two kinds of pod have no true run time, and are handled explicitly:
// - never scheduled (scheduled_time empty, phase Pending): deleted without running, or still
//   pending at the trace's end (deletion_time empty too), so there is no run time to replay.
//   Dropped, and counted in notes.never_scheduled_dropped. A scheduled pod needs a deletion_time.
// - still Running when the trace ends: the deletion time is the trace's end, so the run time is
//   a lower bound. Kept (they hold capacity, which is what fragmentation is about) with that
//   lower bound, marked censored: left out of completion-time statistics, counted in
//   notes.running_censored.
// Arrivals are replayed from the earliest creation_time of the pods replayed (a trace in epoch
// seconds loads like one that starts at 0); the pods file is streamed, so maxPods reads only
// that many rows.
import type { Demand } from '../../policies/scheduling/index.ts';
import type { JobSpec, Workload, WorkerSpec } from '../scheduler/types.ts';
import { columns, forEachCsvRow, readCsv, type CsvRow } from './csv.ts';
import { Arrivals, FieldReader, MAX_TIME_SECONDS, MAX_TRACE_SECONDS } from './jobs-common.ts';
import { sharedTrace } from './shared-traces.ts';

export const ALIBABA_PODS_FILE = sharedTrace('jobs/alibaba_gpu2023_pods.csv');
export const ALIBABA_NODES_FILE = sharedTrace('jobs/alibaba_gpu2023_nodes.csv');

const PHASES = ['Pending', 'Running', 'Succeeded', 'Failed'] as const;
/** Kubernetes QoS classes as tenants, ranked for the priority policy (latency-sensitive high). */
const QOS_PRIORITY: Record<string, number> = { Guaranteed: 3, LS: 2, Burstable: 1, BE: 0 };

export function loadAlibabaNodes(file: string = ALIBABA_NODES_FILE): WorkerSpec[] {
  const csv = readCsv(file);
  const col = columns(csv, ['sn', 'cpu_milli', 'memory_mib', 'gpu'], ['model']);
  const r = new FieldReader(file, csv.header);
  if (csv.rows.length === 0) r.fail({ line: 2 }, 'no nodes: the file has a header but no rows');
  const seen = new Set<string>();
  return csv.rows.map((row) => {
    const id = r.text(row, col.sn);
    if (id === '') r.fail(row, 'sn must not be empty');
    if (seen.has(id)) r.fail(row, `node ${id} appears twice`);
    seen.add(id);
    const model = col.model >= 0 ? r.text(row, col.model) : '';
    const node: WorkerSpec = {
      id,
      capacity: {
        cpu: r.number(row, col.cpu_milli, { integer: true, min: 0 }) / 1000,
        memMb: r.number(row, col.memory_mib, { min: 0 }),
        gpu: r.number(row, col.gpu, { integer: true, min: 0 }),
      },
    };
    if (model !== '') node.gpuModel = model;
    return node;
  });
}

function podDemand(r: FieldReader, row: CsvRow, col: Record<string, number>): Demand {
  const cpuMilli = r.number(row, col.cpu_milli as number, { integer: true, min: 0 });
  const gpus = r.number(row, col.num_gpu as number, { integer: true, min: 0 });
  const gpuMilli = r.number(row, col.gpu_milli as number, { integer: true, min: 0, max: 1000 });
  if (gpus > 0 && gpuMilli === 0) r.fail(row, 'gpu_milli must be in 1..1000 when num_gpu > 0');
  // A share of no GPU contradicts itself: loading it as a CPU pod would drop the share unsaid.
  if (gpus === 0 && gpuMilli !== 0) r.fail(row, 'gpu_milli must be 0 when num_gpu is 0');
  if (cpuMilli === 0 && gpus === 0) r.fail(row, 'a pod must request cpu_milli > 0 or num_gpu > 0');
  const d: Demand = {
    cpu: cpuMilli / 1000,
    memMb: r.number(row, col.memory_mib as number, { min: 0 }),
    gpu: gpus,
  };
  if (gpus > 0) d.gpuMilli = gpuMilli;
  const spec = col.gpu_spec !== undefined && col.gpu_spec >= 0 ? r.text(row, col.gpu_spec) : '';
  if (spec !== '' && gpus > 0)
    d.gpuModels = spec
      .split('|')
      .map((m) => m.trim())
      .filter((m) => m !== '');
  return d;
}

export interface AlibabaLoadOptions {
  podsFile?: string;
  nodesFile?: string;
  /** Read at most this many pod rows (default: all). */
  maxPods?: number;
}

const POD_COLUMNS = [
  'name',
  'cpu_milli',
  'memory_mib',
  'num_gpu',
  'gpu_milli',
  'pod_phase',
  'creation_time',
  'deletion_time',
  'scheduled_time',
] as const;

export function loadAlibabaGpu(opts: AlibabaLoadOptions = {}): Workload {
  const podsFile = opts.podsFile ?? ALIBABA_PODS_FILE;
  const maxPods = opts.maxPods ?? Infinity;
  if (maxPods !== Infinity && !(Number.isInteger(maxPods) && maxPods >= 1)) {
    throw new RangeError(`maxPods must be an integer >= 1, got ${opts.maxPods}`);
  }
  const workers = loadAlibabaNodes(opts.nodesFile ?? ALIBABA_NODES_FILE);
  let col = {} as Record<(typeof POD_COLUMNS)[number] | 'gpu_spec' | 'qos', number>;
  let r = new FieldReader(podsFile, []);
  const arrivals = new Arrivals(r, 'creation_time');
  const jobs: JobSpec[] = [];
  const names = new Set<string>();
  let pods = 0;
  let neverScheduled = 0;
  let censored = 0;
  const onRow = (row: CsvRow): boolean => {
    pods++;
    const name = r.text(row, col.name);
    if (name === '') r.fail(row, 'name must not be empty');
    if (names.has(name)) r.fail(row, `pod ${name} appears twice`);
    names.add(name);
    const phase = r.text(row, col.pod_phase);
    if (!(PHASES as readonly string[]).includes(phase)) {
      r.fail(row, `pod_phase must be one of ${PHASES.join(', ')}, got ${JSON.stringify(phase)}`);
    }
    const demand = podDemand(r, row, col);
    const created = r.number(row, col.creation_time, { min: 0, max: MAX_TIME_SECONDS });
    const neverRan = r.text(row, col.scheduled_time) === '';
    // Never scheduled means Pending, and a Pending pod was never scheduled: a Running pod
    // without a schedule would be dropped as never scheduled, capacity and all, unsaid.
    if (neverRan !== (phase === 'Pending'))
      r.fail(
        row,
        neverRan
          ? `scheduled_time must be set for a ${phase} pod (only a Pending pod has none)`
          : 'scheduled_time must be empty for a Pending pod (it was never scheduled)',
      );
    // A pod never scheduled and still Pending at the trace's end has no deletion time either.
    const deleted =
      neverRan && r.text(row, col.deletion_time) === ''
        ? undefined
        : r.number(row, col.deletion_time, { min: 0, max: MAX_TIME_SECONDS });
    if (deleted !== undefined && deleted < created)
      r.fail(row, `deletion_time ${deleted} is before creation_time ${created}`);
    if (deleted !== undefined && deleted - created > MAX_TRACE_SECONDS) {
      r.fail(
        row,
        `deletion_time - creation_time must be <= ${MAX_TRACE_SECONDS} s, got ${deleted - created}`,
      );
    }
    if (!neverRan && deleted !== undefined) {
      const scheduled = r.number(row, col.scheduled_time, { min: created });
      if (deleted < scheduled)
        r.fail(row, `deletion_time ${deleted} is before scheduled_time ${scheduled}`);
      const runMs = Math.round((deleted - scheduled) * 1000);
      const qos = col.qos >= 0 ? r.text(row, col.qos) : '';
      const isCensored = phase === 'Running';
      if (isCensored) censored++;
      arrivals.add(row, created);
      jobs.push({
        id: name,
        arrivalMs: 0,
        tenant: qos === '' ? 'default' : qos,
        priority: Object.hasOwn(QOS_PRIORITY, qos) ? (QOS_PRIORITY[qos] as number) : 0,
        stages: [{ numTasks: 1, parents: [], demand, durationsMs: [runMs], estimateMs: runMs }],
        ...(isCensored ? { censored: true } : {}),
      });
    } else neverScheduled++;
    return pods < maxPods;
  };
  forEachCsvRow(
    { file: podsFile },
    {},
    (header, headerLine) => {
      col = columns({ file: podsFile, header, headerLine }, POD_COLUMNS, ['gpu_spec', 'qos']);
      r = new FieldReader(podsFile, header);
    },
    onRow,
  );
  if (pods === 0) r.fail({ line: 2 }, 'no pods: the file has a header but no rows');
  if (jobs.length === 0) {
    r.fail({ line: 0 }, `no scheduled pods: every pod row (${pods}) has an empty scheduled_time`);
  }
  arrivals.rebasedMs().forEach((ms, k) => ((jobs[k] as JobSpec).arrivalMs = ms));
  return {
    name: 'alibaba-gpu',
    jobs,
    workers,
    notes: {
      pods,
      never_scheduled_dropped: neverScheduled,
      running_censored: censored,
    },
  };
}
