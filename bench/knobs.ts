// bench:knobs — promotion-to-visibility latency seen by 8 client processes (p50, p99) and
// promotions per second, against the peer: a bare HSET + PUBLISH with no validation,
// versions, history or audit, published to channels the same 8 client processes subscribe to
// (latency and throughput alike). Writes bench/results/knobs.json.
import { join } from 'node:path';
import { loadavg } from 'node:os';
import { Redis } from 'ioredis';
import { KnobTable } from '../controlplane/knobs/table.ts';
import { ManagedRedis } from '../controlplane/redis/managed.ts';
import { Keys } from '../controlplane/store/keys.ts';
import {
  benchResultPath,
  emitResult,
  machineInfo,
  wantsJson,
  writeResultFile,
} from '../experiments/report.ts';
import { forkChild } from './lib/children.ts';
import { percentile, round } from './lib/stats.ts';
import { benchCatalog } from './knobs-catalog.ts';

const CLIENTS = 8;
const LATENCY_PROMOTIONS = Number(process.env['BENCH_PROMOTIONS'] ?? 1000);
/** Measured throughput time per side, split over the rounds. */
const THROUGHPUT_MS = Number(process.env['BENCH_THROUGHPUT_MS'] ?? 3_000);
/** Even, so each side goes first in half of the rounds. */
const THROUGHPUT_ROUNDS = 4;
/** Pause before every throughput phase (the same for both sides), untimed. */
const SETTLE_MS = 250;
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
const rawTpChannel = 'bench:raw:tp';
try {
  const admin = new KnobTable(new Redis(server.url), { keys, catalog: benchCatalog });
  await admin.seed();
  say(`redis ${server.url}; starting ${CLIENTS} client processes`);
  const children = Array.from({ length: CLIENTS }, () =>
    forkChild<[string, number, string][]>(join(import.meta.dirname, 'knobs-client.ts'), [
      server.url,
      'bench',
      rawChannel,
      rawTpChannel,
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

  // Throughput: PROMOTERS connections per side, each writing its own row back to back. The
  // peer publishes to a channel every client process subscribes to, so its writes are fanned
  // out to the same CLIENTS subscribers as the promotions. The sides alternate in rounds, each
  // going first in half of them, so neither always meets the other's leftovers (subscribers
  // still draining, Redis rewriting its AOF) or a quieter machine.
  say(
    `latency phase done; throughput for ${THROUGHPUT_MS} ms per side in ${THROUGHPUT_ROUNDS} ` +
      `alternating rounds with ${PROMOTERS} promoters`,
  );
  const tables = await Promise.all(
    Array.from({ length: PROMOTERS }, async (_, i) => {
      const t = new KnobTable(new Redis(server.url), { keys, catalog: benchCatalog });
      const name = `bench.k${i}`;
      return { t, name, version: (await t.get(name)).version };
    }),
  );
  const rawConns = Array.from({ length: PROMOTERS }, () => new Redis(server.url));
  await Promise.all(rawConns.map((c) => c.ping()));
  let rawSeq = 0;
  /** Runs `write` back to back on every promoter until `ms` have passed: [writes, elapsed ms]. */
  const phase = async (ms: number, write: (i: number) => Promise<void>) => {
    const start = performance.now();
    const deadline = start + ms;
    const counts = await Promise.all(
      Array.from({ length: PROMOTERS }, async (_, i) => {
        let n = 0;
        while (performance.now() < deadline) {
          await write(i);
          n++;
        }
        return n;
      }),
    );
    return [counts.reduce((a, b) => a + b, 0), performance.now() - start] as const;
  };
  const knobsPhase = (ms: number) =>
    phase(ms, async (i) => {
      const p = tables[i]!;
      p.version = (
        await p.t.promote({
          name: p.name,
          value: p.version + 1,
          baseVersion: p.version,
          actor: 'bench',
          reason: 'throughput',
        })
      ).version;
    });
  const rawPhase = (ms: number) =>
    phase(ms, async (i) => {
      const n = rawSeq++;
      await rawConns[i]!.multi()
        .hset(`bench:raw:row${i}`, 'value', n)
        .publish(rawTpChannel, String(n))
        .exec();
    });
  const tp = { knobs: { n: 0, ms: 0 }, raw: { n: 0, ms: 0 } };
  const tpStart = nowNs();
  const slice = THROUGHPUT_MS / THROUGHPUT_ROUNDS;
  for (let r = 0; r < THROUGHPUT_ROUNDS; r++) {
    const order = r % 2 === 0 ? (['knobs', 'raw'] as const) : (['raw', 'knobs'] as const);
    for (const side of order) {
      // The same pause before every phase lets the subscribers drain the previous one.
      await sleep(SETTLE_MS);
      const [n, ms] = await (side === 'knobs' ? knobsPhase(slice) : rawPhase(slice));
      tp[side].n += n;
      tp[side].ms += ms;
    }
  }
  await sleep(SETTLE_MS);
  for (const p of tables) p.t.redis.disconnect();
  for (const c of rawConns) c.disconnect();

  const reports = await Promise.all(children.map((c) => c.finish()));
  const lat = { knobs: [] as number[], raw: [] as number[] };
  let missing = 0;
  // Throughput-phase notifications received by the client processes (each side should reach
  // CLIENTS x its writes), a check that the peer's publishes reach the subscribers too.
  const tpSeen = { knobs: 0, raw: 0 };
  for (const seen of reports) {
    const got = new Set<string>();
    for (const [name, version, at] of seen) {
      if (name === 'raw.tp') {
        tpSeen.raw++;
        continue;
      }
      const key = `${name}@${version}`;
      const t0 = sentAt.get(key);
      if (t0 === undefined) {
        // Not a measured latency write: a warm-up one, or (seen after it began) throughput.
        if (name !== 'raw' && BigInt(at) >= tpStart) tpSeen.knobs++;
        continue;
      }
      got.add(key);
      (name === 'raw' ? lat.raw : lat.knobs).push(Number(BigInt(at) - t0) / 1e6);
    }
    missing += sentAt.size - got.size;
  }
  // A run that lost notifications measured something else: it fails, writing no result file
  // (before, the counts were recorded and the run passed).
  const lost = [
    missing > 0 ? `${missing} latency notifications never arrived` : '',
    tpSeen.knobs < CLIENTS * tp.knobs.n
      ? `knobs throughput notifications ${tpSeen.knobs} of ${CLIENTS * tp.knobs.n}`
      : '',
    tpSeen.raw < CLIENTS * tp.raw.n
      ? `raw throughput notifications ${tpSeen.raw} of ${CLIENTS * tp.raw.n}`
      : '',
  ].filter(Boolean);
  if (lost.length > 0) throw new Error(`bench:knobs: ${lost.join('; ')}`);
  const result = {
    clients: CLIENTS,
    promotions: LATENCY_PROMOTIONS,
    warmup_promotions: WARMUP,
    p50_ms: round(percentile(lat.knobs, 50)),
    p99_ms: round(percentile(lat.knobs, 99)),
    max_ms: round(percentile(lat.knobs, 100)),
    promotions_per_s: Math.round(tp.knobs.n / (tp.knobs.ms / 1000)),
    missed_notifications: missing,
    peer:
      'raw MULTI HSET + PUBLISH (no validation, versions, history or audit), published to ' +
      `channels all ${CLIENTS} client processes subscribe to, in latency and throughput alike`,
    raw_p50_ms: round(percentile(lat.raw, 50)),
    raw_p99_ms: round(percentile(lat.raw, 99)),
    raw_writes_per_s: Math.round(tp.raw.n / (tp.raw.ms / 1000)),
    throughput:
      `${PROMOTERS} writers per side, back to back; both sides' writes fanned out to the same ` +
      `${CLIENTS} subscribed client processes; ${THROUGHPUT_ROUNDS} rounds of ` +
      `${THROUGHPUT_MS / THROUGHPUT_ROUNDS} ms per side, order alternating (knobs first in ` +
      `even rounds, raw first in odd), ${SETTLE_MS} ms untimed pause before each phase; ` +
      'rate = writes / measured phase time',
    throughput_ms_per_side: THROUGHPUT_MS,
    throughput_rounds: THROUGHPUT_ROUNDS,
    throughput_notifications_seen: tpSeen.knobs,
    raw_throughput_notifications_seen: tpSeen.raw,
    throughput_notifications_expected: CLIENTS * tp.knobs.n,
    raw_throughput_notifications_expected: CLIENTS * tp.raw.n,
    redis: 'managed redis-server, appendfsync everysec, loopback',
    // Latency tails on a 2-core machine depend on what else runs: recorded with the figures.
    load_average_1m: Math.round(loadavg()[0]! * 100) / 100,
    cpu_steal_pct: machineInfo().cpu_steal_pct,
  };
  const path = writeResultFile(
    benchResultPath(join(import.meta.dirname, 'results', 'knobs.json'), [
      'BENCH_PROMOTIONS',
      'BENCH_THROUGHPUT_MS',
    ]),
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
      `throughput with ${PROMOTERS} promoters, fanned out to ${CLIENTS} subscribers, ` +
        `${THROUGHPUT_ROUNDS} alternating rounds: ${result.promotions_per_s} promotions/s ` +
        `(raw peer ${result.raw_writes_per_s} writes/s)`,
      `result file: ${path}`,
    ].join('\n'),
    result,
    json,
  );
} finally {
  await server.stop();
}
