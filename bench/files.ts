// bench:files — the file service against Node's fs on a local directory, in the same run:
// (1) small-file operations per second, the same op mix on both (create, write 1 KiB at offset
// 0, read whole; 32 files in flight); (2) a metadata query over 100,000 files ("files under D
// larger than X modified in the last 24 hours"): the service's indexed query against walking
// the same tree with readdir + stat. Writes bench/results/files.json.
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { FILE_KNOBS, FileService, ROOT } from '../controlplane/files/index.ts';
import { KnobClient } from '../controlplane/knobs/client.ts';
import { KnobTable } from '../controlplane/knobs/table.ts';
import { ManagedRedis } from '../controlplane/redis/managed.ts';
import { Keys } from '../controlplane/store/keys.ts';
import { createRng } from '../envs/core/rng.ts';
import { benchResultPath, emitResult, wantsJson, writeResultFile } from '../experiments/report.ts';
import { knobosTarget, nodeFsTarget, runMix, totalMix, type MixResult } from './files-mix.ts';
import { makeTree, walkAsync, walkSync, writeTree, type Query } from './files-tree.ts';
import { percentile, round } from './lib/stats.ts';

const MIX_FILES = Number(process.env['BENCH_FILES_MIX'] ?? 8_000);
// The machine is shared: the two sides take turns in rounds, so load spikes hit both.
const MIX_ROUNDS = 4;
const CONCURRENCY = 32;
const FILE_BYTES = 1_024;
const SHAPE = { top: 20, mid: 50, leaf: 100 }; // 100,000 files
const REPEATS = 3;
const SEED = 7;
const DAY_MS = 86_400_000;

const json = wantsJson();
const say = (s: string) => process.stderr.write(s + '\n');
const median = (xs: number[]) => percentile(xs, 50);

async function timed<T>(fn: () => T | Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  return { ms: performance.now() - t0, value };
}

/** Median time of `REPEATS` runs, and the last run's answer. */
async function repeat<T>(fn: () => T | Promise<T>): Promise<{ ms: number; value: T }> {
  const runs: number[] = [];
  let value: T | undefined;
  for (let i = 0; i < REPEATS; i++) {
    const r = await timed(fn);
    runs.push(r.ms);
    value = r.value;
  }
  return { ms: median(runs), value: value as T };
}

