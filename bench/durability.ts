// bench:durability — what store.replica_acks costs: acknowledged writes per second and their
// latency (p50/p99) with the knob at 0 (reply when the primary has it) and at 1 (reply once its
// replica has it too: Redis WAIT), in the same run, on a local cluster of 3 primaries with a
// replica each. The write is a scheduler submit (one task per call, one Lua step), spread over
// 3 shards on the 3 primaries, at 1 and at 32 calls in flight: at 1 the WAIT's round trip shows
// in full; at 32, writes whose replies arrive together share one WAIT (group commit). The two
// settings take turns in rounds so load spikes of the shared machine hit both; CPU per write
// (this process and all redis-servers) is reported beside the rates. Writes
// bench/results/durability.json.
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { connect, type RedisClient } from '../controlplane/redis/connect.ts';
import { ManagedCluster } from '../controlplane/redis/managed-cluster.ts';
import { SchedulerClient } from '../controlplane/scheduler/client.ts';
import { SchedShard } from '../controlplane/scheduler/shard.ts';
import { shardNamesOnPrimaries } from '../controlplane/scheduler/placement.ts';
import { Keys } from '../controlplane/store/keys.ts';
import { setReplicaAcks } from '../controlplane/store/replica-acks.ts';
import { benchResultPath, emitResult, wantsJson, writeResultFile } from '../experiments/report.ts';
import { cpuSeconds } from './lib/redis-cpu.ts';
import { percentile, round } from './lib/stats.ts';

const ROUNDS = 3;
const DEPTHS = [1, 32] as const;
/** Writes per round and setting, by depth (fewer at depth 1: each costs a full round trip). */
const WRITES: Record<(typeof DEPTHS)[number], number> = {
  1: Number(process.env['BENCH_DURABILITY_WRITES_1'] ?? 600),
  32: Number(process.env['BENCH_DURABILITY_WRITES_32'] ?? 6_000),
};
const TIMEOUT_MS = 1_000;

const json = wantsJson();
const say = (s: string) => process.stderr.write(s + '\n');

interface Run {
  writes: number;
  ms: number;
  latencies: number[];
  clientCpuMs: number;
  serverCpuMs: number;
  waits: number;
}

/** Total CPU seconds (user + sys) and WAIT calls over every running node. */
async function serverCounters(probe: RedisClient[]): Promise<{ cpuMs: number; waits: number }> {
  let cpuMs = 0;
  let waits = 0;
  for (const c of probe) {
    const info = (await c.call('INFO', 'all')) as string;
    cpuMs += cpuSeconds(info) * 1000;
    waits += Number(/^cmdstat_wait:calls=(\d+)/m.exec(info)?.[1] ?? 0);
  }
  return { cpuMs, waits };
}

async function run(
  clients: SchedulerClient[],
  depth: number,
  writes: number,
  tag: string,
  probe: RedisClient[],
): Promise<Run> {
  const latencies: number[] = [];
  let next = 0;
  const s0 = await serverCounters(probe);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: depth }, async () => {
      while (next < writes) {
        const n = next++;
        const t = performance.now();
        await (clients[n % clients.length] as SchedulerClient).submit({
          id: `${tag}-${n}`,
          type: 'bench',
        });
        latencies.push(performance.now() - t);
      }
    }),
  );
  const ms = performance.now() - t0;
  const c1 = process.cpuUsage(c0);
  const s1 = await serverCounters(probe);
  return {
    writes,
    ms,
    latencies,
    clientCpuMs: (c1.user + c1.system) / 1000,
    serverCpuMs: s1.cpuMs - s0.cpuMs,
    waits: s1.waits - s0.waits,
  };
}

function summary(runs: Run[]) {
  const writes = runs.reduce((a, r) => a + r.writes, 0);
  const ms = runs.reduce((a, r) => a + r.ms, 0);
  const lat = runs.flatMap((r) => r.latencies);
  return {
    writes_per_s: Math.round((writes / ms) * 1000),
    writes_per_s_by_round: runs.map((r) => Math.round((r.writes / r.ms) * 1000)),
    p50_ms: round(percentile(lat, 50)),
    p99_ms: round(percentile(lat, 99)),
    client_cpu_us_per_write: round(
      (runs.reduce((a, r) => a + r.clientCpuMs, 0) / writes) * 1000,
      1,
    ),
    server_cpu_us_per_write: round(
      (runs.reduce((a, r) => a + r.serverCpuMs, 0) / writes) * 1000,
      1,
    ),
    waits_per_write: round(runs.reduce((a, r) => a + r.waits, 0) / writes),
  };
}

