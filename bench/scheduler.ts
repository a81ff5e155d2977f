// bench:scheduler — end-to-end no-op tasks per second (submit, run, complete) of the knobos
// scheduler against BullMQ, with the same worker processes and concurrency, on the same
// managed redis-server in the same run. Rounds alternate the two systems (the machine's load
// drifts, so each gets the same conditions) and the medians are compared. In each phase the
// database starts empty; the producer submits N tasks in batches while the workers run them;
// the clock stops when the last completion is recorded in Redis and the producer has written
// what it still buffered (knobos's arrivals trace). The knobos dispatcher runs in
// a scheduler-service process of its own (scheduler-service.ts), as `npm start` and bench:scale
// run it: the producer is a client of the scheduler, as the API and the workloads are. Besides tasks per second, it
// reports CPU per task of Redis (over the timed window only: not the processes' start and stop)
// and of the Node processes, which the machine's load disturbs less. A phase that lost or
// duplicated work fails the benchmark (checkPhase). Writes bench/results/scheduler.json.
import { createRequire } from 'node:module';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { Queue } from 'bullmq';
import { ManagedRedis } from '../controlplane/redis/managed.ts';
import { SchedulerClient } from '../controlplane/scheduler/client.ts';
import { traceWriters } from '../controlplane/scheduler/service.ts';
import { SCHEDULER_SERVICE } from '../controlplane/scheduler/traces.ts';
import { SchedulerQueries } from '../controlplane/scheduler/queries.ts';
import { SchedShard } from '../controlplane/scheduler/shard.ts';
import { Keys } from '../controlplane/store/keys.ts';
import { Telemetry } from '../controlplane/telemetry/metrics.ts';
import { emitResult, wantsJson, writeResultFile } from '../experiments/report.ts';
import { forkChild, request, type Child } from './lib/children.ts';
import { flushAndSettle } from './lib/flush.ts';
import { redisCpuS } from './lib/redis-cpu.ts';
import { percentile, round } from './lib/stats.ts';
import { callgrindEnabled, redisInstructions, startProfile } from './scheduler-profile.ts';

// Phases long enough for steady state: at 10,000 tasks a knobos phase lasted 0.61-0.64 s
// (bench/results/scheduler.json at 6566b85) and BullMQ's first phase of a run paid its
// workers' warm-up (see the README).
const TASKS = Number(process.env['BENCH_TASKS'] ?? 50_000);
/** Tasks of the unrecorded warm-up phase each system runs first (JIT, connections, scripts). */
const WARMUP_TASKS = Number(process.env['BENCH_WARMUP_TASKS'] ?? 10_000);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);
const BULLMQ_VERSION = (
  createRequire(import.meta.url)('bullmq/package.json') as { version: string }
).version;
const WORKERS = Number(process.env['BENCH_WORKERS'] ?? 2);
const CONCURRENCY = Number(process.env['BENCH_CONCURRENCY'] ?? 100);
const SUBMIT_BATCH = Number(process.env['BENCH_SUBMIT_BATCH'] ?? 1_000);
const DISPATCH_BATCH = Number(process.env['BENCH_DISPATCH_BATCH'] ?? 128);
const TIMEOUT_MS = Number(process.env['BENCH_TIMEOUT_MS'] ?? 40_000);
/** Development aid: BENCH_ONLY=knobos skips the peer (no result file is written then). */
const ONLY = process.env['BENCH_ONLY'] as 'knobos' | 'bullmq' | undefined;

const json = wantsJson();
const say = (s: string) => process.stderr.write(s + '\n');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Phase {
  tasks_per_s: number;
  /** Redis CPU time per task (INFO commandstats): what the system costs the shared server. */
  redis_cpu_us_per_task?: number;
  redis_calls_per_task?: number;
  /** Thousands of instructions redis-server executed per task (only under callgrind). */
  redis_kinstructions_per_task?: number;
  /** CPU of the producer process, of the knobos scheduler service and of the workers, per task. */
  producer_cpu_us_per_task: number;
  service_cpu_us_per_task?: number;
  workers_cpu_us_per_task: number;
  calls_per_task_by_command?: Record<string, number>;
  seconds: number;
  completed: number;
  /**
   * Until the producer's last batch was acknowledged, and the tasks completed by then: the
   * rate while submissions compete with the runs, apart from the drain after them.
   */
  submit_seconds: number;
  completed_during_submit: number;
  ran_by_workers: number;
  /** knobos: completions the scheduler ignored because their copy no longer held the lease. */
  stale_completions?: number;
}

