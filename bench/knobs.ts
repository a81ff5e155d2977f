// bench:knobs — promotion-to-visibility latency seen by 8 client processes (p50, p99) and
// promotions per second, against the peer: a bare HSET + PUBLISH with no validation,
// versions, history or audit. Writes bench/results/knobs.json.
import { join } from 'node:path';
import { loadavg } from 'node:os';
import { Redis } from 'ioredis';
import { KnobTable } from '../controlplane/knobs/table.ts';
import { ManagedRedis } from '../controlplane/redis/managed.ts';
import { Keys } from '../controlplane/store/keys.ts';
import { emitResult, machineInfo, wantsJson, writeResultFile } from '../experiments/report.ts';
import { forkChild } from './lib/children.ts';
import { percentile, round } from './lib/stats.ts';
import { benchCatalog } from './knobs-catalog.ts';

const CLIENTS = 8;
const LATENCY_PROMOTIONS = Number(process.env['BENCH_PROMOTIONS'] ?? 1000);
const THROUGHPUT_MS = 3_000;
const PROMOTERS = 4;
// Unmeasured rounds first, so JIT compilation and first-use allocations are not in the tails.
const WARMUP = 100;

const json = wantsJson();
const say = (s: string) => process.stderr.write(s + '\n');
const nowNs = () => process.hrtime.bigint();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const server = await ManagedRedis.start({ appendfsync: 'everysec' });
const keys = new Keys('bench');
const rawChannel = 'bench:raw';
try {
  const admin = new KnobTable(new Redis(server.url), { keys, catalog: benchCatalog });
  await admin.seed();
  say(`redis ${server.url}; starting ${CLIENTS} client processes`);
  const children = Array.from({ length: CLIENTS }, () =>
    forkChild<[string, number, string][]>(join(import.meta.dirname, 'knobs-client.ts'), [
      server.url,
      'bench',
      rawChannel,
    ]),
  );
  await Promise.all(children.map((c) => c.ready));

  // Latency: one promotion at a time, paced, so each is measured without queueing behind others.
  // Each round makes one promotion and one peer write, so both meet the same machine: on a
  // shared 2-core VM, stalls come in bursts that would otherwise land on one side only.
  const sentAt = new Map<string, bigint>();
  const raw = new Redis(server.url);
  for (let round = 0; round < WARMUP + LATENCY_PROMOTIONS; round++) {
    const measured = round >= WARMUP;
    const v = round + 2;
    if (measured) sentAt.set(`bench.k0@${v}`, nowNs());
    await admin.promote({
      name: 'bench.k0',
      value: v,
      baseVersion: v - 1,
      actor: 'bench',
      reason: 'latency',
    });
    await sleep(1);
    if (measured) sentAt.set(`raw@${v}`, nowNs());
    await raw.multi().hset('bench:raw:row', 'value', v).publish(rawChannel, String(v)).exec();
    await sleep(1);
  }

  // Throughput: PROMOTERS connections, each promoting its own knob back to back.
  say(`latency phase done; throughput for ${THROUGHPUT_MS} ms with ${PROMOTERS} promoters`);
  const deadline = Date.now() + THROUGHPUT_MS;
  const counts = await Promise.all(
    Array.from({ length: PROMOTERS }, async (_, i) => {
      const t = new KnobTable(new Redis(server.url), { keys, catalog: benchCatalog });
      const name = `bench.k${i}`;
      let version = (await t.get(name)).version;
      let n = 0;
      while (Date.now() < deadline) {
        version = (
          await t.promote({
            name,
            value: version + 1,
            baseVersion: version,
            actor: 'bench',
            reason: 'throughput',
          })
        ).version;
        n++;
      }
      t.redis.disconnect();
      return n;
    }),
  );
  const rawDeadline = Date.now() + THROUGHPUT_MS;
  const rawCounts = await Promise.all(
    Array.from({ length: PROMOTERS }, async (_, i) => {
      const c = new Redis(server.url);
      let n = 0;
      while (Date.now() < rawDeadline) {
        await c
          .multi()
          .hset(`bench:raw:row${i}`, 'value', n)
          .publish('bench:raw:tp', String(n))
          .exec();
        n++;
      }
      c.disconnect();
      return n;
    }),
  );

  const reports = await Promise.all(children.map((c) => c.finish()));
  const lat = { knobs: [] as number[], raw: [] as number[] };
  let missing = 0;
  for (const seen of reports) {
    const got = new Set<string>();
    for (const [name, version, at] of seen) {
      const key = `${name}@${version}`;
      const t0 = sentAt.get(key);
      if (t0 === undefined) continue;
      got.add(key);
      (name === 'raw' ? lat.raw : lat.knobs).push(Number(BigInt(at) - t0) / 1e6);
    }
    missing += sentAt.size - got.size;
  }
  const result = {
    clients: CLIENTS,
    promotions: LATENCY_PROMOTIONS,
    warmup_promotions: WARMUP,
    p50_ms: round(percentile(lat.knobs, 50)),
    p99_ms: round(percentile(lat.knobs, 99)),
    max_ms: round(percentile(lat.knobs, 100)),
    promotions_per_s: Math.round(counts.reduce((a, b) => a + b, 0) / (THROUGHPUT_MS / 1000)),
    missed_notifications: missing,
    peer: 'raw MULTI HSET + PUBLISH (no validation, versions, history or audit)',
    raw_p50_ms: round(percentile(lat.raw, 50)),
    raw_p99_ms: round(percentile(lat.raw, 99)),
    raw_writes_per_s: Math.round(rawCounts.reduce((a, b) => a + b, 0) / (THROUGHPUT_MS / 1000)),
    redis: 'managed redis-server, appendfsync everysec, loopback',
    // Latency tails on a 2-core machine depend on what else runs: recorded with the figures.
    load_average_1m: Math.round(loadavg()[0]! * 100) / 100,
    cpu_steal_pct: machineInfo().cpu_steal_pct,
  };
  const path = writeResultFile(
    join(import.meta.dirname, 'results', 'knobs.json'),
    'bench:knobs',
    result,
  );
  raw.disconnect();
  admin.redis.disconnect();
  emitResult(
    [
      `promotion -> visible in ${CLIENTS} client processes (${LATENCY_PROMOTIONS} promotions):`,
      `  knobs table  p50 ${result.p50_ms} ms  p99 ${result.p99_ms} ms  (missed ${missing})`,
      `  raw peer     p50 ${result.raw_p50_ms} ms  p99 ${result.raw_p99_ms} ms`,
      `throughput with ${PROMOTERS} promoters: ${result.promotions_per_s} promotions/s (raw peer ${result.raw_writes_per_s} writes/s)`,
      `result file: ${path}`,
    ].join('\n'),
    result,
    json,
  );
} finally {
  await server.stop();
}
