// One process of bench:messaging: a producer or a consumer, of knobos messaging (batching
// producer; exactly-once consumer whose handler makes one small write) or of the raw peer
// (pipelined XADD; XREADGROUP + one XACK per batch, no dedup, no writes). Both peers batch
// the same way: messaging.batch_size messages per call, one call in flight per partition.
// It says 'ready' once set up (a producer then starts at once), and on 'finish' reports.
import { Redis } from 'ioredis';
import { KnobClient } from '../controlplane/knobs/client.ts';
import { KnobTable } from '../controlplane/knobs/table.ts';
import { Consumer } from '../controlplane/messaging/consumer.ts';
import { MessagingKeys } from '../controlplane/messaging/keys.ts';
import { Producer } from '../controlplane/messaging/producer.ts';
import { Keys } from '../controlplane/store/keys.ts';
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
  count: number;
  duplicates: number;
  /** Calls that carried messages (publish batches or consumed batches). */
  batches: number;
  /** CPU time (user + system, µs) this process used from start to end. */
  cpuUs: number;
}

const cfg = JSON.parse(process.argv[2] ?? '{}') as WorkerConfig;
const keys = new Keys(cfg.prefix);
const mkeys = new MessagingKeys(keys);
const redis = new Redis(cfg.url);
const rawStream = (p: number) => keys.key(`raw:${p}`, 'stream');
const payload = 'x'.repeat(100);
/** Producer window: chunks of this many publishes, two chunks in flight. */
const CHUNK = 4_096;

const report: WorkerReport = {
  startAt: 0,
  endAt: 0,
  count: 0,
  duplicates: 0,
  batches: 0,
  cpuUs: 0,
};
/** Process CPU time when the peer's work started (set-up before 'ready' does not count). */
let cpu0 = 0;
const cpuNow = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
let finished: () => void = () => {};
const done = new Promise<void>((r) => (finished = r));
let cleanup: () => Promise<void> = async () => {};

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
  process.send?.({ type: 'ready' });
  cpu0 = cpuNow();
  report.startAt = Date.now();
  let prev: Promise<unknown> = Promise.resolve();
  for (let i = 0; i < cfg.messages; i += CHUNK) {
    const n = Math.min(CHUNK, cfg.messages - i);
    const chunk = Promise.all(
      Array.from({ length: n }, () => producer.publish(cfg.topic, payload)),
    );
    await prev;
    prev = chunk;
  }
  await prev;
  report.endAt = Date.now();
  report.count = cfg.messages;
  cleanup = async () => {
    await producer.close();
    await knobs.close();
  };
  finished();
}

async function rawProducer(): Promise<void> {
  process.send?.({ type: 'ready' });
  cpu0 = cpuNow();
  report.startAt = Date.now();
  const perLane = Math.ceil(cfg.messages / cfg.partitions);
  await Promise.all(
    Array.from({ length: cfg.partitions }, async (_, p) => {
      const total = Math.min(perLane, cfg.messages - p * perLane);
      for (let sent = 0; sent < total; sent += cfg.batch) {
        const pipe = redis.pipeline();
        const n = Math.min(cfg.batch, total - sent);
        for (let j = 0; j < n; j++) pipe.xadd(rawStream(p), '*', 'd', payload, 't', Date.now());
        await pipe.exec();
        report.batches++;
      }
    }),
  );
  report.endAt = Date.now();
  report.count = cfg.messages;
  finished();
}

function counted(n: number): void {
  if (n > 0) report.batches++;
  if (report.count === 0 && n > 0) report.startAt = Date.now();
  report.count += n;
  if (report.count >= cfg.messages && report.endAt === 0) {
    report.endAt = Date.now();
    finished();
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
    counted(e.applied);
  });
  cleanup = async () => {
    await consumer.stop();
    await knobs.close();
  };
  cpu0 = cpuNow();
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
  cpu0 = cpuNow();
  process.send?.({ type: 'ready' });
}

process.on('message', (m: { type: string }) => {
  if (m.type !== 'finish') return;
  void (async () => {
    await done;
    report.cpuUs = cpuNow() - cpu0;
    await stopProfile();
    await cleanup();
    process.send?.({ type: 'report', report }, () => {
      redis.disconnect();
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