/** What Redis did during a drive: INFO commandstats and INFO cpu (seconds) at its end. */
interface RedisReading {
  commandstats: string;
  cpuS: number;
  cpuBeforeS: number;
}

interface Driven {
  seconds: number;
  completed: number;
  submitSeconds: number;
  completedDuringSubmit: number;
  redis: RedisReading;
}

type BenchWorker = Child<Record<string, never>>;

async function withWorkers(
  workers: BenchWorker[],
  system: 'knobos' | 'bullmq',
  url: string,
  name: string,
  body: () => Promise<Driven>,
): Promise<{ phase: Phase; redis: RedisReading }> {
  await Promise.all(
    workers.map((w) =>
      request(w, { type: 'start', system, url, name, concurrency: CONCURRENCY }, 'started'),
    ),
  );
  const cpu0 = process.cpuUsage();
  const stopProfile = await startProfile(`${system}-producer`);
  const { seconds, completed, submitSeconds, completedDuringSubmit, redis } = await body();
  const cpu = process.cpuUsage(cpu0);
  await stopProfile();
  const reports = await Promise.all(
    workers.map((w) => request<{ ran: number; cpuUs: number }>(w, { type: 'stop' }, 'stopped')),
  );
  const phase: Phase = {
    tasks_per_s: Math.round(completed / seconds),
    seconds: round(seconds),
    completed,
    submit_seconds: round(submitSeconds),
    completed_during_submit: completedDuringSubmit,
    ran_by_workers: reports.reduce((s, r) => s + r.ran, 0),
    producer_cpu_us_per_task: round((cpu.user + cpu.system) / completed, 1),
    workers_cpu_us_per_task: round(reports.reduce((s, r) => s + r.cpuUs, 0) / completed, 1),
  };
  return { phase, redis };
}

/**
 * Submits `tasks` in batches, then waits until `done()` reaches them (or the timeout), then runs
 * `finish` (the producer's own pending writes) before the clock stops; returns the elapsed time.
 * Redis's CPU and command counts cover the same window: RESETSTAT and the first INFO cpu just
 * before the clock starts, INFO commandstats and cpu right after it stops.
 */
async function drive(
  admin: Redis,
  tasks: number,
  submit: (from: number, n: number) => Promise<unknown>,
  done: () => Promise<number>,
  o: { progress?: () => Promise<string>; finish?: () => Promise<unknown> } = {},
): Promise<Driven> {
  const progress = o.progress ?? (async () => '');
  await admin.config('RESETSTAT');
  const cpuBeforeS = await redisCpuS(admin);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < tasks; i += SUBMIT_BATCH) await submit(i, Math.min(SUBMIT_BATCH, tasks - i));
  const submitSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
  let completed = await done();
  const completedDuringSubmit = completed;
  if (process.env['BENCH_TRACE'])
    say(`  submitted all in ${submitSeconds.toFixed(2)} s: ${await progress()}`);
  const deadline = Date.now() + TIMEOUT_MS;
  let lastLog = 0;
  while ((completed = await done()) < tasks && Date.now() < deadline) {
    if (process.env['BENCH_TRACE'] && Date.now() - lastLog > 250) {
      lastLog = Date.now();
      say(`  ${(Number(process.hrtime.bigint() - t0) / 1e9).toFixed(2)} s: ${await progress()}`);
    }
    await sleep(5);
  }
  await o.finish?.();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const commandstats = (await admin.info('commandstats')) as string;
  const cpuS = await redisCpuS(admin);
  return {
    seconds,
    completed,
    submitSeconds,
    completedDuringSubmit,
    redis: { commandstats, cpuS, cpuBeforeS },
  };
}

type Measured = { phase: Phase; redis: RedisReading };

async function bullmq(
  workers: BenchWorker[],
  admin: Redis,
  url: string,
  tasks = TASKS,
): Promise<Measured> {
  const connection = new Redis(url, { maxRetriesPerRequest: null });
  const queue = new Queue('bench', { connection });
  // Connected before the clock starts, as knobos's producer is.
  await queue.waitUntilReady();
  const measured = await withWorkers(workers, 'bullmq', url, 'bench', () =>
    drive(
      admin,
      tasks,
      (from, n) =>
        queue.addBulk(
          Array.from({ length: n }, (_, i) => ({ name: 'noop', data: { i: from + i } })),
        ),
      () => queue.getCompletedCount(),
    ),
  );
  await queue.close();
  connection.disconnect();
  return measured;
}

