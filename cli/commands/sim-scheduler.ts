// `knobos sim scheduler`: run a job trace through the cluster simulator under one scheduling
// policy and report completion times, utilization and fairness. With --json the last stdout
// line is one JSON object (experiments/report.ts).
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadAlibabaGpu } from '../../envs/loaders/jobs-alibaba.ts';
import { JobTraceError } from '../../envs/loaders/jobs-common.ts';
import { loadJobsCsv } from '../../envs/loaders/jobs-csv.ts';
import { tpchWorkload } from '../../envs/loaders/jobs-tpch.ts';
import {
  WorkloadError,
  createSim,
  rescaleToLoad,
  summarise,
  taskDemands,
  uniformWorkers,
  type Workload,
  type WorkerSpec,
} from '../../envs/scheduler/index.ts';
import { emitResult } from '../../experiments/report.ts';
import {
  PLACEMENT_POLICIES,
  createPlacementPolicy,
  workloadClasses,
} from '../../policies/gpu/index.ts';
import {
  SCHEDULING_POLICY_NAMES,
  createSchedulingPolicy,
} from '../../policies/scheduling/index.ts';

const FORMATS = ['tpch', 'alibaba-gpu', 'jobs-csv'] as const;
type Format = (typeof FORMATS)[number];

const USAGE = `usage: knobos sim scheduler --trace FILE --format tpch|alibaba-gpu|jobs-csv
         --policy NAME [--load X] [--workers N] [--seed S] [--json] [options]

  --trace FILE          tpch: the stages CSV; alibaba-gpu: the pods CSV; jobs-csv: the jobs CSV
                        (header arrival_s,duration_s and optionally cpu,mem,gpu,tenant,priority)
  --format F            ${FORMATS.join(', ')}
  --policy NAME         ${SCHEDULING_POLICY_NAMES.join(', ')}
  --placement NAME      ${PLACEMENT_POLICIES.join(', ')} (default first_fit)
  --load X              rescale arrivals so the offered load on the workers is X
                        (tpch: default 0.85, Poisson arrivals as in Decima)
  --workers N           tpch/jobs-csv: N identical workers (default 50 / 10);
                        alibaba-gpu: the first N nodes of the nodes file (default all)
  --worker-cpu C        cores per worker (default tpch 1, jobs-csv 8)
  --worker-mem MB       memory per worker (default tpch 4096, jobs-csv 32768)
  --worker-gpu G        GPUs per worker (default 0)
  --seed S              seed of the workload draw and of stragglers/failures (default 1)
  --durations FILE      tpch: task durations (default tpch_task_durations.csv.gz beside --trace)
  --nodes FILE          alibaba-gpu: nodes CSV (default alibaba_gpu2023_nodes.csv beside --trace)
  --jobs N              tpch: jobs to draw (default 100)
  --tenants N           tpch: tenants (default 4)
  --straggler-prob P    share of attempts that straggle (Pareto slowdown; default 0)
  --failure-prob P      share of attempts that fail (default 0)
  --speculative         launch a copy of stragglers (threshold: --straggler-threshold, default 3)
  --straggler-threshold T
  --retry-limit N       retries after the first attempt (default 3)
  --dispatch-batch N    tasks per dispatch round trip (default 16)
  --json                print the result as one JSON object on the last line
`;

class UsageError extends Error {}

