// `knobos sim scheduler`: run a job trace through the cluster simulator under one scheduling
// policy and report completion times, utilization and fairness. With --json the last stdout
// line is one JSON object (experiments/report.ts).
import { dirname, join } from 'node:path';
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
import { commandFailed, emitResult } from '../../experiments/report.ts';
import { numberFlag, parseFlags, UsageError, type FlagRule } from '../args.ts';
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
  --worker-cpu C        tpch/jobs-csv: cores per worker (default tpch 1, jobs-csv 8)
  --worker-mem MB       tpch/jobs-csv: memory per worker (default tpch 4096, jobs-csv 32768)
  --worker-gpu G        tpch/jobs-csv: GPUs per worker (default 0)
  --seed S              integer seed of the workload draw and of stragglers/failures (default 1)
  --durations FILE      tpch: task durations (default tpch_task_durations.csv.gz beside --trace)
  --nodes FILE          alibaba-gpu: nodes CSV (default alibaba_gpu2023_nodes.csv beside --trace)
  --jobs N              tpch: jobs to draw (default 100)
  --tenants N           tpch: tenants (default 4)
  --straggler-prob P    share of attempts that straggle, in [0, 1] (Pareto slowdown; default 0)
  --failure-prob P      share of attempts that fail, in [0, 1) (default 0)
  --speculative         launch a copy of stragglers (threshold: --straggler-threshold, default 3)
  --straggler-threshold T  with --speculative: a straggler runs T times its stage's median (> 1)
  --retry-limit N       retries after the first attempt (default 3)
  --dispatch-batch N    tasks per dispatch round trip (default 16)
  --json                print the result as one JSON object on the last line
A flag that does not apply to the --format given is refused; numbers are plain decimals.
`;

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

type Values = ReturnType<typeof parseFlags<{ options: typeof OPTIONS }>>['values'];
type StringFlag = {
  [K in keyof typeof OPTIONS]: (typeof OPTIONS)[K]['type'] extends 'string' ? K : never;
}[keyof typeof OPTIONS];

/** Flags that apply to some formats only; given with another, they are refused, not ignored. */
const FORMAT_ONLY: Partial<Record<StringFlag, readonly Format[]>> = {
  jobs: ['tpch'],
  tenants: ['tpch'],
  durations: ['tpch'],
  nodes: ['alibaba-gpu'],
  // An Alibaba trace brings its own nodes.
  'worker-cpu': ['tpch', 'jobs-csv'],
  'worker-mem': ['tpch', 'jobs-csv'],
  'worker-gpu': ['tpch', 'jobs-csv'],
};

/** Every numeric option, checked before any file is read; undefined: the format's default. */
interface Numbers {
  seed: number;
  load: number | undefined;
  workers: number | undefined;
  workerCpu: number;
  workerMem: number;
  workerGpu: number;
  jobs: number;
  tenants: number;
  stragglerProb: number;
  failureProb: number;
  stragglerThreshold: number;
  retryLimit: number;
  dispatchBatch: number;
}

function numbers(values: Values, format: Format): Numbers {
  for (const [flag, formats] of Object.entries(FORMAT_ONLY)) {
    if (values[flag as StringFlag] !== undefined && !formats.includes(format)) {
      throw new UsageError(`--${flag} applies only to --format ${formats.join(', ')}`);
    }
  }
  if (values['straggler-threshold'] !== undefined && !values.speculative) {
    throw new UsageError('--straggler-threshold applies only with --speculative');
  }
  const tpch = format === 'tpch';
  const n = (flag: StringFlag, rule: FlagRule, fallback: number): number =>
    numberFlag(flag, values[flag], rule, fallback);
  const count = { integer: true, min: 1 };
  return {
    seed: n('seed', { integer: true }, 1),
    load: numberFlag('load', values.load, { above: 0 }) ?? (tpch ? 0.85 : undefined),
    workers:
      numberFlag('workers', values.workers, count) ??
      (format === 'alibaba-gpu' ? undefined : tpch ? 50 : 10),
    workerCpu: n('worker-cpu', { above: 0 }, tpch ? 1 : 8),
    workerMem: n('worker-mem', { min: 0 }, tpch ? 4096 : 32_768),
    workerGpu: n('worker-gpu', { integer: true, min: 0 }, 0),
    jobs: n('jobs', { integer: true, min: 2 }, 100),
    tenants: n('tenants', count, 4),
    stragglerProb: n('straggler-prob', { min: 0, max: 1 }, 0),
    failureProb: n('failure-prob', { min: 0, below: 1 }, 0),
    stragglerThreshold: n('straggler-threshold', { above: 1 }, 3),
    retryLimit: n('retry-limit', { integer: true, min: 0 }, 3),
    dispatchBatch: n('dispatch-batch', count, 16),
  };
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

function clusterFor(format: Format, nums: Numbers, workload: Workload): readonly WorkerSpec[] {
  if (format === 'alibaba-gpu') {
    const nodes = workload.workers ?? [];
    return nodes.slice(0, nums.workers ?? nodes.length);
  }
  return uniformWorkers(nums.workers ?? 1, {
    cpu: nums.workerCpu,
    memMb: nums.workerMem,
    gpu: nums.workerGpu,
  });
}

function loadWorkload(
  format: Format,
  trace: string,
  values: Values,
  nums: Numbers,
): { workload: Workload; workers: readonly WorkerSpec[] } {
  if (format === 'tpch') {
    const workers = clusterFor(format, nums, { name: 'tpch', jobs: [] });
    const workload = tpchWorkload({
      stagesFile: trace,
      durationsFile: values.durations ?? join(dirname(trace), 'tpch_task_durations.csv.gz'),
      jobs: nums.jobs,
      load: nums.load ?? 0.85,
      tenants: nums.tenants,
      workers,
      seed: nums.seed,
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
  const workers = clusterFor(format, nums, loaded);
  const load = nums.load;
  return { workload: load === undefined ? loaded : rescaleToLoad(loaded, workers, load), workers };
}

export async function run(argv: string[]): Promise<number> {
  let values: Values;
  let format: Format;
  let policyName: string;
  let placementName: string;
  let nums: Numbers;
  try {
    values = parseFlags({
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
    nums = numbers(values, format);
  } catch (err) {
    return commandFailed(`knobos sim scheduler: ${(err as Error).message}`, err, argv, USAGE);
  }
  try {
    const { workload, workers } = loadWorkload(format, values.trace, values, nums);
    const config = {
      seed: nums.seed,
      stragglerProb: nums.stragglerProb,
      failureProb: nums.failureProb,
      speculative: values.speculative,
      stragglerThreshold: nums.stragglerThreshold,
      retryLimit: nums.retryLimit,
      dispatchBatch: nums.dispatchBatch,
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
      load: nums.load ?? null,
      workers: workers.length,
      seed: nums.seed,
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
    if (err instanceof JobTraceError || err instanceof WorkloadError || err instanceof RangeError)
      return commandFailed(`knobos sim scheduler: ${(err as Error).message}`, err, argv);
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
