// The DQN training loop (Mnih et al. 2015, after CleanRL's dqn.py), top to bottom: act
// epsilon-greedily, store the transition, and every `trainFrequency` steps after
// `learningStarts` take a gradient step on a replay minibatch, syncing the target network every
// `targetUpdateInterval` gradient steps. The step counters live on the agent (and in its
// artifact), so a second call, or a loaded agent, continues the schedules.
// Synchronous: TF.js on wasm/cpu runs on this thread.
import type { Env } from '../../envs/core/index.ts';
import { ReplayBuffer } from '../buffers/replay.ts';
import { checkField } from '../tf/config.ts';
import { checkReward, encodeBatch, maskFromInfo } from '../tf/encoding.ts';
import { EpisodeTracker, type EpisodeStats } from '../tf/episodes.ts';
import type { DqnAgent } from './agent.ts';

/** Bound on env steps of one learnDqn call. */
export const DQN_STEPS_MAX = 10_000_000;

export interface DqnLearnOptions {
  /** Env steps to take in this call. */
  totalSteps: number;
  /** Seed of the env's first reset (default: the agent's seed). */
  envSeed?: number;
  /** Called at the end of every episode (progress logs go to stderr there, not stdout). */
  onEpisode?: (e: EpisodeStats, envStep: number) => void;
  /** Replay buffer to continue with (default: a new one of config.bufferSize). */
  replay?: ReplayBuffer;
}

export interface DqnLearnResult {
  episodes: EpisodeStats[];
  /** Mean Huber loss of the gradient steps of this call (NaN if none). */
  meanLoss: number;
  replay: ReplayBuffer;
}

export function learnDqn(agent: DqnAgent, env: Env, opts: DqnLearnOptions): DqnLearnResult {
  const c = agent.config;
  checkField('dqn', 'totalSteps', opts.totalSteps, 'integer>=1', DQN_STEPS_MAX, 'DQN_STEPS_MAX');
  const replay = opts.replay ?? new ReplayBuffer(c.bufferSize, agent.obsSize, agent.nActions);
  const episodes = new EpisodeTracker();
  const encode = (o: unknown): Float32Array => encodeBatch(agent.observationSpace, [o]);
  let lossSum = 0;
  let lossCount = 0;

  let { obs, info } = env.reset({ seed: opts.envSeed ?? c.seed });
  let mask = maskFromInfo(info, agent.nActions);
  for (let i = 0; i < opts.totalSteps; i++) {
    // 1. Act epsilon-greedily among legal actions, and step the env.
    const action = agent.act(obs, mask, agent.envSteps);
    const r = env.step(action);
    checkReward(r.reward);
    // A terminated step's target does not bootstrap, so its mask is never read; an env may
    // well allow no action there (the scheduler env's last step does). A truncated step does
    // bootstrap, but one whose next state allows no action (the scheduler env cut at its event
    // bound) has no legal action to take a value from: that one transition is not stored.
    const rawNext = r.info['actionMask'];
    // Only a well-formed mask allowing nothing: a malformed one is refused below, as anywhere.
    const noValue =
      !r.terminated &&
      r.truncated &&
      Array.isArray(rawNext) &&
      rawNext.length === agent.nActions &&
      rawNext.every((m) => m === false);
    const nextMask = r.terminated || noValue ? undefined : maskFromInfo(r.info, agent.nActions);
    agent.envSteps++;
    episodes.step(r.reward);

    // 2. Store the transition. A truncated episode still bootstraps from its last observation.
    if (!noValue)
      replay.add({
        obs: encode(obs),
        action,
        reward: r.reward,
        nextObs: encode(r.obs),
        terminated: r.terminated,
        nextMask,
      });
    if (r.terminated || r.truncated) {
      const done = episodes.end(r.terminated);
      opts.onEpisode?.(done, agent.envSteps);
      ({ obs, info } = env.reset());
      mask = maskFromInfo(info, agent.nActions);
    } else {
      obs = r.obs;
      mask = nextMask;
    }

    // 3. Learn from replay, and periodically refresh the target network. The buffer test only
    // matters for an agent whose envSteps are already past learningStarts with a new (empty)
    // buffer (a loaded agent, or a second call not given the first call's `replay`): it waits
    // until the buffer holds as many transitions as a fresh run would have when it starts
    // learning (before, it trained on minibatches drawn from a handful of transitions).
    if (
      agent.envSteps > c.learningStarts &&
      replay.size > Math.min(c.learningStarts, replay.capacity - 1) &&
      agent.envSteps % c.trainFrequency === 0
    ) {
      lossSum += agent.trainStep(replay.sample(c.batchSize, agent.replayRng));
      lossCount++;
      agent.gradientSteps++;
      if (agent.gradientSteps % c.targetUpdateInterval === 0) agent.syncTarget();
    }
  }
  return { episodes: episodes.finished, meanLoss: lossSum / lossCount, replay };
}