const OPTIONS = {
  trace: { type: 'string' },
  format: { type: 'string' },
  policy: { type: 'string' },
  placement: { type: 'string' },
  load: { type: 'string' },
  workers: { type: 'string' },
  'worker-cpu': { type: 'string' },
  'worker-mem': { type: 'string' },
  'worker-gpu': { type: 'string' },
  seed: { type: 'string' },
  durations: { type: 'string' },
  nodes: { type: 'string' },
  jobs: { type: 'string' },
  tenants: { type: 'string' },
  'straggler-prob': { type: 'string' },
  'failure-prob': { type: 'string' },
  speculative: { type: 'boolean', default: false },
  'straggler-threshold': { type: 'string' },
  'retry-limit': { type: 'string' },
  'dispatch-batch': { type: 'string' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>['values'];

/** A numeric option, or `fallback` when absent; `integer` and `min` are checked. */
function num(
  values: Values,
  name: keyof typeof OPTIONS,
  fallback: number,
  rule: { integer?: boolean; min?: number; above?: number } = {},
): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const v = Number(raw);
  const bad =
    typeof raw !== 'string' ||
    raw.trim() === '' ||
    !Number.isFinite(v) ||
    (rule.integer === true && !Number.isInteger(v)) ||
    (rule.min !== undefined && v < rule.min) ||
    (rule.above !== undefined && v <= rule.above);
  if (bad) {
    const what = [
      rule.integer ? 'an integer' : 'a number',
      rule.min !== undefined ? `>= ${rule.min}` : '',
      rule.above !== undefined ? `> ${rule.above}` : '',
    ]
      .filter(Boolean)
      .join(' ');
    throw new UsageError(`--${name} must be ${what}, got ${String(raw)}`);
  }
  return v;
}

function oneOf<T extends string>(
  flag: string,
  value: string | undefined,
  allowed: readonly T[],
): T {
  if (value === undefined || !(allowed as readonly string[]).includes(value)) {
    throw new UsageError(
      `--${flag} must be one of ${allowed.join(', ')}, got ${value ?? 'nothing'}`,
    );
  }
  return value as T;
}

function clusterFor(format: Format, values: Values, workload: Workload): readonly WorkerSpec[] {
  if (format === 'alibaba-gpu') {
    const nodes = workload.workers ?? [];
    const n = num(values, 'workers', nodes.length, { integer: true, min: 1 });
    return nodes.slice(0, n);
  }
  const tpch = format === 'tpch';
  return uniformWorkers(num(values, 'workers', tpch ? 50 : 10, { integer: true, min: 1 }), {
    cpu: num(values, 'worker-cpu', tpch ? 1 : 8, { above: 0 }),
    memMb: num(values, 'worker-mem', tpch ? 4096 : 32_768, { min: 0 }),
    gpu: num(values, 'worker-gpu', 0, { integer: true, min: 0 }),
  });
}

function loadWorkload(
  format: Format,
  trace: string,
  values: Values,
  seed: number,
): { workload: Workload; workers: readonly WorkerSpec[] } {
  if (format === 'tpch') {
    const workers = clusterFor(format, values, { name: 'tpch', jobs: [] });
    const workload = tpchWorkload({
      stagesFile: trace,
      durationsFile: values.durations ?? join(dirname(trace), 'tpch_task_durations.csv.gz'),
      jobs: num(values, 'jobs', 100, { integer: true, min: 2 }),
      load: num(values, 'load', 0.85, { above: 0 }),
      tenants: num(values, 'tenants', 4, { integer: true, min: 1 }),
      workers,
      seed,
    });
    return { workload, workers };
  }
  const loaded =
    format === 'alibaba-gpu'
      ? loadAlibabaGpu({
          podsFile: trace,
          nodesFile: values.nodes ?? join(dirname(trace), 'alibaba_gpu2023_nodes.csv'),
        })
      : loadJobsCsv(trace);
  const workers = clusterFor(format, values, loaded);
  const load = values.load === undefined ? undefined : num(values, 'load', 1, { above: 0 });
  return { workload: load === undefined ? loaded : rescaleToLoad(loaded, workers, load), workers };
}

export async function run(argv: string[]): Promise<number> {
  let values: Values;
  let format: Format;
  let policyName: string;
  let placementName: string;
  try {
    values = parseArgs({
      args: argv,
      options: OPTIONS,
      strict: true,
      allowPositionals: false,
    }).values;
    if (values.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    if (!values.trace) throw new UsageError('--trace is required');
    format = oneOf('format', values.format, FORMATS);
    policyName = oneOf('policy', values.policy, SCHEDULING_POLICY_NAMES);
    placementName = oneOf('placement', values.placement ?? 'first_fit', PLACEMENT_POLICIES);
  } catch (err) {
    process.stderr.write(`knobos sim scheduler: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  try {
    const seed = num(values, 'seed', 1, { integer: true });
    const { workload, workers } = loadWorkload(format, values.trace, values, seed);
    const config = {
      seed,
      stragglerProb: num(values, 'straggler-prob', 0, { min: 0 }),
      failureProb: num(values, 'failure-prob', 0, { min: 0 }),
      speculative: values.speculative,
      stragglerThreshold: num(values, 'straggler-threshold', 3, { above: 1 }),
      retryLimit: num(values, 'retry-limit', 3, { integer: true, min: 0 }),
      dispatchBatch: num(values, 'dispatch-batch', 16, { integer: true, min: 1 }),
    };
    const sim = createSim(workload, { workers, config });
    const classes = placementName === 'fgd' ? workloadClasses(taskDemands(workload)) : [];
    const policy = createSchedulingPolicy(policyName, {
      placement: createPlacementPolicy(placementName, classes),
    });
    const startMs = performance.now();
    sim.run((r, f, now) => policy.pick(r, f, now));
    const elapsedMs = performance.now() - startMs;
    const metrics = summarise(sim);
    const result = {
      trace: values.trace,
      format,
      policy: policyName,
      placement: placementName,
      load: values.load === undefined ? (format === 'tpch' ? 0.85 : null) : Number(values.load),
      workers: workers.length,
      seed,
      ...metrics,
      ...Object.fromEntries(
        Object.entries(workload.notes ?? {}).map(([k, v]) => [`trace_${k}`, v]),
      ),
      elapsed_ms: Math.round(elapsedMs * 10) / 10,
      events_per_s: Math.round(((metrics['events'] ?? 0) / Math.max(elapsedMs, 1e-3)) * 1000),
    };
    emitResult(human(result, metrics), result, values.json);
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`knobos sim scheduler: ${err.message}\n\n${USAGE}`);
      return 2;
    }
    if (err instanceof JobTraceError || err instanceof WorkloadError || err instanceof RangeError) {
      process.stderr.write(`knobos sim scheduler: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

function human(
  r: { trace: string; format: string; policy: string; placement: string; workers: number },
  m: Record<string, number>,
): string {
  const f = (x: number | undefined, d = 3) => (x === undefined ? '-' : x.toFixed(d));
  const lines = [
    `${r.policy} (placement ${r.placement}) on ${r.trace} [${r.format}], ${r.workers} workers`,
    `  jobs ${m['jobs']} (completed ${m['jobs_completed']}, failed ${m['jobs_failed']}, censored ${m['jobs_censored']})`,
    `  mean JCT ${f(m['mean_jct_s'])} s  p50 ${f(m['p50_jct_s'])} s  p99 ${f(m['p99_jct_s'])} s  mean slowdown ${f(m['mean_slowdown'])}`,
    `  utilization ${f(m['utilization'])}  makespan ${f(m['makespan_s'], 1)} s  Jain fairness ${f(m['jain_fairness'])}`,
  ];
  if (m['gpu_stranded_frac'] !== undefined)
    lines.push(`  GPU stranded by fragmentation ${f(m['gpu_stranded_frac'])}`);
  lines.push(
    `  ${m['events']} events, ${m['retries']} retries, ${m['speculative_copies']} speculative copies`,
  );
  return lines.join('\n') + '\n';
}
