// bench:sim — simulator throughput: cache requests per second for each policy on the
// cloudphysics trace (mean over all timed replays), and scheduler events per second on TPC-H at
// 85% load (median timed run). The peer of each
// policy is the others in the same run (and LRU's one-pass stack-distance curve). Writes
// bench/results/sim.json.
import { join } from 'node:path';
import { benchResultPath, emitResult, wantsJson, writeResultFile } from '../experiments/report.ts';
import { benchCacheSim } from './sim-cache.ts';
import { benchSchedulerSim } from './sim-scheduler.ts';

const json = wantsJson();
// Shrink for a quick check (the defaults are the real run's): minimum timed ms per policy, and
// TPC-H jobs in the scheduler workload.
const envNum = (k: string) => (process.env[k] === undefined ? undefined : Number(process.env[k]));
const minMs = envNum('BENCH_SIM_MIN_MS');
process.stderr.write('bench:sim: cache replay on cloudphysics...\n');
const cache = await benchCacheSim({ minMs });
process.stderr.write('bench:sim: scheduler on TPC-H at 85% load...\n');
const scheduler = await benchSchedulerSim({ minMs, jobs: envNum('BENCH_SIM_JOBS') });
const fifoRuns = scheduler['fifo_runs'];
const result = {
  lru_requests_per_s: cache['lru_requests_per_s'],
  scheduler_events_per_s: scheduler['scheduler_events_per_s'],
  // The two parts use different statistics; each is named here.
  statistics: {
    cache:
      '*_requests_per_s: mean rate, all timed replays of the trace (requests replayed / total ' +
      'time), after one untimed warm-up replay',
    scheduler:
      '*_events_per_s: median timed run by wall clock; *_events_per_cpu_s: the same run per ' +
      'CPU second; *_best_events_per_s: the fastest run; *_runs: timed runs (after one ' +
      'untimed warm-up run); scheduler_events_per_s: FIFO median-run rate',
  },
  cache,
  scheduler,
};
const path = writeResultFile(
  benchResultPath(join(import.meta.dirname, 'results', 'sim.json'), [
    'BENCH_SIM_JOBS',
    'BENCH_SIM_MIN_MS',
  ]),
  'bench:sim',
  result,
);
const fmt = (x: number | undefined) => (x === undefined ? '?' : `${(x / 1e6).toFixed(2)} M/s`);
const lines = [
  'cache replay (cloudphysics, requests/s, mean over all timed replays):',
  ...Object.entries(cache)
    .filter(([k]) => k.endsWith('_requests_per_s'))
    .map(([k, v]) => `  ${k.replace('_requests_per_s', '').padEnd(8)} ${fmt(v)}`),
  `scheduler (TPC-H, 85% load): ${fmt(scheduler['scheduler_events_per_s'])} events, ` +
    `median of ${fifoRuns ?? '?'} runs (best run ${fmt(scheduler['fifo_best_events_per_s'])})`,
  `result file: ${path}`,
];
emitResult(lines.join('\n'), result, json);
