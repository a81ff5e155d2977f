// bench:messaging — exactly-once messages per second through knobos messaging (batching
// producer; consumer whose handler makes one small write, applied with its dedup record and
// XACK in one Lua step per batch) against the raw peer on the same Redis in the same run:
// pipelined XADD, XREADGROUP and one XACK per batch, with no dedup, no writes and no
// exactly-once. One producer process and one consumer process per peer, 4 partitions,
// messaging.batch_size = 64. Rounds alternate the order of the peers (round 1 raw then knobos,
// round 2 knobos then raw, ...); each peer's median round counts. Before each run the database
// is flushed and left with no AOF rewrite running or due (lib/flush.ts), so no run inherits the
// streams, dedup records or AOF growth of an earlier one.
// Also reported: Redis CPU time per message of each peer (INFO cpu), the shared resource, and
// the CPU time per message of each peer's producer and consumer process, all over the window
// of the throughput clock: from the producer's first publish to the consumer's last applied
// message (the producer's up to its last publish confirmed); set-up, idle and teardown are out.
// Every run is checked to be exactly-once: the consumer applied exactly the messages sent, no
// duplicates, nothing left pending in the group, and (knobos) the handler's output counter
// equals the messages sent; a run not done within BENCH_TIMEOUT_MS fails. A failed check fails
// the benchmark (non-zero exit, no result file).
// Writes bench/results/messaging.json (BENCH_APPENDFSYNC=everysec, the default) or
// bench/results/messaging-appendfsync-<always|no|off>.json.
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { KnobTable } from '../controlplane/knobs/table.ts';
import { MessagingKeys } from '../controlplane/messaging/keys.ts';
import { Topics } from '../controlplane/messaging/topics.ts';
import { ManagedRedis } from '../controlplane/redis/managed.ts';
import { Keys } from '../controlplane/store/keys.ts';
import { benchResultPath, emitResult, wantsJson, writeResultFile } from '../experiments/report.ts';
import { forkChild, request, type Child } from './lib/children.ts';
import { flushAndSettle } from './lib/flush.ts';
import { percentile, round } from './lib/stats.ts';
import type { WorkerConfig, WorkerReport } from './messaging-worker.ts';

const MESSAGES = Number(process.env['BENCH_MESSAGES'] ?? 60_000);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);
const PARTITIONS = 4;
const BATCH = 64;
/** A run (first publish to last applied message) not done within this fails the benchmark. */
const TIMEOUT_MS = Number(process.env['BENCH_TIMEOUT_MS'] ?? 120_000);
/** AOF fsync policy of the bench's Redis: everysec (default), always, no, or off (no AOF). */
const FSYNCS = ['everysec', 'always', 'no', 'off'] as const;
const FSYNC = (process.env['BENCH_APPENDFSYNC'] ?? 'everysec') as (typeof FSYNCS)[number];
if (!FSYNCS.includes(FSYNC)) {
  throw new Error(`BENCH_APPENDFSYNC must be one of ${FSYNCS.join(', ')}, got '${FSYNC}'`);
}
const WORKER = join(import.meta.dirname, 'messaging-worker.ts');

const json = wantsJson();
const median = (xs: number[]) => percentile(xs, 50);
const say = (s: string) => process.stderr.write(s + '\n');

interface RunResult {
  msgs_per_s: number;
  seconds: number;
  duplicates: number;
  /** Redis CPU time per message (the shared resource both peers are bound by). */
  redis_cpu_us_per_msg: number;
  /** CPU time per message of the producer and the consumer process (the machine has 2 CPUs). */
  producer_cpu_us_per_msg: number;
  consumer_cpu_us_per_msg: number;
  /** Mean messages per publish call and per consumed batch. */
  publish_batch: number;
  consume_batch: number;
}

/** The child's report; rejects when it exits before reporting. */
function reportOf<R>(child: Child<R>, what: string): Promise<R> {
  return new Promise<R>((resolve, reject) => {
    const exited = (code: number | null, signal: string | null) =>
      reject(new Error(`bench:messaging: ${what} exited with ${signal ?? code} before its report`));
    child.proc.once('exit', exited);
    child.finish().then((r) => {
      child.proc.off('exit', exited);
      resolve(r);
    }, reject);
  });
}

/** A child's progress, or 'unknown' when it does not answer. */
async function statusOf(child: Child<WorkerReport>, duplicates: boolean): Promise<string> {
  try {
    const s = await request<{ count: number; duplicates: number }>(
      child,
      { type: 'status' },
      'status',
      5_000,
    );
    return `${s.count} of ${MESSAGES}${duplicates ? ` (duplicates ${s.duplicates})` : ''}`;
  } catch {
    return 'unknown (no answer)';
  }
}

/**
 * The exactly-once checks of a finished run (after the consumer stopped): exactly MESSAGES
 * published and applied, no duplicates or failed messages, nothing pending or unread in the
 * group of any partition, and for knobos the handler's output counter equal to MESSAGES. (The
 * raw peer has no dedup to count duplicates: XREADGROUP '>' hands each entry out once, so
 * applied === MESSAGES with every entry read and acked rules them out.)
 */
