// One episode of the scheduling env, decided by a chooser over the window's feature rows, with
// the trace the advantages need (each decision's simulated time and the reward after it) and
// a bounded sample of the decisions themselves. Acting runs the plain-TS net (net.ts), not
// TF.js: an episode is tens of thousands of tiny decisions, where TF.js's per-call overhead
// would cost more than the simulation.
import { TASK_FEATURES } from '../../policies/scheduling/index.ts';
import type { Rng } from '../../envs/core/index.ts';
import type { SchedulerEnv } from '../../envs/scheduler/index.ts';
import type { EpisodeTrace } from './advantage.ts';
import { DecisionReservoir, argmaxScore, sampleSoftmax, type Decision } from './decisions.ts';
import type { RowScorer } from './net.ts';
import type { WindowChooser, WindowTeacher } from './teacher.ts';

/** A choice and log pi(choice); choosers that are not stochastic report 0. */
export interface Choice {
  action: number;
  logProb: number;
}

export type Actor = (rows: ArrayLike<number>, count: number) => Choice;

/** Acts by softmax sampling of the scores (training) or by the top score (evaluation). */
export function scorerActor(score: RowScorer, rng: Rng | null, width: number): Actor {
  const scores = new Float64Array(width);
  return (rows, count) => {
    for (let i = 0; i < count; i++) scores[i] = score(rows, i * TASK_FEATURES);
    return rng === null
      ? { action: argmaxScore(scores, count), logProb: 0 }
      : sampleSoftmax(scores, count, rng);
  };
}

export function chooserActor(choose: WindowChooser): Actor {
  return (rows, count) => ({ action: choose(rows, count), logProb: 0 });
}

export interface EpisodeOptions {
  /** Keeps a sample of the decisions with at least two candidates. */
  reservoir?: DecisionReservoir;
  /** Labels each decision with this teacher's choices instead of the actor's (DAgger). */
  label?: WindowTeacher;
  /** Bound on steps (the env's own bound applies too). */
  maxSteps?: number;
}

export interface EpisodeRecord extends EpisodeTrace {
  /** Sum of the job times of the episode, s (minus the return). */
  jobTimeS: number;
  steps: number;
  /** The env ended the episode (all jobs done) rather than a step bound. */
  terminated: boolean;
}

export function countLegal(mask: unknown): number {
  if (!Array.isArray(mask)) throw new Error('scheduler env: info.actionMask missing');
  let n = 0;
  while (n < mask.length && mask[n] === true) n++;
  return n;
}

export function runEpisode(
  env: SchedulerEnv,
  seed: number,
  act: Actor,
  opts: EpisodeOptions = {},
): EpisodeRecord {
  const maxSteps = opts.maxSteps ?? 5_000_000;
  const times: number[] = [];
  const rewards: number[] = [];
  let { obs, info } = env.reset({ seed });
  let terminated = false;
  let jobTimeS = 0;
  while (times.length < maxSteps) {
    const count = countLegal(info['actionMask']);
    const choice = act(obs, count);
    if (count >= 2 && opts.reservoir) {
      const slot = opts.reservoir.admit();
      if (slot >= 0) {
        const d: Decision = {
          rows: Float32Array.from(obs.subarray(0, count * TASK_FEATURES)),
          count,
          action: choice.action,
          logProb: choice.logProb,
          step: times.length,
        };
        if (opts.label) {
          d.targets = new Uint8Array(count);
          opts.label(obs, count, d.targets);
          d.action = Math.max(0, d.targets.indexOf(1));
        }
        opts.reservoir.put(slot, d);
      }
    }
    times.push(info['nowMs'] as number);
    const r = env.step(choice.action);
    rewards.push(r.reward);
    jobTimeS -= r.reward;
    ({ obs, info } = r);
    if (r.terminated || r.truncated) {
      terminated = r.terminated;
      break;
    }
  }
  return {
    timesMs: Float64Array.from(times),
    rewards: Float64Array.from(rewards),
    jobTimeS,
    steps: times.length,
    terminated,
  };
}
