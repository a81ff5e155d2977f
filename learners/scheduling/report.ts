// The evaluation a training run ends with: the learned policy and every heuristic on held-out
// TPC-H workloads, as a result object (JSON) and a markdown table. Used by train.ts, also with
// --eval-only (the committed artifact, no training).
import { SCHEDULING_POLICY_NAMES, type SchedulingPolicy } from '../../policies/scheduling/index.ts';
import { comparePolicies, pairedVs, type PolicyScores, type World } from './evaluate.ts';
import type { Scenario, TpchScenarioOptions } from './scenario.ts';

export interface WorldResult {
  world: World;
  seeds: number[];
  scenario: TpchScenarioOptions;
  policies: PolicyScores[];
  /** The best heuristic by mean. */
  bestHeuristic: string;
  /** Relative reduction of mean JCT by the learned policy: (ref - learned) / ref. */
  learnedVsFifo: number;
  learnedVsBestHeuristic: number;
  /** Seeds on which the learned policy's JCT is below the best heuristic's. */
  seedsBeatingBestHeuristic: number;
  /** Paired per-seed difference learned - best heuristic, s: mean and its standard error. */
  pairedDiffS: { mean: number; stdErr: number };
}

export function evaluateWorld(
  learned: () => SchedulingPolicy,
  scenario: Scenario,
  scenarioOptions: TpchScenarioOptions,
  seeds: readonly number[],
  world: World,
  log: (line: string) => void = () => {},
): WorldResult {
  const makers = { learned, ...Object.fromEntries(SCHEDULING_POLICY_NAMES.map((n) => [n, n])) };
  const policies = comparePolicies(makers, scenario, seeds, world, (name, seed, jct) =>
    log(`eval ${world} ${name} seed ${seed}: mean JCT ${jct.toFixed(2)} s`),
  );
  const get = (name: string) => policies.find((p) => p.name === name) as PolicyScores;
  const heuristics = policies.filter((p) => p.name !== 'learned');
  const best = heuristics.reduce((a, b) => (b.mean < a.mean ? b : a));
  const l = get('learned');
  const paired = pairedVs(l.values, best.values);
  return {
    world,
    seeds: [...seeds],
    scenario: { ...scenarioOptions },
    policies,
    bestHeuristic: best.name,
    learnedVsFifo: (get('fifo').mean - l.mean) / get('fifo').mean,
    learnedVsBestHeuristic: (best.mean - l.mean) / best.mean,
    seedsBeatingBestHeuristic: paired.wins,
    pairedDiffS: { mean: paired.mean, stdErr: paired.stdErr },
  };
}

const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;

export function worldMarkdown(r: WorldResult): string {
  const lines = [
    `### ${r.world} world: TPC-H, ${r.scenario.jobs} jobs, ${r.scenario.workers} workers, ` +
      `load ${r.scenario.load}, seeds ${r.seeds.join(', ')}`,
    '',
    '| policy | mean JCT (s) | std | min | max | jobs given up (mean) |',
    '|---|---:|---:|---:|---:|---:|',
    ...[...r.policies]
      .sort((a, b) => a.mean - b.mean)
      .map(
        (p) =>
          `| ${p.name} | ${p.mean.toFixed(2)} | ${p.std.toFixed(2)} | ${p.min.toFixed(2)} | ` +
          `${p.max.toFixed(2)} | ${p.jobsFailed.toFixed(1)} |`,
      ),
    '',
    `Learned vs FIFO: ${pct(r.learnedVsFifo)} lower mean JCT; vs the best heuristic ` +
      `(${r.bestHeuristic}): ${pct(r.learnedVsBestHeuristic)}; below it on ` +
      `${r.seedsBeatingBestHeuristic} of ${r.seeds.length} seeds; paired difference ` +
      `${r.pairedDiffS.mean.toFixed(2)} ± ${r.pairedDiffS.stdErr.toFixed(2)} s (mean ± s.e.).`,
  ];
  return lines.join('\n');
}
