// Fixtures for the policy registry's tests: a tiny TPC-H trace in the loaders' format (three
// query DAGs with a few duration samples per stage) in a temp directory, so evaluations run in
// milliseconds instead of loading the shared 1.6 M-row durations file.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TraceFiles } from '../../controlplane/registry/sim.ts';

/** query -> stages: [num_tasks, parents (';'-separated), durations ms] */
const DAGS: Record<string, [number, string, number[]][]> = {
  '1': [
    [4, '', [900, 1100, 1000, 950]],
    [8, '0', [120, 140, 400, 90]],
    [2, '1', [300, 280]],
  ],
  '2': [
    [2, '', [5000, 5200]],
    [3, '', [200, 250, 220]],
    [6, '0;1', [700, 650, 800]],
  ],
  '3': [
    [1, '', [60, 70]],
    [12, '0', [30, 45, 2500, 40]],
  ],
};

export function tinyTpchTrace(): TraceFiles & { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'knobos-tpch-'));
  const stages = ['scale,query,stage,num_tasks,parents,children'];
  const durations = ['scale,query,stage,num_executors,wave,duration_ms'];
  for (const [query, list] of Object.entries(DAGS)) {
    list.forEach(([tasks, parents, samples], stage) => {
      const children = list
        .map(([, p], i) => (p.split(';').includes(String(stage)) ? i : -1))
        .filter((i) => i >= 0)
        .join(';');
      stages.push(`2g,${query},${stage},${tasks},${parents},${children}`);
      for (const ms of samples) durations.push(`2g,${query},${stage},2,first_wave,${ms}`);
    });
  }
  const stagesFile = join(dir, 'tpch_stages.csv');
  const durationsFile = join(dir, 'tpch_task_durations.csv');
  writeFileSync(stagesFile, stages.join('\n') + '\n');
  writeFileSync(durationsFile, durations.join('\n') + '\n');
  return {
    dir,
    stagesFile,
    durationsFile,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