async function knobos(
  workers: BenchWorker[],
  admin: Redis,
  url: string,
  tasks = TASKS,
): Promise<Measured> {
  const redis = new Redis(url);
  const keys = new Keys('bench');
  await request(
    service,
    { type: 'start', url, name: 'bench', dispatchBatch: DISPATCH_BATCH },
    'started',
  );
  // A client of the scheduler as the API's router is: it records the arrivals trace and the
  // submit counts as a service's own client would.
  const shard = new SchedShard(redis, keys, '0');
  const queries = new SchedulerQueries(shard); // progress lines (BENCH_TRACE)
  const telemetry = new Telemetry({
    redis,
    keys,
    service: SCHEDULER_SERVICE,
    instance: `bench-${process.pid}`,
  }).start();
  const { arrivals } = traceWriters(redis, keys);
  const client = new SchedulerClient({ shard, telemetry, arrivals });
  // The service's CPU over the same window as the producer's: marks around the drive.
  const mark = () => request<{ cpuUs: number }>(service, { type: 'mark' }, 'marked');
  let serviceCpuUs = 0;
  const measured = await withWorkers(workers, 'knobos', url, 'bench', async () => {
    await mark();
    const driven = await drive(
      admin,
      tasks,
      (from, n) =>
        client.submitMany(
          Array.from({ length: n }, (_, i) => ({ type: 'noop', payload: { i: from + i } })),
        ),
      // One ZCARD, as BullMQ's getCompletedCount.
      () => redis.zcard(shard.k.done()),
      {
        progress: async () => JSON.stringify(await queries.counts()),
        // The arrivals trace the producer still buffers is its work for these tasks: written
        // before the clock stops.
        finish: () => arrivals.flush(),
      },
    );
    serviceCpuUs = (await mark()).cpuUs;
    return driven;
  });
  // After the workers stopped (drained): every completion they sent has been settled.
  const { stale } = await request<{ stale: number }>(service, { type: 'stop' }, 'stopped');
  const { phase } = measured;
  phase.service_cpu_us_per_task = round(serviceCpuUs / phase.completed, 1);
  phase.stale_completions = stale;
  await arrivals.flush();
  await telemetry.stop();
  redis.disconnect();
  return measured;
}

/** Redis CPU µs and calls per task over a drive (RedisReading), and the busiest commands. */
function redisCost(r: RedisReading, tasks: number) {
  let calls = 0;
  const per: [string, number][] = [];
  for (const m of r.commandstats.matchAll(/cmdstat_([^:]+):calls=(\d+),usec=(\d+)/g)) {
    calls += Number(m[2]);
    per.push([m[1] as string, round(Number(m[2]) / tasks, 2)]);
  }
  per.sort((a, b) => b[1] - a[1]);
  return {
    redis_cpu_us_per_task: round(((r.cpuS - r.cpuBeforeS) * 1e6) / tasks, 1),
    redis_calls_per_task: round(calls / tasks, 2),
    calls_per_task_by_command: Object.fromEntries(per.slice(0, 16)),
  };
}

const median = (xs: number[]) => percentile(xs, 50);

/**
 * Throws unless the phase ran all its tasks exactly as the systems promise; a failed phase fails
 * the benchmark (no result file). The rule:
 *   - completed === tasks: every submitted task completed before the timeout;
 *   - BullMQ: ran_by_workers === completed (a job run twice, e.g. after a stall, is a failure);
 *   - knobos: completed <= ran_by_workers <= completed + stale_completions, i.e. every run
 *     beyond one per task is a copy the scheduler counted as a stale completion (its lease had
 *     expired or another copy won), so a task that ran twice is allowed only if it was counted.
 */
