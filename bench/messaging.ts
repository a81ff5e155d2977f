// bench:messaging — exactly-once messages per second through knobos messaging (batching
// producer; consumer whose handler makes one small write, applied with its dedup record and
// XACK in one Lua step per batch) against the raw peer on the same Redis in the same run:
// pipelined XADD, XREADGROUP and one XACK per batch, with no dedup, no writes and no
// exactly-once. One producer process and one consumer process per peer, 4 partitions,
// messaging.batch_size = 64. Rounds alternate the peers; each peer's median round counts.
// Also reported: Redis CPU time per message of each peer (from /proc), the shared resource,
// and the CPU time per message of each peer's producer and consumer process.
// Writes bench/results/messaging.json.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { KnobTable } from '../controlplane/knobs/table.ts';
import { MessagingKeys } from '../controlplane/messaging/keys.ts';
import { Topics } from '../controlplane/messaging/topics.ts';
import { ManagedRedis } from '../controlplane/redis/managed.ts';
import { Keys } from '../controlplane/store/keys.ts';
import { emitResult, wantsJson, writeResultFile } from '../experiments/report.ts';
import { forkChild } from './lib/children.ts';
import { percentile, round } from './lib/stats.ts';
import type { WorkerConfig, WorkerReport } from './messaging-worker.ts';

const MESSAGES = Number(process.env['BENCH_MESSAGES'] ?? 60_000);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);
const PARTITIONS = 4;
const BATCH = 64;
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

/** CPU time (user + system, ms) the redis-server process has used so far (Linux /proc). */
function redisCpuMs(server: ManagedRedis): number {
  try {
    const stat = readFileSync(`/proc/${server.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of the file, in clock ticks (100 per second).
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return Number.NaN;
  }
}

async function runOnce(
  server: ManagedRedis,
  mode: 'knobos' | 'raw',
  r: number,
): Promise<RunResult> {
  const prefix = `bench${r}${mode}`;
  const keys = new Keys(prefix);
  const admin = new Redis(server.url);
  const topic = 'bench';
  if (mode === 'knobos') {
    await new KnobTable(admin, { keys }).seed();
    await new Topics(admin, new MessagingKeys(keys)).ensure(topic, { partitions: PARTITIONS });
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
  const cpu0 = redisCpuMs(server);
  const consumer = child('consumer');
  await consumer.ready;
  const producer = child('producer');
  await producer.ready;
  const [c, p] = [await consumer.finish(), await producer.finish()];
  const cpuMs = redisCpuMs(server) - cpu0;
  admin.disconnect();
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

/** AOF fsync policy of the bench's Redis: everysec (default), always, no, or off (no AOF). */
const FSYNC = process.env['BENCH_APPENDFSYNC'] ?? 'everysec';
const server = await ManagedRedis.start(
  FSYNC === 'off' ? {} : { appendfsync: FSYNC as 'everysec' | 'always' | 'no' },
);
try {
  const runs: Record<'knobos' | 'raw', RunResult[]> = { knobos: [], raw: [] };
  for (let r = 0; r < ROUNDS; r++) {
    for (const mode of ['raw', 'knobos'] as const) {
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
    redis:
      'managed redis-server, appendfsync everysec, loopback; one producer and one consumer process per peer',
  };
  const path = writeResultFile(
    join(import.meta.dirname, 'results', 'messaging.json'),
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