const server = await ManagedRedis.start({ appendfsync: 'everysec' });
const dir = mkdtempSync(join(tmpdir(), 'knobos-bench-files-'));
// Auto-pipelining: the 32 operations in flight share socket writes, as fs shares its threads.
const redis = new Redis(server.url, { enableAutoPipelining: true });
const keys = new Keys('bench');
const table = new KnobTable(redis, { keys });
await table.seed();
const knobs = await KnobClient.start({ table, names: FILE_KNOBS });
const fs = await FileService.start({ redis, keys, knobs, traceSampleRate: 0.01 });
try {
  // 1. The op mix, a short warm-up on each side first.
  say(
    `op mix: ${MIX_FILES} files x (create, write ${FILE_BYTES} B, read), ${CONCURRENCY} in flight`,
  );
  const mix = { files: MIX_FILES, concurrency: CONCURRENCY, bytes: FILE_BYTES };
  const kTarget = knobosTarget(fs, '/small');
  const fTarget = nodeFsTarget(join(dir, 'small'));
  await runMix(kTarget, { ...mix, files: 500, prefix: 'warm' });
  await runMix(fTarget, { ...mix, files: 500, prefix: 'warm' });
  const rounds: { knobos: MixResult[]; fs: MixResult[] } = { knobos: [], fs: [] };
  for (let r = 0; r < MIX_ROUNDS; r++) {
    const round = { ...mix, files: Math.ceil(MIX_FILES / MIX_ROUNDS), prefix: `r${r}f` };
    // Each round the other side goes first (before, knobos always did).
    const order = r % 2 === 0 ? (['knobos', 'fs'] as const) : (['fs', 'knobos'] as const);
    for (const side of order)
      rounds[side].push(await runMix(side === 'knobos' ? kTarget : fTarget, round));
  }
  const knobosMix = totalMix(rounds.knobos);
  const fsMix = totalMix(rounds.fs);
  say(`  knobos ${Math.round(knobosMix.ops_per_s)} ops/s, fs ${Math.round(fsMix.ops_per_s)} ops/s`);

  // 2. The metadata query over 100,000 files.
  const now = Date.now();
  const tree = makeTree(createRng(SEED), SHAPE, now);
  say(`query: loading ${tree.length} files into the service (bulk import) and onto disk`);
  const load = await timed(() => fs.importFiles(ROOT, tree));
  say(`  service: ${round(load.ms / 1000, 1)} s`);
  const disk = await timed(() => writeTree(join(dir, 'tree'), tree));
  say(`  disk: ${round(disk.ms / 1000, 1)} s`);
  const root = join(dir, 'tree');
  const queries: Record<string, Query> = {
    whole: { under: '/data', minSizeBytes: 65_536, modifiedFromMs: now - DAY_MS },
    subtree: { under: '/data/p07', minSizeBytes: 65_536, modifiedFromMs: now - DAY_MS },
  };
  const results: Record<string, Record<string, number | string | boolean>> = {};
  for (const [name, q] of Object.entries(queries)) {
    const k = await repeat(() => fs.findAllFiles(ROOT, q));
    const ws = await repeat(() => walkSync(root, q));
    const wa = await timed(() => walkAsync(root, q)); // once: slower than the sync walk here
    const plan = (await fs.findFiles(ROOT, q)).plan;
    const same =
      JSON.stringify(k.value.map((f) => f.path).sort()) === JSON.stringify(ws.value.sort()) &&
      ws.value.length === wa.value.length;
    if (!same) throw new Error(`query ${name}: the service and the walk disagree`);
    const walkMs = Math.min(ws.ms, wa.ms);
    results[name] = {
      under: q.under,
      matches: k.value.length,
      plan,
      knobos_query_ms: round(k.ms),
      fs_walk_sync_ms: round(ws.ms),
      fs_walk_async_ms: round(wa.ms),
      speedup: round(walkMs / k.ms, 1),
    };
    say(
      `  ${name}: ${k.value.length} matches; knobos ${round(k.ms)} ms (${plan} index), walk ${round(walkMs)} ms`,
    );
  }

  const result = {
    knobos_ops_per_s: Math.round(knobosMix.ops_per_s),
    fs_ops_per_s: Math.round(fsMix.ops_per_s),
    ops_ratio: round(knobosMix.ops_per_s / fsMix.ops_per_s, 3),
    query_speedup: results['whole']?.['speedup'],
    mix: {
      files: MIX_FILES,
      ops: knobosMix.ops,
      rounds: MIX_ROUNDS,
      knobos_ops_per_s_by_round: rounds.knobos.map((m) => Math.round(m.ops_per_s)),
      fs_ops_per_s_by_round: rounds.fs.map((m) => Math.round(m.ops_per_s)),
      concurrency: CONCURRENCY,
      file_bytes: FILE_BYTES,
      knobos_ms_per_op: {
        create: round(knobosMix.create_ms),
        write: round(knobosMix.write_ms),
        read: round(knobosMix.read_ms),
      },
      fs_ms_per_op: {
        create: round(fsMix.create_ms),
        write: round(fsMix.write_ms),
        read: round(fsMix.read_ms),
      },
    },
    query: {
      files: tree.length,
      predicate: 'size > 65536 B and mtime within the last 24 h',
      repeats: REPEATS,
      ...results,
      knobos_import_s: round(load.ms / 1000, 2),
      fs_write_tree_s: round(disk.ms / 1000, 2),
    },
    load_average: loadavg().map((l) => round(l, 1)),
    peer:
      "Node's fs on the same disk (fs/promises for the mix, no fsync, while knobos's Redis " +
      'fsyncs its AOF every second; readdir + stat walk, sync and async, the faster counted)',
    order: 'the two sides alternate which goes first, round by round',
    redis: 'managed redis-server, appendfsync everysec, loopback; ioredis with auto-pipelining',
    fs_dir: 'os.tmpdir()',
  };
  const path = writeResultFile(
    benchResultPath(join(import.meta.dirname, 'results', 'files.json'), ['BENCH_FILES_MIX']),
    'bench:files',
    result,
  );
  emitResult(
    [
      `small files (${MIX_FILES} x create + write ${FILE_BYTES} B + read, ${CONCURRENCY} in flight):`,
      `  knobos ${result.knobos_ops_per_s} ops/s   fs ${result.fs_ops_per_s} ops/s   ratio ${result.ops_ratio}`,
      `metadata query over ${tree.length} files (${result.query.predicate}):`,
      ...Object.entries(results).map(
        ([n, r]) =>
          `  ${n} (${r['under']}, ${r['matches']} matches): knobos ${r['knobos_query_ms']} ms via ${r['plan']} index, walk ${Math.min(Number(r['fs_walk_sync_ms']), Number(r['fs_walk_async_ms']))} ms, speedup ${r['speedup']}x`,
      ),
      `result file: ${path}`,
    ].join('\n'),
    result,
    json,
  );
} finally {
  await fs.close();
  await knobs.close();
  redis.disconnect();
  await server.stop();
  const t = performance.now();
  rmSync(dir, { recursive: true, force: true });
  say(`removed the temporary tree in ${round((performance.now() - t) / 1000, 1)} s`);
}
