// Episode bookkeeping and greedy evaluation, shared by the DQN and PPO loops.
import type { Env } from '../../envs/core/index.ts';
import { maskFromInfo } from './encoding.ts';

export interface EpisodeStats {
  /** Undiscounted sum of rewards. */
  return: number;
  length: number;
  /** Ended by the task (true) or by a step budget (false). */
  terminated: boolean;
}

/** Accumulates the running episode; `end` returns its stats and starts a new one. */
export class EpisodeTracker {
  readonly finished: EpisodeStats[] = [];
  private ret = 0;
  private len = 0;

  /** Bound on the stats kept: the oldest are dropped beyond it. */
  constructor(private readonly keep = 10_000) {}

  step(reward: number): void {
    this.ret += reward;
    this.len += 1;
  }

  end(terminated: boolean): EpisodeStats {
    const e = { return: this.ret, length: this.len, terminated };
    this.finished.push(e);
    if (this.finished.length > this.keep) this.finished.shift();
    this.ret = 0;
    this.len = 0;
    return e;
  }
}

/** Picks an action from a raw observation and its legal-action mask. */
export type Policy = (obs: unknown, mask: readonly boolean[] | undefined) => number;

export interface EvalOptions {
  episodes: number;
  /** Seed of the first reset; later episodes continue the env's own stream. */
  seed: number;
  /** Bound on steps per episode, whatever the env does. */
  maxStepsPerEpisode: number;
  /** Action count, to read `info.actionMask`. */
  nActions: number;
}

/** Runs `policy` for whole episodes and returns each episode's stats. */
export function evaluatePolicy(env: Env, policy: Policy, opts: EvalOptions): EpisodeStats[] {
  const out: EpisodeStats[] = [];
  for (let e = 0; e < opts.episodes; e++) {
    let { obs, info } = env.reset(e === 0 ? { seed: opts.seed } : {});
    const tracker = new EpisodeTracker(1);
    let terminated = false;
    for (let t = 0; t < opts.maxStepsPerEpisode && !terminated; t++) {
      const r = env.step(policy(obs, maskFromInfo(info, opts.nActions)));
      tracker.step(r.reward);
      ({ obs, info } = r);
      terminated = r.terminated;
      if (r.truncated) break;
    }
    out.push(tracker.end(terminated));
  }
  return out;
}

export function meanReturn(episodes: readonly EpisodeStats[]): number {
  if (episodes.length === 0) return NaN;
  return episodes.reduce((a, e) => a + e.return, 0) / episodes.length;
}
