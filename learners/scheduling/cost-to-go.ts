// Counterfactual deviations from a policy, on forks of the scheduling env: at a decision, each
// job's task is taken in a fork and the policy decides from there; the job-seconds that follow
// are that choice's cost-to-go under the policy (AggreVaTe's labels, Ross & Bagnell 2014). The
// simulator is deterministic, so the forks share every arrival and duration and a difference
// is exact. `deviations.ts` uses it to ask whether a single deviation from SRPT towards a job a
// free worker is already on pays in the moving world (it barely does: the benefit needs a
// policy that keeps workers on their jobs at every decision, which is why the scheduler's
// training searches whole policies, search.ts).
import { TASK_FEATURES, TASK_FEATURE_NAMES } from '../../policies/scheduling/index.ts';
import type { SchedulerEnv } from '../../envs/scheduler/index.ts';
import { countLegal, type Actor } from './episode.ts';

const column = (name: (typeof TASK_FEATURE_NAMES)[number]) => TASK_FEATURE_NAMES.indexOf(name);
const JOB_AGE = column('job_age_log_s');
const WARM = column('job_free_workers_log');

const at = (rows: ArrayLike<number>, i: number, col: number) =>
  rows[i * TASK_FEATURES + col] as number;

/** One candidate per job: the first (oldest) of each, keyed by the job's age feature. */
export function jobRepresentatives(rows: ArrayLike<number>, count: number): number[] {
  const seen = new Set<number>();
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const age = at(rows, i, JOB_AGE);
    if (!seen.has(age)) {
      seen.add(age);
      out.push(i);
    }
  }
  return out;
}

/**
 * Job-seconds from taking `action` at `env`'s decision (at simulated `nowMs`), then following
 * `base` for `horizonMs` (null: to the end of the episode), in a fork: `env` is left as it was.
 */
export function costToGo(
  env: SchedulerEnv,
  nowMs: number,
  action: number,
  base: Actor,
  horizonMs: number | null,
): number {
  const fork = env.fork();
  const end = horizonMs === null ? Infinity : nowMs + horizonMs;
  let r = fork.step(action);
  let cost = -r.reward;
  while (!r.terminated && !r.truncated && (r.info['nowMs'] as number) < end) {
    r = fork.step(base(r.obs, countLegal(r.info['actionMask'])).action);
    cost -= r.reward;
  }
  return cost;
}

export interface DeviationCounts {
  /** Decisions examined: `base`'s job has no free worker on it and another job has one. */
  decisions: number;
  /** ... where the least cost-to-go is such a warm job. */
  warmBest: number;
  /** ... where, besides, `base`'s own choice costs more than the tolerance above it. */
  warmBetter: number;
  /** Mean over the decisions of `base`'s cost-to-go minus the least, job-seconds. */
  meanGapS: number;
}

/** `base`'s job has no free worker on it while another job in the window has one. */
function coldChoice(rows: ArrayLike<number>, count: number, a: number): number[] | null {
  if (count < 2 || at(rows, a, WARM) > 0) return null;
  const reps = jobRepresentatives(rows, count);
  return reps.some((r) => at(rows, r, WARM) > 0) ? reps : null;
}

/** Runs `base` on the episode of `seed`, calling `visit` at each decision. */
function follow(
  env: SchedulerEnv,
  seed: number,
  base: Actor,
  visit: (obs: Float64Array, count: number, a: number, nowMs: number) => void,
): void {
  let { obs, info } = env.reset({ seed });
  for (;;) {
    const count = countLegal(info['actionMask']);
    const a = base(obs, count).action;
    visit(obs, count, a, info['nowMs'] as number);
    const r = env.step(a);
    if (r.terminated || r.truncated) return;
    ({ obs, info } = r);
  }
}

/**
 * Runs `base` on the env's episode for `seed` and, at `decisions` of the decisions where its job
 * has no free worker on it while another job in the window has one (evenly spaced over the
 * episode), compares every job's cost-to-go under `base` for each horizon.
 */
export function warmDeviations(
  env: SchedulerEnv,
  seed: number,
  base: Actor,
  horizonsMs: readonly (number | null)[],
  o: { decisions: number; toleranceS: number },
): { cold: number; byHorizon: DeviationCounts[] } {
  let cold = 0;
  follow(env, seed, base, (obs, count, a) => {
    if (coldChoice(obs, count, a)) cold++;
  });
  const stride = Math.max(1, Math.floor(cold / o.decisions));
  const byHorizon = horizonsMs.map(() => ({
    decisions: 0,
    warmBest: 0,
    warmBetter: 0,
    meanGapS: 0,
  }));
  let k = 0;
  follow(env, seed, base, (obs, count, a, nowMs) => {
    const reps = coldChoice(obs, count, a);
    if (!reps || k++ % stride !== 0 || (byHorizon[0] as DeviationCounts).decisions >= o.decisions) {
      return;
    }
    const baseRep = reps.indexOf(
      reps.find((r) => at(obs, r, JOB_AGE) === at(obs, a, JOB_AGE)) as number,
    );
    horizonsMs.forEach((h, j) => {
      const costs = reps.map((r) => costToGo(env, nowMs, r, base, h));
      const least = Math.min(...costs);
      const warmBest = at(obs, reps[costs.indexOf(least)] as number, WARM) > 0;
      const gap = (costs[baseRep] as number) - least;
      const c = byHorizon[j] as DeviationCounts;
      c.decisions++;
      if (warmBest) c.warmBest++;
      if (warmBest && gap > o.toleranceS) c.warmBetter++;
      c.meanGapS += gap;
    });
  });
  for (const c of byHorizon) c.meanGapS /= Math.max(1, c.decisions);
  return { cold, byHorizon };
}
