// The PPO training loop (after CleanRL's ppo.py, one env), top to bottom: collect `nSteps`
// steps with the current policy, compute GAE advantages, run the clipped update, repeat.
// Synchronous: TF.js on wasm/cpu runs on this thread.
import type { Env } from '../../envs/core/index.ts';
import { RolloutBuffer } from '../buffers/rollout.ts';
import { checkField } from '../tf/config.ts';
import { checkReward, encodeBatch, maskFromInfo } from '../tf/encoding.ts';
import { EpisodeTracker, type EpisodeStats } from '../tf/episodes.ts';
import type { PpoAgent, PpoUpdateStats } from './agent.ts';

/** Bound on env steps of one learnPpo call. */
export const PPO_STEPS_MAX = 10_000_000;

export interface PpoLearnOptions {
  /** Env steps to take in this call, rounded up to whole rollouts of config.nSteps. */
  totalSteps: number;
  /** Seed of the env's first reset (default: the agent's seed). */
  envSeed?: number;
  /** Called at the end of every episode (progress logs go to stderr there, not stdout). */
  onEpisode?: (e: EpisodeStats, envStep: number) => void;
  /** Called after every update. */
  onUpdate?: (s: PpoUpdateStats, update: number) => void;
}

export interface PpoLearnResult {
  episodes: EpisodeStats[];
  updates: PpoUpdateStats[];
}

export function learnPpo(agent: PpoAgent, env: Env, opts: PpoLearnOptions): PpoLearnResult {
  const c = agent.config;
  checkField('ppo', 'totalSteps', opts.totalSteps, 'integer>=1', PPO_STEPS_MAX, 'PPO_STEPS_MAX');
  const rollout = new RolloutBuffer(c.nSteps, agent.obsSize, agent.nActions);
  const episodes = new EpisodeTracker();
  const updates: PpoUpdateStats[] = [];
  const numUpdates = Math.ceil(opts.totalSteps / c.nSteps);

  let { obs, info } = env.reset({ seed: opts.envSeed ?? c.seed });
  let mask = maskFromInfo(info, agent.nActions);
  for (let u = 0; u < numUpdates; u++) {
    // 1. Collect a rollout with the current policy.
    rollout.clear();
    while (!rollout.full) {
      const { action, logProb, value } = agent.sample(obs, mask);
      const r = env.step(action);
      checkReward(r.reward);
      agent.envSteps++;
      episodes.step(r.reward);
      // A truncated (not terminated) episode still has value beyond its cut: bootstrap it
      // into the last reward, since GAE treats every episode end as final.
      const bootstrap =
        r.truncated && !r.terminated ? c.gamma * (agent.values([r.obs])[0] as number) : 0;
      rollout.add({
        obs: encodeBatch(agent.observationSpace, [obs]),
        mask,
        action,
        logProb,
        value,
        reward: r.reward + bootstrap,
        episodeEnd: r.terminated || r.truncated,
      });
      if (r.terminated || r.truncated) {
        const done = episodes.end(r.terminated);
        opts.onEpisode?.(done, agent.envSteps);
        ({ obs, info } = env.reset());
      } else {
        ({ obs, info } = r);
      }
      mask = maskFromInfo(info, agent.nActions);
    }

    // 2. Advantages by GAE(lambda), bootstrapped from the value of the next observation.
    const lastValue = agent.values([obs])[0] as number;
    const batch = rollout.finish(lastValue, c.gamma, c.gaeLambda);

    // 3. The clipped-surrogate update.
    const stats = agent.update(batch);
    updates.push(stats);
    opts.onUpdate?.(stats, agent.updates);
  }
  return { episodes: episodes.finished, updates };
}
