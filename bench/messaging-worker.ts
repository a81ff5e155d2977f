// One process of bench:messaging: a producer or a consumer, of knobos messaging (batching
// producer; exactly-once consumer whose handler makes one small write) or of the raw peer
// (pipelined XADD; XREADGROUP + one XACK per batch, no dedup, no writes). Both peers batch
// the same way: messaging.batch_size messages per call, one call in flight per partition.
// Protocol with bench/messaging.ts: it says 'ready' once set up; on 'go' (the consumer first,
// then the producer) it starts its measured window: the consumer replies 'going' and starts its
// CPU clock, the producer reads Redis's CPU (INFO cpu) and starts publishing at once. The
// consumer closes its window when the last message is applied (its CPU and Redis's CPU read
// there), so both peers' CPU covers the throughput clock only: from the producer's first
// publish to the consumer's last applied message. 'status' replies with the progress so far (a
// run past its deadline names its counts); on 'finish' it waits for the end, cleans up and
// reports.
import { Redis } from 'ioredis';
import { KnobClient } from '../controlplane/knobs/client.ts';
import { KnobTable } from '../controlplane/knobs/table.ts';
import { Consumer } from '../controlplane/messaging/consumer.ts';
import { MessagingKeys } from '../controlplane/messaging/keys.ts';
import { Producer } from '../controlplane/messaging/producer.ts';
import { Keys } from '../controlplane/store/keys.ts';
import { redisCpuS } from './lib/redis-cpu.ts';
import { startProfile } from './scheduler-profile.ts';

export interface WorkerConfig {
  url: string;
  mode: 'knobos' | 'raw';
  role: 'producer' | 'consumer';
  prefix: string;
  topic: string;
  partitions: number;
  messages: number;
  batch: number;
}

export interface WorkerReport {
  startAt: number;
  endAt: number;
  /** Messages published (producer) or applied (consumer). */
  count: number;
  duplicates: number;
  /** Consumer (knobos): messages whose handler threw, stale commits, dead-lettered, write errors. */
  failed: number;
  /** Calls that carried messages (publish batches or consumed batches). */
  batches: number;
  /**
   * CPU time (user + system, µs) this process used in its window: the producer from its first
   * publish to its last one confirmed, the consumer from 'go' to its last applied message.
   */
  cpuUs: number;
  /** Redis's CPU seconds (INFO cpu): the producer's before its first publish, the consumer's
   * after its last applied message. */
  redisCpuS: number;
}

const cfg = JSON.parse(process.argv[2] ?? '{}') as WorkerConfig;
const keys = new Keys(cfg.prefix);
const mkeys = new MessagingKeys(keys);
const redis = new Redis(cfg.url);
/** A connection of its own for INFO cpu, so the reading does not queue behind the peer's calls. */
const probe = new Redis(cfg.url);
const rawStream = (p: number) => keys.key(`raw:${p}`, 'stream');
const payload = 'x'.repeat(100);
/** Producer window: chunks of this many publishes, two chunks in flight. */
const CHUNK = 4_096;

const report: WorkerReport = {
  startAt: 0,
  endAt: 0,
  count: 0,
  duplicates: 0,
  failed: 0,
  batches: 0,
  cpuUs: 0,
  redisCpuS: Number.NaN,
};
/** Process CPU time when the peer's window started (set-up before 'go' does not count). */
let cpu0 = 0;
const cpuNow = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
let finished: () => void = () => {};
const done = new Promise<void>((r) => (finished = r));
let cleanup: () => Promise<void> = async () => {};
let go: () => void = () => {};
const started = new Promise<void>((r) => (go = r));

/** Producer: waits for 'go', reads Redis's CPU, then starts its window and clock. */
async function startWindow(): Promise<void> {
  await started;
  report.redisCpuS = await redisCpuS(probe);
  cpu0 = cpuNow();
  report.startAt = Date.now();
}

async function knobsClient(): Promise<KnobClient> {
  return KnobClient.start({
    table: new KnobTable(redis, { keys }),
    names: ['messaging.batch_size', 'messaging.linger_ms', 'messaging.partitions'],
    resyncIntervalMs: 0,
  });
}

async function knobosProducer(): Promise<void> {
  const knobs = await knobsClient();
  const producer = new Producer({ redis, keys: mkeys, knobs, maxBuffered: 4 * CHUNK });
  producer.on('flush', () => report.batches++);
  await probe.ping();
  process.send?.({ type: 'ready' });
  await startWindow();
  let prev: Promise<unknown> = Promise.resolve();
  for (let i = 0; i < cfg.messages; i += CHUNK) {
    const n = Math.min(CHUNK, cfg.messages - i);
    const chunk = Promise.all(
      Array.from({ length: n }, () => producer.publish(cfg.topic, payload)),
    ).then(() => (report.count += n));
    await prev;
    prev = chunk;
  }
  await prev;
  report.endAt = Date.now();
  report.cpuUs = cpuNow() - cpu0;
  cleanup = async () => {
    await producer.close();
    await knobs.close();
  };
  finished();
}

