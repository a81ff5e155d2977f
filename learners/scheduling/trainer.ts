// The learned scheduler as a ScorerTask for the training loop (loop.ts): episodes of the
// scheduling env on short TPC-H workloads, acted by the teacher (an in-window heuristic) or by
// the plain-TS net, and validation by the simulator on held-apart workloads with the net as a
// ScoredPolicy, exactly as it will be deployed.
import type { Rng } from '../../envs/core/index.ts';
import type { TpchDag } from '../../envs/loaders/jobs-tpch.ts';
import { SchedulerEnv } from '../../envs/scheduler/index.ts';
import {
  TASK_FEATURES,
  createSchedulingPolicy,
  type SchedulingPolicy,
} from '../../policies/scheduling/index.ts';
import { schedulerTrainConfig, type SchedulerTrainConfig } from './config.ts';
import { DecisionReservoir } from './decisions.ts';
import { chooserActor, runEpisode, scorerActor, type Actor } from './episode.ts';
import { comparePolicies, worldConfig, type PolicyScores, type World } from './evaluate.ts';
import { trainScorer, type ActorSpec, type ScorerTask, type ScorerTrainResult } from './loop.ts';
import { compileScoreNet, type ScoreNet } from './net.ts';
import { taskScorerPolicy } from './policy.ts';
import { sharedTpchDags, tpchScenario, type Scenario } from './scenario.ts';
import { criterionWeights, exactTeacher, teacher, teacherChooser } from './teacher.ts';

export interface SchedulerTrainResult extends ScorerTrainResult {
  config: SchedulerTrainConfig;
}

export interface TrainOptions {
  dags?: readonly TpchDag[];
  /** Progress lines (the CLI sends them to stderr). */
  log?: (line: string) => void;
}

export function schedulerTask(c: SchedulerTrainConfig, dags: readonly TpchDag[]): ScorerTask {
  const world = c.world;
  const env = new SchedulerEnv({
    window: c.window,
    scenario: tpchScenario(dags, { jobs: c.jobs, workers: c.workers, load: c.load }),
    config: worldConfig(world, 0), // the env sets each episode's seed
  });
  const validation = tpchScenario(dags, {
    jobs: c.validationJobs,
    workers: c.workers,
    load: c.load,
  });
  const jct = (make: () => SchedulingPolicy) => meanJct(make, validation, c.validationSeeds, world);
  const name = c.teacher;
  const label = name === null ? undefined : c.cloneTies ? teacher(name) : exactTeacher(name);
  const actorOf = (a: ActorSpec, rng: Rng | null): Actor => {
    if (a.kind === 'net') return scorerActor(compileScoreNet(a.net), a.rng ?? rng, c.window);
    if (name === null) return chooserActor(() => 0); // no teacher: FIFO, only for statistics
    return chooserActor(teacherChooser(name, c.window));
  };
  return {
    rowSize: TASK_FEATURES,
    costName: 'mean JCT (s)',
    episode(seed, actor, o) {
      const reservoir = new DecisionReservoir(o.keep, o.rng);
      const rec = runEpisode(env, seed, actorOf(actor, null), {
        reservoir,
        ...(o.label && label ? { label } : {}),
      });
      return { trace: rec, kept: reservoir.kept, cost: rec.jobTimeS / c.jobs };
    },
    validate: (net: ScoreNet) => jct(() => taskScorerPolicy(net)),
    teacherValidation: () => (name === null ? null : jct(() => createSchedulingPolicy(name))),
    prior: name !== null && c.priorWeight > 0 ? criterionWeights(name, c.priorWeight) : null,
    ...(name !== null && c.keepTeacher ? { criterion: criterionWeights(name, 1) } : {}),
    ...(name !== null && c.searchGenerations > 0 ? { search: linearSearch(c, name, dags) } : {}),
  };
}

/** The search over the linear path: whole policies on training workloads of `searchJobs`. */
function linearSearch(
  c: SchedulerTrainConfig,
  teacherName: string,
  dags: readonly TpchDag[],
): NonNullable<ScorerTask['search']> {
  const scenario = tpchScenario(dags, { jobs: c.searchJobs, workers: c.workers, load: c.load });
  return {
    generations: c.searchGenerations,
    population: c.searchPopulation,
    seedsPerGeneration: c.searchSeeds,
    centre: criterionWeights(teacherName, 1),
    radius: c.searchRadius,
    cost: (net, seeds) => meanJct(() => taskScorerPolicy(net), scenario, seeds, c.world),
  };
}

/** Mean over `seeds` of the mean JCT (s) of a fresh `make()` on each seed's workload. */
function meanJct(
  make: () => SchedulingPolicy,
  scenario: Scenario,
  seeds: readonly number[],
  world: World,
): number {
  return (comparePolicies({ policy: make }, scenario, seeds, world)[0] as PolicyScores).mean;
}

export async function trainScheduler(
  partial: Partial<SchedulerTrainConfig> = {},
  opts: TrainOptions = {},
): Promise<SchedulerTrainResult> {
  const c = schedulerTrainConfig(partial);
  const rounds = c.teacher === null ? { bcRounds: 0 } : {};
  const task = schedulerTask(c, opts.dags ?? sharedTpchDags());
  const horizonMs = c.horizonS === null ? null : c.horizonS * 1000;
  const r = await trainScorer(task, { ...c, ...rounds }, horizonMs, opts.log);
  return { ...r, config: c };
}
