// bench:scale — scheduler throughput (no-op tasks submitted, run and completed per second) on a
// managed Redis Cluster of 1 primary and of 3 primaries, in the same run, with the same shards,
// processes and concurrency: only the number of primaries differs. Three scheduler shards are
// named so that their hash slots land on three different primaries of the 3-primary cluster
// (shardNamesOnPrimaries); on the 1-primary cluster they share one. Each shard has its own
// scheduler service process (dispatcher + reaper); each worker process runs one worker runtime
// per shard; the producer (this process) submits through the router, tenants spread evenly
// over the shards. Each cluster first runs an unrecorded warm-up phase (fresh processes, cold
// JIT, connections), then rounds alternate the two clusters and medians are compared. A phase
// that lost or duplicated work fails the benchmark (checkPhase). It also reports
// CPU per task of every Redis primary and of every process role, the numbers of the throughput
// model in controlplane/scheduler/README.md. Writes bench/results/scale.json.
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { hashShard } from '../policies/placement/hash.ts';
import { KnobClient } from '../controlplane/knobs/client.ts';
import { KnobTable } from '../controlplane/knobs/table.ts';
import { connect, type RedisClient } from '../controlplane/redis/connect.ts';
import { ManagedCluster } from '../controlplane/redis/managed-cluster.ts';
import { PLACEMENT_KNOB, shardNamesOnPrimaries } from '../controlplane/scheduler/placement.ts';
import { SchedulerQueries } from '../controlplane/scheduler/queries.ts';
import { SchedulerRouter } from '../controlplane/scheduler/router.ts';
import { SchedShard } from '../controlplane/scheduler/shard.ts';
import { Keys } from '../controlplane/store/keys.ts';
import { benchResultPath, emitResult, wantsJson, writeResultFile } from '../experiments/report.ts';
import { forkChild, request, type Child } from './lib/children.ts';
import { catalogWithDispatchBatch } from './lib/catalog.ts';
import { flushAndSettle } from './lib/flush.ts';
import { redisCpuS } from './lib/redis-cpu.ts';
import { percentile, round } from './lib/stats.ts';
import type { ScaleStart } from './scale-child.ts';

const TASKS = Number(process.env['BENCH_TASKS'] ?? 30_000);
/** Tasks of the unrecorded warm-up phase each cluster runs first (as bench:scheduler's). */
const WARMUP_TASKS = Number(process.env['BENCH_WARMUP_TASKS'] ?? Math.round(TASKS / 5));
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);
const WORKERS = Number(process.env['BENCH_WORKERS'] ?? 2);
const CONCURRENCY = Number(process.env['BENCH_CONCURRENCY'] ?? 150);
const SUBMIT_BATCH = 1_000;
const DISPATCH_BATCH = Number(process.env['BENCH_DISPATCH_BATCH'] ?? 128);
const TIMEOUT_MS = Number(process.env['BENCH_TIMEOUT_MS'] ?? 120_000);
const PREFIX = 'bench';

const json = wantsJson();
const say = (s: string) => process.stderr.write(s + '\n');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type ScaleChild = Child<Record<string, never>>;

interface Phase {
  primaries: number;
  tasks_per_s: number;
  seconds: number;
  completed: number;
  ran_by_workers: number;
  /** Completions the scheduler ignored because their copy no longer held the lease. */
  stale_completions: number;
  /** Redis CPU (user + sys) per task, summed over primaries and per primary. */
  redis_cpu_us_per_task: number;
  redis_cpu_us_per_task_by_primary: number[];
  /** The busiest primary's CPU share of one core during the phase. */
  redis_busiest_core_share: number;
  producer_cpu_us_per_task: number;
  services_cpu_us_per_task: number;
  workers_cpu_us_per_task: number;
  client_cpu_us_per_task: number;
  load_avg_1m: number;
}

function nodeClient(port: number): Redis {
  const c = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1 });
  c.on('error', () => {});
  return c;
}

/** One tenant name per shard index: the first `tenant-<n>` that hashes to it. */
function tenantsPerIndex(shards: number): string[] {
  const out: string[] = [];
  for (let n = 0; out.filter(Boolean).length < shards; n++) {
    const name = `tenant-${n}`;
    const i = hashShard(name, shards);
    out[i] ??= name;
  }
  return out;
}

