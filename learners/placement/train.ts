// Trains the learned placement policy from a seed on the generated Zipf-drift workload, writes
// its artifact, and evaluates it against hash and greedy rebalancing on held-out seeds.
//
//   npx tsx learners/placement/train.ts --seed 1 [--json] [--quick] [--eval-seeds 10]
//        [--artifact learners/placement/trained/zipf-move-scorer.json]
//        [--results experiments/results/learned-scheduler/placement] [--eval-only]
//
// Progress goes to stderr; with --json the last stdout line is one JSON object. Training
// workloads use seeds from 100000 and validation 200001-200004; evaluation seeds are 1..N.
import {
  elapsedLog,
  emitTrainResult,
  evalSeedList,
  intArg,
  parseTrainArgs,
  producedBy,
  reportedPath,
  runFooter,
  runScript,
  trainingRecord,
  trainOutputs,
} from '../core/script.ts';
import {
  DEFAULT_PLACEMENT_SIM,
  evaluatePlacementPolicy,
  zipfDriftWorkload,
  type PlacementWorkload,
} from '../../envs/placement/index.ts';
import { greedyPolicy, hashPolicy, type PlacementPolicy } from '../../policies/placement/index.ts';
import { scorerArtifact, writeArtifactFile } from '../scheduling/artifact.ts';
import { summarise, type Summary } from '../scheduling/evaluate.ts';
import { loadTfBackend } from '../tf/backend.ts';
import type { PlacementTrainConfig } from './config.ts';
import { MOVE_FEATURE_NAMES } from './features.ts';
import {
  MOVE_SCORER_KIND,
  TRAINED_PLACEMENT_FILE,
  loadMoveScorerArtifact,
  moveScorerPolicy,
} from './policy.ts';
import { trainPlacement, type PlacementTrainResult } from './trainer.ts';

const QUICK: Partial<PlacementTrainConfig> = {
  bcRounds: 1,
  bcEpisodesPerRound: 1,
  bcEpochs: 2,
  ppoIterations: 2,
  rolloutsPerIteration: 2,
  validateEvery: 1,
  validationSeeds: [200_001],
};

const args = parseTrainArgs();
const out = trainOutputs(
  args,
  { artifact: TRAINED_PLACEMENT_FILE, results: 'experiments/results/learned-scheduler/placement' },
  'placement',
);
const started = Date.now();
const log = elapsedLog(started);

const METRICS = ['objective', 'mean_imbalance', 'migration_cost', 'moves'] as const;

interface Row {
  name: string;
  /** Per metric: its summary over the seeds, and the values in seed order. */
  metrics: Record<(typeof METRICS)[number], Summary & { values: number[] }>;
}

function evaluate(
  makers: Record<string, () => PlacementPolicy>,
  workload: PlacementWorkload,
  seeds: readonly number[],
): Row[] {
  return Object.entries(makers).map(([name, make]) => {
    const runs = seeds.map((s) =>
      evaluatePlacementPolicy(make(), workload, s, DEFAULT_PLACEMENT_SIM),
    );
    log(
      `eval ${workload.id} ${name}: objective ${summarise(runs.map((r) => r['objective'] as number)).mean.toFixed(4)}`,
    );
    const metrics = Object.fromEntries(
      METRICS.map((m) => {
        const values = runs.map((r) => r[m] as number);
        return [m, { ...summarise(values), values }];
      }),
    ) as Row['metrics'];
    return { name, metrics };
  });
}

function table(title: string, rows: readonly Row[]): string {
  const f = (s: Summary, d = 4) => `${s.mean.toFixed(d)} ± ${s.std.toFixed(d)}`;
  const mine = rows.find((r) => r.name === 'learned')?.metrics.objective.values ?? [];
  const wins = rows
    .filter((r) => r.name !== 'learned')
    .map((r) => {
      const below = mine.filter((v, i) => v < (r.metrics.objective.values[i] as number)).length;
      return `${r.name} ${below}/${mine.length}`;
    });
  return [
    `### ${title}`,
    '',
    '| policy | objective | mean imbalance | migration cost | moves |',
    '|---|---:|---:|---:|---:|',
    ...[...rows]
      .sort((a, b) => a.metrics.objective.mean - b.metrics.objective.mean)
      .map(
        (r) =>
          `| ${r.name} | ${f(r.metrics.objective)} | ${f(r.metrics.mean_imbalance)} | ` +
          `${f(r.metrics.migration_cost, 2)} | ${f(r.metrics.moves, 1)} |`,
      ),
    '',
    `Seeds where the learned policy's objective is below (paired): ${wins.join(', ')}.`,
  ].join('\n');
}

async function main(): Promise<void> {
  if (args.world !== undefined) throw new RangeError('--world is not an option of this script');
  const seed = intArg('seed', args.seed, 0);
  const seeds = evalSeedList(args['eval-seeds']);
  const backend = await loadTfBackend();
  const workload = zipfDriftWorkload();
  let training: PlacementTrainResult | null = null;
  if (!args['eval-only']) {
    training = await trainPlacement(workload, { seed, ...(args.quick ? QUICK : {}) }, log);
    const artifact = scorerArtifact(
      MOVE_SCORER_KIND,
      MOVE_FEATURE_NAMES,
      training.net,
      training.config,
      {
        workload: workload.id,
        selected: training.best.after,
        validationObjective: training.best.cost,
        teacherValidationObjective: training.teacherValidation,
        episodes: training.episodes,
      },
    );
    await writeArtifactFile(out.artifact, artifact);
    log(`artifact written to ${out.artifact} (selected after ${training.best.after})`);
  }
  const net = loadMoveScorerArtifact(out.artifact).state.net;
  const makers: Record<string, () => PlacementPolicy> = {
    learned: () => moveScorerPolicy(net),
    hash: hashPolicy,
    greedy: () => greedyPolicy(),
    'greedy-payback2': () => greedyPolicy({ paybackIntervals: 2 }),
    'greedy-payback4': () => greedyPolicy({ paybackIntervals: 4 }),
  };
  // The training workload, and the experiment's quick one (fewer tenants, shorter): the scorer
  // reads ratios, so it runs unchanged on another group count.
  const small = zipfDriftWorkload({ groups: 12, steps: 40 });
  const results = [
    { workload: workload.id, rows: evaluate(makers, workload, seeds) },
    { workload: small.id, rows: evaluate(makers, small, seeds) },
  ];
  const result = {
    name: 'learned-placement',
    metric: 'objective',
    direction: 'min',
    artifact: reportedPath(out.artifact),
    seed,
    seeds,
    training: training && trainingRecord(training, 'teacherValidation'),
    evaluation: results,
    ...runFooter(started, backend.name),
  };
  const md = [
    '# Learned placement (per-move scorer, BC from greedy + PPO)',
    '',
    producedBy('learners/placement/train.ts', seed, args['eval-only']) +
      `Objective per interval: imbalance (max/mean - 1) + migration cost (0.05 per GiB); mean ± std over held-out seeds ${seeds.join(', ')}.`,
    training
      ? `Training: ${training.episodes} episodes in ${training.seconds.total.toFixed(0)} s; ` +
        `checkpoint kept after ${training.best.after} (validation ${training.best.cost.toFixed(4)}, ` +
        `greedy teacher ${training.teacherValidation?.toFixed(4) ?? '-'}).`
      : '',
    '',
    ...results.flatMap((r) => [table(r.workload, r.rows), '']),
  ].join('\n');
  emitTrainResult({ folder: out.results, json: args.json, log }, result, md);
}

runScript(main);
