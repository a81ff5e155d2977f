// Trains the learned scheduler from a seed, writes its artifact, and evaluates it against the
// heuristics on held-out TPC-H workloads (60 jobs, 25 workers, 85% load). `--world clean` (the
// default) trains on the work as given and evaluates there and in the knob objective's world
// (stragglers, failures, dispatch cost); `--world moving` trains where a worker moving to
// another job pays Decima's moving delay, and evaluates there and in the clean world.
//
//   npx tsx learners/scheduling/train.ts --seed 1 [--world clean|moving] [--json] [--quick]
//        [--eval-seeds N] [--artifact learners/scheduling/trained/tpch-scorer.json]
//        [--results experiments/results/learned-scheduler] [--eval-only]
//
// Progress goes to stderr; with --json the last stdout line is one JSON object. --eval-only
// skips training and evaluates the artifact as it is. Training workloads use seeds from
// 100000 and validation from 200001, so evaluation seeds 1..N are never trained on.
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
  seedSpan,
  trainingRecord,
  trainOutputs,
  worldArg,
} from '../core/script.ts';
import { TASK_FEATURE_NAMES } from '../../policies/scheduling/index.ts';
import { loadTfBackend } from '../tf/backend.ts';
import { scorerArtifact, writeArtifactFile } from './artifact.ts';
import type { SchedulerTrainConfig } from './config.ts';
import { evaluateWorld, worldMarkdown, type WorldResult } from './report.ts';
import { EVAL_SEEDS, type World } from './evaluate.ts';
import {
  TASK_SCORER_KIND,
  TRAINED_MOVING_SCHEDULER_FILE,
  TRAINED_SCHEDULER_FILE,
  loadTaskScorerArtifact,
  taskScorerPolicy,
} from './policy.ts';
import { EVAL_SCENARIO, sharedTpchDags, tpchScenario } from './scenario.ts';
import { trainScheduler, type SchedulerTrainResult } from './trainer.ts';

/** A smoke-sized run (seconds, not minutes): for checking the pipeline, not for results. */
const QUICK: Partial<SchedulerTrainConfig> = {
  jobs: 8,
  bcRounds: 1,
  bcEpisodesPerRound: 1,
  decisionsPerEpisode: 500,
  bcEpochs: 2,
  ppoIterations: 1,
  rolloutsPerIteration: 2,
  validationSeeds: [200_001],
  validationJobs: 10,
  searchPopulation: 4,
  searchSeeds: 1,
  searchJobs: 8,
};

// Per training world: its settings over the defaults, where its artifact and results go, and
// the worlds it is evaluated in. In the moving world, validation uses 60-job workloads, as the
// evaluation does (with 30 the cluster is rarely congested enough for moves to matter), and 10
// of them, as do the search's 6 per candidate: policies there differ by workload so much that
// a few workloads rank them unreliably (evaluate.ts EVAL_SEEDS).
const WORLD_RUNS = {
  clean: {
    config: {},
    artifact: TRAINED_SCHEDULER_FILE,
    results: 'experiments/results/learned-scheduler',
    evaluated: ['clean', 'objective'],
  },
  moving: {
    config: {
      searchGenerations: 32,
      searchSeeds: 6,
      validationJobs: 60,
      validationSeeds: Array.from({ length: 10 }, (_, i) => 200_001 + i),
    },
    artifact: TRAINED_MOVING_SCHEDULER_FILE,
    results: 'experiments/results/learned-scheduler/moving',
    evaluated: ['moving', 'clean'],
  },
} as const satisfies Record<
  string,
  {
    config: Partial<SchedulerTrainConfig>;
    artifact: string;
    results: string;
    evaluated: World[];
  }
>;

const args = parseTrainArgs();
const world = worldArg(args.world, ['clean', 'moving'] as const);
const run = WORLD_RUNS[world];
const out = trainOutputs(args, run, `scheduler-${world}`);
const artifactFile = out.artifact;
const started = Date.now();

const log = elapsedLog(started);

async function main(): Promise<void> {
  const seed = intArg('seed', args.seed, 0);
  // A quick run checks the pipeline: a couple of workloads, not the world's full set.
  const evalSeeds = evalSeedList(args['eval-seeds'], args.quick ? 2 : EVAL_SEEDS[world]);
  const backend = await loadTfBackend();
  const dags = sharedTpchDags();

  let training: SchedulerTrainResult | null = null;
  if (!args['eval-only']) {
    const quick = {
      ...QUICK,
      ...('searchGenerations' in run.config ? { searchGenerations: 2 } : {}),
    };
    const config = { seed, world, ...run.config, ...(args.quick ? quick : {}) };
    training = await trainScheduler(config, { dags, log });
    const artifact = scorerArtifact(
      TASK_SCORER_KIND,
      TASK_FEATURE_NAMES,
      training.net,
      training.config,
      {
        selected: training.best.after,
        validationJctS: training.best.cost,
        teacherValidationJctS: training.teacherValidation,
        episodes: training.episodes,
      },
    );
    await writeArtifactFile(artifactFile, artifact);
    log(`artifact written to ${artifactFile} (selected after ${training.best.after})`);
  }
  const loaded = loadTaskScorerArtifact(artifactFile);
  const net = loaded.state.net;
  // From the artifact, so an --eval-only run names the stages its policy went through too.
  const searched = Number((loaded.config as { searchGenerations?: unknown }).searchGenerations) > 0;
  const learned = () => taskScorerPolicy(net);
  const validationSeeds = (loaded.config as { validationSeeds?: number[] }).validationSeeds ?? [];
  const scenario = tpchScenario(dags, EVAL_SCENARIO);
  const worlds: WorldResult[] = run.evaluated.map((w) =>
    evaluateWorld(learned, scenario, EVAL_SCENARIO, evalSeeds, w, log),
  );

  const result = {
    name: 'learned-scheduler',
    metric: 'mean_jct_s',
    direction: 'min',
    artifact: reportedPath(artifactFile),
    world,
    seed,
    training: training && trainingRecord(training, 'teacherValidationJctS'),
    evaluation: worlds,
    ...runFooter(started, backend.name),
  };
  const md = [
    `# Learned scheduler (per-task scorer, BC warm start${searched ? ', linear search' : ''} + PPO) ` +
      `on TPC-H, trained in the ${world} world`,
    '',
    producedBy(`learners/scheduling/train.ts --world ${world}`, seed, args['eval-only']) +
      `Held-out workload seeds; training used seeds from 100000, validation ${seedSpan(validationSeeds)}.`,
    training
      ? `Training: ${training.episodes} episodes, ${training.seconds.total.toFixed(0)} s ` +
        `(BC ${training.seconds.bc.toFixed(0)} s, search ${training.seconds.search.toFixed(0)} s, ` +
        `PPO ${training.seconds.ppo.toFixed(0)} s); ` +
        `checkpoint kept: after ${training.best.after} (validation ${training.best.cost.toFixed(2)} s, ` +
        `teacher ${training.teacherValidation?.toFixed(2) ?? '-'} s).`
      : '',
    '',
    ...worlds.map(worldMarkdown).flatMap((s) => [s, '']),
  ].join('\n');
  emitTrainResult({ folder: out.results, json: args.json, log }, result, md);
}

runScript(main);
