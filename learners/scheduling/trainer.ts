// The learned scheduler as a ScorerTask for the training loop (loop.ts): episodes of the
// scheduling env on short TPC-H workloads, acted by the teacher (an in-window heuristic) or by
// the plain-TS net, and validation by the simulator on held-apart workloads with the net as a
// ScoredPolicy, exactly as it will be deployed.
import type { Rng } from '../../envs/core/index.ts';
import type { TpchDag } from '../../envs/loaders/jobs-tpch.ts';
import { SchedulerEnv } from '../../envs/scheduler/index.ts';
import { TASK_FEATURES, createSchedulingPolicy } from '../../policies/scheduling/index.ts';
import { schedulerTrainConfig, type SchedulerTrainConfig } from './config.ts';
import { DecisionReservoir } from './decisions.ts';
import { chooserActor, runEpisode, scorerActor, type Actor } from './episode.ts';
import { runPolicy, summarise, worldConfig } from './evaluate.ts';
import { trainScorer, type ActorSpec, type ScorerTask, type ScorerTrainResult } from './loop.ts';
import { compileScoreNet, type ScoreNet } from './net.ts';
import { taskScorerPolicy } from './policy.ts';
import { sharedTpchDags, tpchScenario } from './scenario.ts';
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
  const jct = (make: () => ReturnType<typeof taskScorerPolicy>) =>
    summarise(
      c.validationSeeds.map(
        (seed) => runPolicy(make(), validation, seed, world)['mean_jct_s'] as number,
      ),
    ).mean;
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
  };
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