function checkPhase(system: 'knobos' | 'bullmq', label: string, tasks: number, p: Phase): void {
  const counts = `completed ${p.completed} of ${tasks} tasks, ran_by_workers ${p.ran_by_workers}${
    system === 'knobos' ? `, stale_completions ${p.stale_completions ?? 'unknown'}` : ''
  }`;
  const fail = (why: string) => {
    throw new Error(`bench:scheduler: ${system} ${label} failed: ${why} (${counts})`);
  };
  if (p.completed !== tasks)
    fail(
      p.completed < tasks ? `lost work or timed out after ${TIMEOUT_MS} ms` : 'extra completions',
    );
  if (system === 'bullmq') {
    if (p.ran_by_workers !== p.completed) fail('workers ran a different number of jobs');
  } else {
    const stale = p.stale_completions ?? Number.NaN;
    if (p.ran_by_workers < p.completed) fail('fewer runs than completions');
    if (!(p.ran_by_workers - p.completed <= stale))
      fail('runs beyond one per task not accounted for by stale completions');
  }
}

const server = await ManagedRedis.start({ appendfsync: 'everysec', startTimeoutMs: 120_000 });
const service = forkChild<Record<string, never>>(
  join(import.meta.dirname, 'scheduler-service.ts'),
  [],
);
const workers = Array.from({ length: WORKERS }, () =>
  forkChild<Record<string, never>>(join(import.meta.dirname, 'scheduler-worker.ts'), []),
);
try {
  await Promise.all([service, ...workers].map((w) => w.ready));
  const admin = new Redis(server.url);
  say(
    `redis ${server.url}; ${ROUNDS} rounds of ${TASKS} no-op tasks, ${WORKERS} worker processes x ${CONCURRENCY}`,
  );
  const phases: Record<'knobos' | 'bullmq', Phase[]> = { knobos: [], bullmq: [] };
  for (const system of ['bullmq', 'knobos'] as const) {
    if (WARMUP_TASKS <= 0 || (ONLY && system !== ONLY)) continue;
    await flushAndSettle(admin);
    const { phase: p } = await (system === 'knobos' ? knobos : bullmq)(
      workers,
      admin,
      server.url,
      WARMUP_TASKS,
    );
    checkPhase(system, 'warm-up', WARMUP_TASKS, p);
    say(`warm-up ${system}: ${p.tasks_per_s} tasks/s (not recorded)`);
  }
  for (let r = 0; r < ROUNDS; r++) {
    const order: ('knobos' | 'bullmq')[] =
      r % 2 === 0 ? ['bullmq', 'knobos'] : ['knobos', 'bullmq'];
    for (const system of order) {
      if (ONLY && system !== ONLY) continue;
      // Empty, and the AOF rewritten empty: the ~75 MB a BullMQ phase appends would otherwise
      // trigger an automatic rewrite (a fork and a copy) inside a later measured phase.
      await flushAndSettle(admin);
      let measured: Measured | undefined;
      const ins = await redisInstructions(server.pid, async () => {
        measured =
          system === 'knobos'
            ? await knobos(workers, admin, server.url)
            : await bullmq(workers, admin, server.url);
      });
      if (!measured) throw new Error(`${system} phase did not run`);
      const { phase: p, redis } = measured as Measured;
      checkPhase(system, `round ${r + 1}`, TASKS, p);
      Object.assign(p, redisCost(redis, p.completed));
      if (callgrindEnabled) p.redis_kinstructions_per_task = round(ins / p.completed / 1000, 1);
      phases[system].push(p);
      say(`round ${r + 1} ${system}: ${JSON.stringify(p)}`);
    }
  }
  admin.disconnect();
  if (phases.knobos.length > 0 && phases.bullmq.length > 0) report(phases.knobos, phases.bullmq);
  else {
    // BENCH_ONLY: one system, no comparison and no result file; --json still ends with one
    // JSON object (its medians and rounds).
    const only = phases.knobos.length > 0 ? 'knobos' : 'bullmq';
    const s = summary(phases[only]);
    emitResult(
      `${only} alone (BENCH_ONLY, no result file): ${s['tasks_per_s']} tasks/s, median of ${phases[only].length} rounds`,
      { only, [`${only}_tasks_per_s`]: s['tasks_per_s'], [only]: s, rounds: phases[only] },
      json,
    );
  }
} finally {
  await Promise.all([service, ...workers].map((w) => w.finish().catch(() => undefined)));
  await server.stop();
}