say('starting a cluster of 3 primaries with a replica each');
const cluster = await ManagedCluster.start({ primaries: 3, replicasPerPrimary: 1 });
const target = { cluster: cluster.seeds };
const client0 = connect(target, { name: 'bench-durability-0' });
const client1 = connect(target, { name: 'bench-durability-1' });
setReplicaAcks(client1, { replicas: 1, timeoutMs: TIMEOUT_MS });
const probe = cluster.nodes.map((n) => connect({ url: n.url }, { name: 'bench-probe' }));
try {
  const keys = new Keys('bench');
  // Three shards whose hash tags land on three different primaries.
  const shards = await shardNamesOnPrimaries(client0, 3);
  const side = (c: RedisClient) =>
    shards.map((s) => new SchedulerClient({ shard: new SchedShard(c, keys, s) }));
  const sides = { knob0: side(client0), knob1: side(client1) };
  // Warm-up: scripts loaded and connections open on every node, both sides.
  await run(sides.knob0, 8, 300, 'warm0', probe);
  await run(sides.knob1, 8, 300, 'warm1', probe);

  const byDepth: Record<string, Record<string, ReturnType<typeof summary>>> = {};
  // Each round the other setting goes first, counted over the whole run (before, knob 0 always
  // did; counted per depth, knob 0 would lead 4 of the 6 rounds).
  let turn = 0;
  for (const depth of DEPTHS) {
    const runs: { knob0: Run[]; knob1: Run[] } = { knob0: [], knob1: [] };
    for (let r = 0; r < ROUNDS; r++) {
      const order =
        turn++ % 2 === 0 ? (['knob0', 'knob1'] as const) : (['knob1', 'knob0'] as const);
      for (const k of order) {
        runs[k].push(await run(sides[k], depth, WRITES[depth], `${k}-d${depth}-r${r}`, probe));
      }
    }
    byDepth[`depth_${depth}`] = { knob0: summary(runs.knob0), knob1: summary(runs.knob1) };
    const d = byDepth[`depth_${depth}`]!;
    say(
      `depth ${depth}: knob 0 ${d['knob0']!.writes_per_s} writes/s p50 ${d['knob0']!.p50_ms} ms p99 ${d['knob0']!.p99_ms} ms; ` +
        `knob 1 ${d['knob1']!.writes_per_s} writes/s p50 ${d['knob1']!.p50_ms} ms p99 ${d['knob1']!.p99_ms} ms`,
    );
  }
  const d1 = byDepth['depth_1']!;
  const d32 = byDepth['depth_32']!;
  const result = {
    writes_per_s_0: d32['knob0']!.writes_per_s,
    writes_per_s_1: d32['knob1']!.writes_per_s,
    throughput_ratio: round(d32['knob1']!.writes_per_s / d32['knob0']!.writes_per_s),
    p50_ms_0: d1['knob0']!.p50_ms,
    p50_ms_1: d1['knob1']!.p50_ms,
    p99_ms_0: d1['knob0']!.p99_ms,
    p99_ms_1: d1['knob1']!.p99_ms,
    ...byDepth,
    rounds: ROUNDS,
    writes_per_round: WRITES,
    replica_ack_timeout_ms: TIMEOUT_MS,
    write: 'scheduler submit of one task (one Lua step), over 3 shards on the 3 primaries',
    cluster: '3 primaries x 1 replica, managed redis-servers on loopback, AOF off',
    load_average: loadavg().map((l) => round(l, 1)),
  };
  const path = writeResultFile(
    benchResultPath(join(import.meta.dirname, 'results', 'durability.json'), [
      'BENCH_DURABILITY_WRITES_1',
      'BENCH_DURABILITY_WRITES_32',
    ]),
    'bench:durability',
    result,
  );
  const line = (name: string, s: ReturnType<typeof summary>) =>
    `  ${name}: ${s.writes_per_s} writes/s  p50 ${s.p50_ms} ms  p99 ${s.p99_ms} ms  ` +
    `cpu/write client ${s.client_cpu_us_per_write} us, servers ${s.server_cpu_us_per_write} us  WAITs/write ${s.waits_per_write}`;
  emitResult(
    [
      ...DEPTHS.flatMap((d) => [
        `${d} in flight:`,
        line('replica_acks 0', byDepth[`depth_${d}`]!['knob0']!),
        line('replica_acks 1', byDepth[`depth_${d}`]!['knob1']!),
      ]),
      `throughput at 32 in flight, knob 1 / knob 0: ${result.throughput_ratio}`,
      `result file: ${path}`,
    ].join('\n'),
    result,
    json,
  );
} finally {
  client0.disconnect();
  client1.disconnect();
  probe.forEach((p) => p.disconnect());
  await cluster.stop();
}
