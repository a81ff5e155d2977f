// The scheduler experiment on a jobs trace (default: TPC-H query DAGs from Decima, drawn per
// workload seed with Poisson arrivals at 85% offered load, on 25 one-core workers).
//
// 1. scheduler-knobs: tune the scheduler's knobs (policy, speculation and its threshold, retry
//    limit and backoff, dispatch batch) for mean job completion time, in the simulated world of
//    envs/scheduler (stragglers, transient failures, a dispatcher with a round-trip cost).
//    Baselines: each heuristic policy with every other knob at its default. A TPC-H draw here
//    has 30 jobs (same cluster, same load): a TPC-H job averages ~1,150 tasks, and the
//    exhaustive grid alone is ~1,000 simulations, so this halves the experiment's time.
// 2. scheduler-policies: the heuristics and the learned scheduling policy (learners/scheduling:
//    a task scorer cloned from a heuristic, then PPO, model selection on validation, where the
//    teacher's own criterion is a candidate too and, in this world, was kept; its committed
//    artifact, trained with seed 1 on workload seeds from 100,000 on, so these seeds are held
//    out) on fresh workloads, one per seed (60 TPC-H jobs), in the and Decima's
//    setting: TPC-H at 85% load, where only the order of tasks differs between policies. This is where the learned policy's claims are
//    judged. Its oracle is a lower bound on mean JCT that no policy can beat (envs/scheduler/
//    bound.ts): the gap of the best heuristic to it caps what any policy could still gain.
// 3. scheduler-policies-moving: the heuristics and the policy learned in the 'moving' world
//    (learners/scheduling/evaluate.ts), on 50 workloads of its own (the first 5 are the other
//    studies' workloads): the same kind of workloads where a worker moving to another job
//    first spends Decima's simulator's moving delay (2 s): what Decima's margins were measured
//    with. The heuristics do not look at where workers are; the learned scorer sees, per task,
//    how many free workers are already on its job, and so does one more baseline here, SRPT
//    with those jobs first (a move-aware one-liner, not a registry policy): the bar a learned
//    policy should clear in this world. The lower bound ignores moves (still a bound).
// 4. scheduler-policies-faults: the same entries in the knob objective's world at default knobs
//    (stragglers, transient failures with retry limit 3, dispatch cost). There a fifth of the jobs
//    are given up after their retry limit and charged until the end of the run under every
//    policy, which dominates the mean and compresses every gap between policies; it is reported
//    for context, without claims.
import { meanJctLowerBound, schedulerObjective } from '../../envs/scheduler/index.ts';
import { SCHEDULER_POLICIES } from '../../knobs/index.ts';
import { EVAL_SEEDS, runPolicy, type World } from '../../learners/scheduling/evaluate.ts';
import {
  TRAINED_MOVING_SCHEDULER_FILE,
  TRAINED_SCHEDULER_FILE,
  trainedSchedulingPolicy,
} from '../../learners/scheduling/policy.ts';
import { createSchedulingPolicy, srptWarmFirst } from '../../policies/scheduling/index.ts';
import type { EntrySpec, ExperimentSpec, JobsScenario, RunContext } from '../spec.ts';
import { HELD_OUT_TUNER_CLAIMS, STANDARD_TUNERS, TUNER_CLAIMS } from './tuners.ts';

/** TPC-H jobs per workload draw in the knob-tuning study (the policy study draws 60). */
export const KNOB_STUDY_JOBS = 30;

/** The run's offered load in titles: "85% load" at the default. */
const atLoad = (ctx: RunContext) => `${Number((ctx.load * 100).toFixed(1))}% load`;

const objectiveOf = (w: JobsScenario) => schedulerObjective({ scenario: w.scenario });

/**
 * Every heuristic and a committed learned policy (by default the one trained in the clean
 * world), each run on the workload of each seed.
 */
function policyEntries(world: World, artifact = TRAINED_SCHEDULER_FILE): EntrySpec<JobsScenario>[] {
  return [
    ...SCHEDULER_POLICIES.map((policy): EntrySpec<JobsScenario> => ({
      name: policy,
      kind: 'baseline',
      run: (w, seed) => runPolicy(createSchedulingPolicy(policy), w.scenario, seed, world),
    })),
    {
      name: 'learned',
      kind: 'learner',
      run: (w, seed) => runPolicy(trainedSchedulingPolicy(artifact), w.scenario, seed, world),
    },
  ];
}

/**
 * How much worse than the other entry (relative) still counts as "no worse": the paired 95%
 * interval of the improvement must lie above -1%.
 */
export const NO_WORSE_MARGIN = 0.01;

/** The bar: 20% better than FIFO, no worse than the best heuristic; the aim is
 * Decima's margin, 20% better than the best heuristic. `priority` is FIFO on TPC-H (every job
 * has priority 0, and ties go to the earliest arrival), so "the best of" is of 5 distinct
 * heuristics there; the claim's text says so. */
const LEARNED_CLAIMS = [
  { type: 'improves-on', entry: 'learned', reference: 'fifo', by: 0.2 },
  {
    type: 'beats-best-of',
    entry: 'learned',
    others: SCHEDULER_POLICIES,
    by: 0,
    margin: NO_WORSE_MARGIN,
  },
  { type: 'beats-best-of', entry: 'learned', others: SCHEDULER_POLICIES, by: 0.2 },
] as const;

/** Why two of the heuristics give the same numbers in every study here. */
const PRIORITY_IS_FIFO =
  '`priority` is `fifo` on TPC-H: every job has priority 0 and ties fall back to FIFO order.';