/** CPU seconds (user + sys) of each primary so far. */
async function primaryCpuS(cluster: ManagedCluster): Promise<number[]> {
  return Promise.all(
    cluster.nodes.slice(0, cluster.primaries).map(async (n) => {
      const c = nodeClient(n.port);
      const s = await redisCpuS(c);
      c.disconnect();
      return s;
    }),
  );
}

async function flush(cluster: ManagedCluster): Promise<void> {
  await Promise.all(
    cluster.nodes.slice(0, cluster.primaries).map(async (n) => {
      const c = nodeClient(n.port);
      // The AOF rewritten empty too: what earlier phases appended must not trigger a rewrite
      // inside the next (one primary takes all of a phase's appends, three a third each).
      await flushAndSettle(c);
      c.disconnect();
    }),
  );
}

async function phase(
  cluster: ManagedCluster,
  shards: string[],
  services: ScaleChild[],
  workers: ScaleChild[],
  tasks = TASKS,
): Promise<Phase> {
  await flush(cluster);
  const seeds = cluster.seeds;
  const redis: RedisClient = connect({ cluster: seeds });
  const keys = new Keys(PREFIX);
  const table = new KnobTable(redis, { keys, catalog: catalogWithDispatchBatch(DISPATCH_BATCH) });
  await table.seed();
  const knobs = await KnobClient.start({ table, names: [PLACEMENT_KNOB] });
  const router = new SchedulerRouter({ redis, knobs, keys, shards });
  const shardRows = shards.map((s) => new SchedShard(redis, keys, s));
  const queries = shardRows.map((s) => new SchedulerQueries(s));
  const tenants = tenantsPerIndex(shards.length);

  const base: Omit<ScaleStart, 'role' | 'shards'> = {
    type: 'start',
    seeds,
    prefix: PREFIX,
    concurrency: CONCURRENCY,
  };
  // One service process per shard; every worker process serves every shard.
  await Promise.all([
    ...services.map((c, i) =>
      request(c, { ...base, role: 'service', shards: [shards[i]] }, 'started'),
    ),
    ...workers.map((c) => request(c, { ...base, role: 'worker', shards }, 'started')),
  ]);
  const cpuRedis0 = await primaryCpuS(cluster);
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  // Batches cycle over the tenants, so every shard gets a third of the tasks.
  for (let i = 0, b = 0; i < tasks; i += SUBMIT_BATCH, b++) {
    const tenant = tenants[b % tenants.length] as string;
    const n = Math.min(SUBMIT_BATCH, tasks - i);
    await router.submitMany(
      Array.from({ length: n }, (_, j) => ({ type: 'noop', tenant, payload: { i: i + j } })),
    );
  }
  const deadline = Date.now() + TIMEOUT_MS;
  // One ZCARD per shard, as bench:scheduler polls (the full counts are five per shard).
  const doneCount = async () =>
    (await Promise.all(shardRows.map((s) => redis.zcard(s.k.done())))).reduce((a, b) => a + b, 0);
  let completed = 0;
  let lastLog = 0;
  while ((completed = await doneCount()) < tasks && Date.now() < deadline) {
    if (process.env['BENCH_TRACE'] && Date.now() - lastLog > 1_000) {
      lastLog = Date.now();
      say(`  ${JSON.stringify(await Promise.all(queries.map((q) => q.counts())))}`);
    }
    await sleep(5);
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const cpuRedis = (await primaryCpuS(cluster)).map((s, i) => s - (cpuRedis0[i] as number));
  const stopped = async (cs: ScaleChild[]) =>
    Promise.all(
      cs.map((c) => request<{ ran: number; cpuUs: number }>(c, { type: 'stop' }, 'stopped')),
    );
  const [sv, wk] = await Promise.all([stopped(services), stopped(workers)]);
  // Read after the workers stopped (drained): every completion they sent has been settled.
  const stale = (await Promise.all(queries.map((q) => q.staleCompletions()))).reduce(
    (a, b) => a + b,
    0,
  );
  await knobs.close();
  redis.disconnect();

  const per = (us: number) => round(us / completed, 1);
  const servicesUs = sv.reduce((s, r) => s + r.cpuUs, 0);
  const workersUs = wk.reduce((s, r) => s + r.cpuUs, 0);
  const producerUs = cpu.user + cpu.system;
  return {
    primaries: cluster.primaries,
    tasks_per_s: Math.round(completed / seconds),
    seconds: round(seconds),
    completed,
    ran_by_workers: wk.reduce((s, r) => s + r.ran, 0),
    stale_completions: stale,
    redis_cpu_us_per_task: per(cpuRedis.reduce((a, b) => a + b, 0) * 1e6),
    redis_cpu_us_per_task_by_primary: cpuRedis.map((s) => per(s * 1e6)),
    redis_busiest_core_share: round(Math.max(...cpuRedis) / seconds, 2),
    producer_cpu_us_per_task: per(producerUs),
    services_cpu_us_per_task: per(servicesUs),
    workers_cpu_us_per_task: per(workersUs),
    client_cpu_us_per_task: per(producerUs + servicesUs + workersUs),
    load_avg_1m: round(loadavg()[0] ?? 0, 2),
  };
}

const median = (xs: number[]) => percentile(xs, 50);

/**
 * Throws unless the phase ran all its tasks as the scheduler promises; a failed phase fails the
 * benchmark (no result file). The rule: completed === tasks (every submitted task completed
 * before the timeout), and completed <= ran_by_workers <= completed + stale_completions, i.e.
 * every run beyond one per task is a copy the scheduler counted as a stale completion (its lease
 * had expired or another copy won), so a task that ran twice is allowed only if it was counted.
 */
function checkPhase(label: string, tasks: number, p: Phase): void {
  const fail = (why: string) => {
    throw new Error(
      `bench:scale: ${p.primaries} primar${p.primaries === 1 ? 'y' : 'ies'}, ${label} failed: ${why} ` +
        `(completed ${p.completed} of ${tasks} tasks, ran_by_workers ${p.ran_by_workers}, ` +
        `stale_completions ${p.stale_completions})`,
    );
  };
  if (p.completed !== tasks)
    fail(
      p.completed < tasks ? `lost work or timed out after ${TIMEOUT_MS} ms` : 'extra completions',
    );
  if (p.ran_by_workers < p.completed) fail('fewer runs than completions');
  if (!(p.ran_by_workers - p.completed <= p.stale_completions))
    fail('runs beyond one per task not accounted for by stale completions');
}

function summary(ps: Phase[]) {
  const m = (f: (p: Phase) => number) => round(median(ps.map(f)), 1);
  return {
    tasks_per_s: m((p) => p.tasks_per_s),
    redis_cpu_us_per_task: m((p) => p.redis_cpu_us_per_task),
    redis_cpu_us_per_task_busiest_primary: m((p) =>
      Math.max(...p.redis_cpu_us_per_task_by_primary),
    ),
    redis_busiest_core_share: round(median(ps.map((p) => p.redis_busiest_core_share)), 2),
    producer_cpu_us_per_task: m((p) => p.producer_cpu_us_per_task),
    services_cpu_us_per_task: m((p) => p.services_cpu_us_per_task),
    workers_cpu_us_per_task: m((p) => p.workers_cpu_us_per_task),
    client_cpu_us_per_task: m((p) => p.client_cpu_us_per_task),
  };
}

/**
 * The throughput model of controlplane/scheduler/README.md with this run's numbers: the share
 * of a core the lone primary got (busy CPU / time; share / Redis CPU per task is the measured
 * throughput itself, so no prediction), and what the same per-task costs predict on an idle
 * machine with all its cores for this run.
 */
function model(one: ReturnType<typeof summary>, three: ReturnType<typeof summary>) {
  const cores = cpus().length;
  const idle = (s: ReturnType<typeof summary>, primaries: number) =>
    Math.round(
      Math.min(
        (1e6 * Math.min(primaries, cores)) / s.redis_cpu_us_per_task_busiest_primary / primaries,
        (1e6 * cores) / (s.redis_cpu_us_per_task + s.client_cpu_us_per_task),
      ),
    );
  const x1 = idle(one, 1);
  const x3 = idle(three, 3);
  return {
    redis_core_share_1: one.redis_busiest_core_share,
    idle_machine: { cores, tasks_per_s_1: x1, tasks_per_s_3: x3, speedup: round(x3 / x1, 2) },
  };
}

say(`starting a 1-primary and a 3-primary cluster`);
const clusters = {
  1: await ManagedCluster.start({ primaries: 1, appendfsync: 'everysec' }),
  3: await ManagedCluster.start({ primaries: 3, appendfsync: 'everysec' }),
};
const children: ScaleChild[] = [];
try {
  const probe = connect({ cluster: clusters[3].seeds });
  const shards = await shardNamesOnPrimaries(probe, 3);
  probe.disconnect();
  const services = shards.map(() =>
    forkChild<Record<string, never>>(join(import.meta.dirname, 'scale-child.ts'), []),
  );
  const workers = Array.from({ length: WORKERS }, () =>
    forkChild<Record<string, never>>(join(import.meta.dirname, 'scale-child.ts'), []),
  );
  children.push(...services, ...workers);
  await Promise.all(children.map((c) => c.ready));
  say(
    `shards ${shards.join(', ')} (one per primary of the 3-primary cluster); ${ROUNDS} rounds of ${TASKS} no-op tasks; ` +
      `${shards.length} service processes, ${WORKERS} worker processes x ${CONCURRENCY}`,
  );
  // Unrecorded warm-up phases first, one per cluster: the processes' first phase pays their
  // JIT and connections, which would otherwise fall on the first recorded round's cluster.
  for (const p of [1, 3] as const) {
    if (WARMUP_TASKS <= 0) continue;
    const ph = await phase(clusters[p], shards, services, workers, WARMUP_TASKS);
    checkPhase('warm-up', WARMUP_TASKS, ph);
    say(`warm-up, ${p} primar${p === 1 ? 'y' : 'ies'}: ${ph.tasks_per_s} tasks/s (not recorded)`);
  }
  const phases: Record<1 | 3, Phase[]> = { 1: [], 3: [] };
  for (let r = 0; r < ROUNDS; r++) {
    const order: (1 | 3)[] = r % 2 === 0 ? [1, 3] : [3, 1];
    for (const p of order) {
      const ph = await phase(clusters[p], shards, services, workers);
      checkPhase(`round ${r + 1}`, TASKS, ph);
      phases[p].push(ph);
      say(`round ${r + 1}, ${p} primar${p === 1 ? 'y' : 'ies'}: ${JSON.stringify(ph)}`);
    }
  }
  const one = summary(phases[1]);
  const three = summary(phases[3]);
  const result = {
    tasks_per_s_1: one.tasks_per_s,
    tasks_per_s_3: three.tasks_per_s,
    speedup: round(three.tasks_per_s / one.tasks_per_s, 2),
    speedup_per_round: phases[1].map((p, i) =>
      round((phases[3][i] as Phase).tasks_per_s / p.tasks_per_s, 2),
    ),
    target_speedup: 1.5,
    model: model(one, three),
    tasks_per_round: TASKS,
    warmup_tasks: WARMUP_TASKS,
    rounds: ROUNDS,
    shards,
    worker_processes: WORKERS,
    service_processes: shards.length,
    concurrency_per_worker_process: CONCURRENCY,
    submit_batch: SUBMIT_BATCH,
    dispatch_batch: DISPATCH_BATCH,
    appendfsync: 'everysec',
    one_primary: one,
    three_primaries: three,
    rounds_1: phases[1],
    rounds_3: phases[3],
  };
  const path = writeResultFile(
    benchResultPath(join(import.meta.dirname, 'results', 'scale.json'), [
      'BENCH_CONCURRENCY',
      'BENCH_DISPATCH_BATCH',
      'BENCH_ROUNDS',
      'BENCH_TASKS',
      'BENCH_TRACE',
      'BENCH_WARMUP_TASKS',
      'BENCH_WORKERS',
    ]),
    'bench:scale',
    result,
  );
  emitResult(
    [
      `1 primary:   ${one.tasks_per_s} tasks/s (Redis ${one.redis_cpu_us_per_task} us/task, clients ${one.client_cpu_us_per_task} us/task)`,
      `3 primaries: ${three.tasks_per_s} tasks/s (Redis ${three.redis_cpu_us_per_task} us/task, clients ${three.client_cpu_us_per_task} us/task)`,
      `speedup ${result.speedup} (target 1.5); result file ${path}`,
    ].join('\n'),
    result,
    json,
  );
} finally {
  await Promise.all(children.map((c) => c.finish().catch(() => undefined)));
  await Promise.all([clusters[1].stop(), clusters[3].stop()]);
}