async function checkRun(
  admin: Redis,
  mode: 'knobos' | 'raw',
  r: number,
  streams: string[],
  outputs: string[],
  c: WorkerReport,
  p: WorkerReport,
): Promise<void> {
  const problems: string[] = [];
  if (p.count !== MESSAGES) problems.push(`producer published ${p.count} of ${MESSAGES}`);
  if (c.count !== MESSAGES) problems.push(`consumer applied ${c.count}, not ${MESSAGES}`);
  if (c.duplicates !== 0) problems.push(`${c.duplicates} duplicates`);
  if (c.failed !== 0) problems.push(`${c.failed} failed/stale/dead-lettered messages`);
  let length = 0;
  for (const stream of streams) {
    length += await admin.xlen(stream);
    const groups = (await admin.xinfo('GROUPS', stream)) as (string | number | null)[][];
    const group = groups.map((g) => {
      const o: Record<string, string | number | null> = {};
      for (let i = 0; i + 1 < g.length; i += 2) o[String(g[i])] = g[i + 1] ?? null;
      return o;
    });
    const bench = group.find((g) => g['name'] === 'bench');
    if (!bench) {
      problems.push(`${stream}: no group 'bench'`);
      continue;
    }
    if (Number(bench['pending']) !== 0) problems.push(`${stream}: ${bench['pending']} pending`);
    if (bench['lag'] !== null && Number(bench['lag']) !== 0) {
      problems.push(`${stream}: ${bench['lag']} entries never read`);
    }
  }
  // knobos trims its streams (retention), so their length is checked for the raw peer only.
  if (mode === 'raw' && length !== MESSAGES) problems.push(`streams hold ${length} entries`);
  if (mode === 'knobos') {
    let out = 0;
    for (const key of outputs) out += Number((await admin.get(key)) ?? 0);
    if (out !== MESSAGES) problems.push(`output counter ${out}, not ${MESSAGES}`);
  }
  if (problems.length > 0) {
    throw new Error(
      `bench:messaging: ${mode} round ${r + 1} is not exactly-once: ${problems.join('; ')}`,
    );
  }
}

async function runOnce(
  server: ManagedRedis,
  mode: 'knobos' | 'raw',
  r: number,
): Promise<RunResult> {
  const prefix = `bench${r}${mode}`;
  const keys = new Keys(prefix);
  const mkeys = new MessagingKeys(keys);
  const admin = new Redis(server.url);
  const topic = 'bench';
  await flushAndSettle(admin);
  const parts = Array.from({ length: PARTITIONS }, (_, p) => p);
  const streams = parts.map((p) =>
    mode === 'knobos' ? mkeys.stream(topic, p) : keys.key(`raw:${p}`, 'stream'),
  );
  const outputs = parts.map((p) => mkeys.output(topic, p, 'processed'));
  if (mode === 'knobos') {
    await new KnobTable(admin, { keys }).seed();
    await new Topics(admin, mkeys).ensure(topic, { partitions: PARTITIONS });
  } else {
    for (let p = 0; p < PARTITIONS; p++)
      await admin.xgroup('CREATE', keys.key(`raw:${p}`, 'stream'), 'bench', '0', 'MKSTREAM');
  }
  const base = {
    url: server.url,
    mode,
    prefix,
    topic,
    partitions: PARTITIONS,
    messages: MESSAGES,
    batch: BATCH,
  };
  const child = (role: WorkerConfig['role']) =>
    forkChild<WorkerReport>(WORKER, [JSON.stringify({ ...base, role } satisfies WorkerConfig)]);
  const consumer = child('consumer');
  let producer: Child<WorkerReport> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let c: WorkerReport;
  let p: WorkerReport;
  try {
    await consumer.ready;
    producer = child('producer');
    await producer.ready;
    // The consumer's window opens, then the producer's (it reads Redis's CPU and publishes).
    await request(consumer, { type: 'go' }, 'going', 30_000);
    const prod: Child<WorkerReport> = producer;
    prod.proc.send({ type: 'go' });
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        void Promise.all([statusOf(consumer, true), statusOf(prod, false)]).then(([cs, ps]) =>
          reject(
            new Error(
              `bench:messaging: ${mode} round ${r + 1} did not finish within ${TIMEOUT_MS} ms (BENCH_TIMEOUT_MS): consumer applied ${cs}, producer published ${ps}`,
            ),
          ),
        );
      }, TIMEOUT_MS);
    });
    [c, p] = await Promise.race([
      Promise.all([reportOf(consumer, `${mode} consumer`), reportOf(prod, `${mode} producer`)]),
      late,
    ]);
    clearTimeout(timer);
    await checkRun(admin, mode, r, streams, outputs, c, p);
  } catch (err) {
    clearTimeout(timer);
    for (const ch of [consumer, producer]) {
      if (ch && ch.proc.exitCode === null && ch.proc.signalCode === null) ch.proc.kill('SIGKILL');
    }
    throw err;
  } finally {
    admin.disconnect();
  }
  const cpuMs = (c.redisCpuS - p.redisCpuS) * 1000;
  const seconds = (c.endAt - p.startAt) / 1000;
  say(
    `  ${mode}: produced in ${(p.endAt - p.startAt) / 1000} s, consumed by ${(c.endAt - p.startAt) / 1000} s`,
  );
  return {
    msgs_per_s: Math.round(MESSAGES / seconds),
    seconds: round(seconds),
    duplicates: c.duplicates,
    redis_cpu_us_per_msg: round((cpuMs * 1000) / MESSAGES, 2),
    producer_cpu_us_per_msg: round(p.cpuUs / MESSAGES, 2),
    consumer_cpu_us_per_msg: round(c.cpuUs / MESSAGES, 2),
    publish_batch: round(p.count / Math.max(1, p.batches), 1),
    consume_batch: round(c.count / Math.max(1, c.batches), 1),
  };
}