async function rawProducer(): Promise<void> {
  await probe.ping();
  process.send?.({ type: 'ready' });
  await startWindow();
  const perLane = Math.ceil(cfg.messages / cfg.partitions);
  await Promise.all(
    Array.from({ length: cfg.partitions }, async (_, p) => {
      const total = Math.min(perLane, cfg.messages - p * perLane);
      for (let sent = 0; sent < total; sent += cfg.batch) {
        const pipe = redis.pipeline();
        const n = Math.min(cfg.batch, total - sent);
        for (let j = 0; j < n; j++) pipe.xadd(rawStream(p), '*', 'd', payload, 't', Date.now());
        const replies = (await pipe.exec()) ?? [];
        report.count += replies.filter(([err]) => !err).length;
        report.batches++;
      }
    }),
  );
  report.endAt = Date.now();
  report.cpuUs = cpuNow() - cpu0;
  finished();
}

/**
 * The consumer's count of applied messages. At the last one (or past it: bench/messaging.ts
 * then fails the run, the count must equal the messages sent) its window closes: the clock,
 * its CPU and Redis's CPU are read there. It keeps counting afterwards, so a message applied
 * twice or more than was sent shows in the report.
 */
function counted(n: number): void {
  if (n > 0) report.batches++;
  if (report.count === 0 && n > 0) report.startAt = Date.now();
  report.count += n;
  if (report.count >= cfg.messages && report.endAt === 0) {
    report.endAt = Date.now();
    report.cpuUs = cpuNow() - cpu0;
    void redisCpuS(probe).then(
      (s) => {
        report.redisCpuS = s;
        finished();
      },
      () => finished(),
    );
  }
}

async function knobosConsumer(): Promise<void> {
  const knobs = await knobsClient();
  const consumer = await Consumer.start({
    redis,
    keys: mkeys,
    knobs,
    topic: cfg.topic,
    group: 'bench',
    handler: (_m, out) => {
      out.incr('processed');
    },
  });
  consumer.on('batch', (e) => {
    report.duplicates += e.duplicates;
    report.failed += e.failed + e.stale + e.deadLettered + e.writeErrors;
    counted(e.applied);
  });
  cleanup = async () => {
    await consumer.stop();
    await knobs.close();
  };
  await probe.ping();
  process.send?.({ type: 'ready' });
}

async function rawConsumer(): Promise<void> {
  const conns = Array.from({ length: cfg.partitions }, () => new Redis(cfg.url));
  let running = true;
  const loops = conns.map(async (conn, p) => {
    while (running) {
      const reply = (await conn
        .call(
          'XREADGROUP',
          'GROUP',
          'bench',
          'c1',
          'COUNT',
          cfg.batch,
          'BLOCK',
          200,
          'STREAMS',
          rawStream(p),
          '>',
        )
        .catch(() => null)) as [string, [string, string[]][]][] | null;
      const entries = reply?.[0]?.[1] ?? [];
      if (entries.length === 0) continue;
      await redis.xack(rawStream(p), 'bench', ...entries.map(([id]) => id));
      counted(entries.length);
    }
  });
  cleanup = async () => {
    running = false;
    conns.forEach((c) => c.disconnect());
    await Promise.all(loops);
  };
  await probe.ping();
  process.send?.({ type: 'ready' });
}

process.on('message', (m: { type: string }) => {
  if (m.type === 'go') {
    if (cfg.role === 'consumer') {
      cpu0 = cpuNow();
      process.send?.({ type: 'going' });
    }
    go();
    return;
  }
  if (m.type === 'status') {
    process.send?.({ type: 'status', count: report.count, duplicates: report.duplicates });
    return;
  }
  if (m.type !== 'finish') return;
  void (async () => {
    await done;
    await stopProfile();
    await cleanup();
    process.send?.({ type: 'report', report }, () => {
      redis.disconnect();
      probe.disconnect();
      process.exit(0);
    });
  })();
});

// With BENCH_PROFILE_DIR set, each process writes a V8 CPU profile there (see scheduler-profile.ts).
const stopProfile = await startProfile(`messaging-${cfg.mode}-${cfg.role}`);
const run =
  cfg.role === 'producer'
    ? cfg.mode === 'knobos'
      ? knobosProducer
      : rawProducer
    : cfg.mode === 'knobos'
      ? knobosConsumer
      : rawConsumer;
await run();
