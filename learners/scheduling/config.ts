// Every hyperparameter of the learned scheduler's training in one typed, documented config,
// saved in the artifact. Defaults are sized for "minutes on 2 shared cores": short TPC-H
// episodes, a behaviour-cloning warm start from the best heuristic, then a few PPO iterations.
import { checkField, checkOneOf } from '../tf/config.ts';
import { LearnerConfigError } from '../tf/errors.ts';
import { checkLoopConfig, type ScorerLoopConfig } from './loop-config.ts';
import { WORLDS, type World } from './evaluate.ts';
import { TEACHER_NAMES, type TeacherName } from './teacher.ts';

export interface SchedulerTrainConfig extends ScorerLoopConfig {
  /** The simulated world of training episodes and validation (evaluate.ts). */
  world: World;
  /** Candidates the env offers per decision (its oldest runnable tasks that fit). */
  window: number;
  /** Training episodes: TPC-H jobs per episode, workers, offered load. */
  jobs: number;
  workers: number;
  load: number;
  /** Behaviour cloning teacher (an in-window heuristic), or null to start from scratch. */
  teacher: TeacherName | null;
  /**
   * Clone the teacher's criterion only (any of its tied first choices is right) rather than its
   * exact choice (ties broken FIFO, as the heuristic does).
   */
  cloneTies: boolean;
  /**
   * Start the scorer's linear path at the teacher's criterion with this weight (per standard
   * deviation of its feature); 0 starts it at zero. Trained like every other weight.
   */
  priorWeight: number;
  /** Discount of the return in simulated time, s (null: none, Decima's choice). */
  horizonS: number | null;
  /**
   * Generations of the search over the linear path after cloning (search.ts; 0: none): the
   * cross-entropy method in a box of half-width `searchRadius` around the teacher's criterion
   * (weight 1 on its standardised feature; only the weights' ratios matter to the ranking),
   * each candidate scored as a policy on `searchSeeds` training workloads of `searchJobs` jobs.
   */
  searchGenerations: number;
  searchPopulation: number;
  searchSeeds: number;
  searchJobs: number;
  searchRadius: number;
  /** Workload seeds of validation (model selection); the checkpoint kept is the best there. */
  validationSeeds: number[];
  validationJobs: number;
  /**
   * The teacher's criterion (as a linear net) is a candidate of model selection too, so a run
   * that finds nothing better keeps the teacher. Off: what training itself found.
   */
  keepTeacher: boolean;
}

export const SCHEDULER_TRAIN_DEFAULTS: Readonly<SchedulerTrainConfig> = Object.freeze({
  seed: 1,
  hiddenSizes: [64, 32],
  activation: 'relu',
  trainSeedBase: 100_000,
  bcRounds: 3,
  bcEpisodesPerRound: 2,
  decisionsPerEpisode: 3_000,
  bcEpochs: 8,
  bcLearningRate: 3e-3,
  ppoIterations: 12,
  rolloutsPerIteration: 4,
  ppoLearningRate: 3e-4,
  ppoEpochs: 4,
  minibatchSize: 512,
  clipCoef: 0.2,
  entCoef: 0.003,
  targetKl: 0.02,
  maxGradNorm: 0.5,
  validateEvery: 3,
  world: 'clean',
  window: 32,
  jobs: 20,
  workers: 25,
  load: 0.85,
  teacher: 'srpt',
  cloneTies: false,
  priorWeight: 0,
  horizonS: null,
  searchGenerations: 0,
  searchPopulation: 16,
  searchSeeds: 3,
  searchJobs: 60,
  searchRadius: 3,
  validationSeeds: [200_001, 200_002, 200_003],
  validationJobs: 30,
  keepTeacher: true,
});

/** Defaults overlaid with `partial`, each field checked; throws LearnerConfigError. */
export function schedulerTrainConfig(
  partial: Partial<SchedulerTrainConfig> = {},
): SchedulerTrainConfig {
  const c: SchedulerTrainConfig = {
    ...SCHEDULER_TRAIN_DEFAULTS,
    ...partial,
    hiddenSizes: [...(partial.hiddenSizes ?? SCHEDULER_TRAIN_DEFAULTS.hiddenSizes)],
    validationSeeds: [...(partial.validationSeeds ?? SCHEDULER_TRAIN_DEFAULTS.validationSeeds)],
  };
  const L = 'scheduler';
  checkLoopConfig(L, c);
  checkOneOf(L, 'world', c.world, WORLDS);
  checkField(L, 'window', c.window, 'integer>=1', 256);
  checkField(L, 'jobs', c.jobs, 'integer>=1', 1_000);
  checkField(L, 'workers', c.workers, 'integer>=1', 1_000);
  checkField(L, 'load', c.load, '>0');
  if (c.teacher !== null) checkOneOf(L, 'teacher', c.teacher, TEACHER_NAMES);
  checkOneOf(L, 'cloneTies', c.cloneTies, [true, false]);
  checkField(L, 'priorWeight', c.priorWeight, '>=0');
  checkOneOf(L, 'keepTeacher', c.keepTeacher, [true, false]);
  if (c.horizonS !== null) checkField(L, 'horizonS', c.horizonS, '>0');
  checkField(L, 'searchGenerations', c.searchGenerations, 'integer>=0', 1_000);
  if (c.searchGenerations > 0 && c.teacher === null) {
    throw new LearnerConfigError(
      'searchGenerations',
      'teacher',
      `${L}.searchGenerations must be 0 without a teacher (the search is centred on its criterion), got ${c.searchGenerations}`,
    );
  }
  checkField(L, 'searchPopulation', c.searchPopulation, 'integer>=2', 1_000);
  checkField(L, 'searchSeeds', c.searchSeeds, 'integer>=1', 100);
  checkField(L, 'searchJobs', c.searchJobs, 'integer>=1', 1_000);
  checkField(L, 'searchRadius', c.searchRadius, '>0');
  if (c.validationSeeds.length === 0 || !c.validationSeeds.every((s) => Number.isInteger(s))) {
    throw new LearnerConfigError(
      'validationSeeds',
      'list',
      `${L}.validationSeeds must be a non-empty list of integers, got ${JSON.stringify(c.validationSeeds)}`,
    );
  }
  checkField(L, 'validationJobs', c.validationJobs, 'integer>=1', 1_000);
  return c;
}