/** The median of each numeric field over the phases. */
function summary(ps: Phase[]): Record<string, number> {
  const keys = [
    'tasks_per_s',
    'producer_cpu_us_per_task',
    'service_cpu_us_per_task',
    'workers_cpu_us_per_task',
    'redis_cpu_us_per_task',
    'redis_calls_per_task',
  ] as const;
  const out: Record<string, number> = {};
  for (const k of keys) {
    const v = median(ps.map((p) => p[k] ?? Number.NaN));
    if (Number.isFinite(v)) out[k] = round(v, 1);
  }
  // The median of each round's total (the parts' medians may come from different rounds).
  out['total_cpu_us_per_task'] = round(
    median(
      ps.map(
        (p) =>
          p.producer_cpu_us_per_task +
          (p.service_cpu_us_per_task ?? 0) +
          p.workers_cpu_us_per_task +
          (p.redis_cpu_us_per_task ?? Number.NaN),
      ),
    ),
    1,
  );
  return out;
}

function report(k: Phase[], b: Phase[]): void {
  const ks = summary(k);
  const bs = summary(b);
  const result = {
    knobos_tasks_per_s: ks['tasks_per_s'],
    bullmq_tasks_per_s: bs['tasks_per_s'],
    // Three decimals: at two, 1.9994 read as the target's 2.00.
    ratio: round(ks['tasks_per_s']! / bs['tasks_per_s']!, 3),
    ratio_per_round: k.map((p, i) => round(p.tasks_per_s / (b[i]?.tasks_per_s ?? NaN), 3)),
    cpu_ratio: round(bs['total_cpu_us_per_task']! / ks['total_cpu_us_per_task']!, 2),
    tasks_per_round: TASKS,
    warmup_tasks: WARMUP_TASKS,
    rounds: ROUNDS,
    worker_processes: WORKERS,
    concurrency: CONCURRENCY,
    submit_batch: SUBMIT_BATCH,
    dispatch_batch: DISPATCH_BATCH,
    knobos: ks,
    bullmq: bs,
    knobos_rounds: k,
    bullmq_rounds: b,
    bullmq_version: BULLMQ_VERSION,
    load_average_1m: round(loadavg()[0] ?? NaN, 2),
    redis: 'managed redis-server, appendfsync everysec, loopback',
  };
  // A development run (any size or setting but the submit batch changed from the headline's)
  // is not the benchmark: its file goes to tmp, as a callgrind run's does (its timings mean
  // nothing: Redis runs ~50x slower). Before, such runs overwrote the headline file.
  const headline =
    TASKS === 50_000 &&
    WARMUP_TASKS === 10_000 &&
    ROUNDS === 3 &&
    WORKERS === 2 &&
    CONCURRENCY === 100 &&
    DISPATCH_BATCH === 128 &&
    !process.env['BENCH_PROFILE_DIR'] &&
    !process.env['BENCH_TRACE'];
  const path = writeResultFile(
    // A run with another submit batch is a variant: its own file, the headline file stays.
    callgrindEnabled || !headline
      ? join(tmpdir(), callgrindEnabled ? 'scheduler-callgrind.json' : 'scheduler-dev.json')
      : join(
          import.meta.dirname,
          'results',
          SUBMIT_BATCH === 1_000 ? 'scheduler.json' : `scheduler-submit-batch-${SUBMIT_BATCH}.json`,
        ),
    'bench:scheduler',
    result,
  );
  emitResult(
    [
      `end-to-end no-op tasks, median of ${ROUNDS} rounds of ${TASKS} (${WORKERS} workers x ${CONCURRENCY}):`,
      `  knobos  ${result.knobos_tasks_per_s} tasks/s  (${ks['total_cpu_us_per_task']} us CPU per task: redis ${ks['redis_cpu_us_per_task']}, producer ${ks['producer_cpu_us_per_task']}, scheduler service ${ks['service_cpu_us_per_task']}, workers ${ks['workers_cpu_us_per_task']})`,
      `  bullmq  ${result.bullmq_tasks_per_s} tasks/s  (${bs['total_cpu_us_per_task']} us CPU per task: redis ${bs['redis_cpu_us_per_task']}, producer ${bs['producer_cpu_us_per_task']}, workers ${bs['workers_cpu_us_per_task']})`,
      `  ratio   ${result.ratio}x throughput (per round ${result.ratio_per_round.join(', ')}), ${result.cpu_ratio}x less CPU per task`,
      `result file: ${path}`,
    ].join('\n'),
    result,
    json,
  );
}