/** The move-aware one-liner of the moving world (the claim: the learned policy is no worse). */
const WARM_FIRST = 'srpt_warm_first';
const warmFirstEntry: EntrySpec<JobsScenario> = {
  name: WARM_FIRST,
  kind: 'baseline',
  run: (w, seed) => runPolicy(srptWarmFirst(), w.scenario, seed, 'moving'),
};

/** No policy's mean JCT on a seed's workload is below this (the clean world's oracle). */
const lowerBoundEntry: EntrySpec<JobsScenario> = {
  name: 'lower-bound',
  kind: 'oracle',
  run: (w, seed) => {
    const { workload, workers } = w.scenario(seed);
    return { mean_jct_s: meanJctLowerBound(workload, workers) };
  },
};

export const schedulerExperiment: ExperimentSpec<JobsScenario> = {
  name: 'scheduler',
  title: (ctx) =>
    `Scheduler: knob tuning on TPC-H at ${atLoad(ctx)}; heuristic and learned policies`,
  workload: {
    kind: 'jobs',
    default: { path: '../shared/traces/jobs/tpch_stages.csv', format: 'tpch' },
    description:
      'TPC-H DAGs drawn per workload seed (60 jobs; 30 in the knob study), Poisson arrivals ' +
      'rescaled to the offered load, on 25 one-core workers; a fixed jobs trace is replayed ' +
      'as is, rescaled to the load',
    load: (t) => {
      if (t?.kind !== 'jobs') throw new RangeError('scheduler experiment: needs a jobs trace');
      return t.jobs;
    },
  },
  defaults: { seeds: 5, budget: 50 },
  quick: { seeds: 2, budget: 8 },
  studies: [
    {
      type: 'tuning',
      name: 'scheduler-knobs',
      title: (ctx) => `Scheduler knobs on TPC-H at ${atLoad(ctx)} (30-job draws)`,
      unit: 's',
      note:
        'Mean job completion time of the jobs of one workload draw; lost jobs count until the end. ' +
        PRIORITY_IS_FIFO,
      objective: (w) => objectiveOf(w.withJobs?.(KNOB_STUDY_JOBS) ?? w),
      // The metric spans orders of magnitude across the space: tuners see its log.
      tunerScale: 'log',
      trainSeeds: [1001],
      testSeeds: [2001, 2002, 2003],
      baselines: SCHEDULER_POLICIES.map((p) => ({ name: p, values: { 'scheduler.policy': p } })),
      learners: STANDARD_TUNERS,
      oracle: { type: 'grid', pointsPerNumeric: 3, quickPointsPerNumeric: 1 },
      comparisons: [...TUNER_CLAIMS, ...HELD_OUT_TUNER_CLAIMS],
    },
    {
      type: 'comparison',
      name: 'scheduler-policies',
      title: (ctx) =>
        `Heuristic and learned scheduling policies on TPC-H at ${atLoad(ctx)}, one workload per seed`,
      metric: 'mean_jct_s',
      direction: 'min',
      unit: 's',
      note:
        "Decima's setting: the work as the trace gives it (no stragglers, failures or dispatch " +
        'cost), so only the order in which tasks run differs between policies. The oracle is a ' +
        'lower bound no policy can beat (per job: its critical path; all jobs: the cluster as ' +
        "one preemptive SRPT machine), so an entry's gap to it caps what any policy could gain. " +
        PRIORITY_IS_FIFO,
      entries: [...policyEntries('clean'), lowerBoundEntry],
      comparisons: [...LEARNED_CLAIMS],
    },
    {
      type: 'comparison',
      name: 'scheduler-policies-moving',
      title:
        "The same workloads with Decima's moving delay: a worker moving to another job spends 2 s",
      metric: 'mean_jct_s',
      direction: 'min',
      unit: 's',
      note:
        "The setting of Decima's simulator, whose `moving_delay` (2,000 ms by default) a worker " +
        "spends before it runs a task of a job other than its last task's; a task given to a " +
        'worker on another job runs on a free worker already on its job when there is one. ' +
        'The heuristics ignore where workers are; the learned policy here was trained in this ' +
        'world (`learners/scheduling/train.ts --world moving`) and sees, per task, the free ' +
        'workers already on its job. So does `srpt_warm_first`, SRPT with the jobs a free ' +
        'worker is already on first: a hand-written one-liner, not a registry policy. The lower ' +
        'bound ignores moves, so it is looser here. ' +
        PRIORITY_IS_FIFO,
      // 50 workloads, not the experiment's 5: the learned policy and the one-liner differ by
      // workload a lot in this world (evaluate.ts EVAL_SEEDS); a run costs 0.1-5 s.
      seeds: EVAL_SEEDS.moving,
      entries: [
        ...policyEntries('moving', TRAINED_MOVING_SCHEDULER_FILE),
        warmFirstEntry,
        lowerBoundEntry,
      ],
      comparisons: [
        ...LEARNED_CLAIMS,
        {
          type: 'beats-best-of',
          entry: 'learned',
          others: [WARM_FIRST],
          by: 0,
          margin: NO_WORSE_MARGIN,
        },
      ],
    },
    {
      type: 'comparison',
      name: 'scheduler-policies-faults',
      title: 'The same policies with stragglers, failures and dispatch cost, at default knobs',
      metric: 'mean_jct_s',
      direction: 'min',
      unit: 's',
      note:
        "The knob objective's world at default knobs (retry limit 3, no speculation): about a " +
        'fifth of the jobs are given up and charged until the end of the run under every ' +
        'policy (`jobs_failed`), which compresses the gaps between policies. For context; ' +
        'no claims.',
      entries: policyEntries('objective'),
      comparisons: [],
    },
  ],
};
