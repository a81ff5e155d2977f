// bench:sim — simulator throughput: cache requests per second for each policy on the
// cloudphysics trace, and scheduler events per second on TPC-H at 85% load. The peer of each
// policy is the others in the same run (and LRU's one-pass stack-distance curve). Writes
// bench/results/sim.json.
import { join } from 'node:path';
import { emitResult, wantsJson, writeResultFile } from '../experiments/report.ts';
import { benchCacheSim } from './sim-cache.ts';
import { benchSchedulerSim } from './sim-scheduler.ts';

const json = wantsJson();
process.stderr.write('bench:sim: cache replay on cloudphysics...\n');
const cache = await benchCacheSim();
process.stderr.write('bench:sim: scheduler on TPC-H at 85% load...\n');
const scheduler = await benchSchedulerSim();
const result = {
  lru_requests_per_s: cache['lru_requests_per_s'],
  scheduler_events_per_s: scheduler['scheduler_events_per_s'],
  cache,
  scheduler,
};
const path = writeResultFile(join(import.meta.dirname, 'results', 'sim.json'), 'bench:sim', result);
const fmt = (x: number | undefined) => (x === undefined ? '?' : `${(x / 1e6).toFixed(2)} M/s`);
const lines = [
  'cache replay (cloudphysics, requests/s):',
  ...Object.entries(cache)
    .filter(([k]) => k.endsWith('_requests_per_s'))
    .map(([k, v]) => `  ${k.replace('_requests_per_s', '').padEnd(8)} ${fmt(v)}`),
  `scheduler (TPC-H, 85% load): ${fmt(scheduler['scheduler_events_per_s'])} events`,
  `result file: ${path}`,
];
emitResult(lines.join('\n'), result, json);