const server = await ManagedRedis.start(FSYNC === 'off' ? {} : { appendfsync: FSYNC });
try {
  const runs: Record<'knobos' | 'raw', RunResult[]> = { knobos: [], raw: [] };
  for (let r = 0; r < ROUNDS; r++) {
    const order: ('knobos' | 'raw')[] = r % 2 === 0 ? ['raw', 'knobos'] : ['knobos', 'raw'];
    for (const mode of order) {
      const res = await runOnce(server, mode, r);
      runs[mode].push(res);
      say(
        `round ${r + 1} ${mode}: ${res.msgs_per_s} msgs/s (${res.seconds} s, cpu us/msg: redis ${res.redis_cpu_us_per_msg}, producer ${res.producer_cpu_us_per_msg}, consumer ${res.consumer_cpu_us_per_msg}; batches ${res.publish_batch} / ${res.consume_batch})`,
      );
    }
  }
  // Medians over rounds (the machine is shared; one lucky or unlucky round does not decide).
  const med = (rs: RunResult[]) => Math.round(median(rs.map((x) => x.msgs_per_s)));
  const knobos = med(runs.knobos);
  const raw = med(runs.raw);
  const result = {
    knobos_msgs_per_s: knobos,
    raw_msgs_per_s: raw,
    ratio: round(knobos / raw),
    messages: MESSAGES,
    rounds: ROUNDS,
    partitions: PARTITIONS,
    batch_size: BATCH,
    appendfsync: FSYNC,
    redis_cpu_us_per_msg: {
      knobos: median(runs.knobos.map((x) => x.redis_cpu_us_per_msg)),
      raw: median(runs.raw.map((x) => x.redis_cpu_us_per_msg)),
    },
    client_cpu_us_per_msg: {
      knobos_producer: median(runs.knobos.map((x) => x.producer_cpu_us_per_msg)),
      knobos_consumer: median(runs.knobos.map((x) => x.consumer_cpu_us_per_msg)),
      raw_producer: median(runs.raw.map((x) => x.producer_cpu_us_per_msg)),
      raw_consumer: median(runs.raw.map((x) => x.consumer_cpu_us_per_msg)),
    },
    knobos_runs: runs.knobos,
    raw_runs: runs.raw,
    knobos_path:
      'Producer (publish.lua per batch) -> Consumer (XREADGROUP BLOCK; handler INCR through the output API; commit.lua per batch: write + dedup record + XACK)',
    peer: 'pipelined XADD per batch; XREADGROUP BLOCK; one XACK per batch (no dedup, no writes, not exactly-once)',
    redis: `managed redis-server, ${FSYNC === 'off' ? 'no AOF' : `appendfsync ${FSYNC}`}, loopback; flushed before each run; rounds alternate the order of the peers; one producer and one consumer process per peer`,
    cpu_window:
      "from the producer's first publish to the consumer's last applied message (Redis: INFO cpu; producer: to its last publish confirmed)",
  };
  const path = writeResultFile(
    benchResultPath(
      join(
        import.meta.dirname,
        'results',
        FSYNC === 'everysec' ? 'messaging.json' : `messaging-appendfsync-${FSYNC}.json`,
      ),
      // A profiled run (each producer and consumer under a CPU profiler) is slower: not the file.
      ['BENCH_MESSAGES', 'BENCH_ROUNDS', 'BENCH_PROFILE_DIR'],
    ),
    'bench:messaging',
    result,
  );
  emitResult(
    [
      `exactly-once messaging, ${MESSAGES} messages, ${PARTITIONS} partitions, batch ${BATCH} (median of ${ROUNDS} rounds):`,
      `  knobos  ${knobos} msgs/s`,
      `  raw     ${raw} msgs/s   (XADD + XREADGROUP + XACK, no exactly-once)`,
      `  ratio   ${result.ratio} (target >= 0.5)`,
      `result file: ${path}`,
    ].join('\n'),
    result,
    json,
  );
} finally {
  await server.stop();
}
