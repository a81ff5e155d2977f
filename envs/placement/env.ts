// placement-v1: the Gymnasium view of the placement simulator. Each step the agent moves one
// group to one shard, or does nothing.
//   observation (box in [0,1]): shard load shares (K), group load shares (G), each group's
//     shard as index/(K-1) (G; 0 when K = 1), and episode progress t/(steps-1).
//     Shares are of the step's total load, so the scale of the traffic does not matter.
//   action (masked discrete, 1 + G*K): 0 = no-op; 1 + g*K + k = move group g to shard k.
//     Moves to the group's own shard are masked out (they would be no-ops under another name).
//   reward: -(imbalance of the next step's loads, max/mean - 1) - migration cost of the move.
//   terminated when the workload's last step is reached; truncated at maxSteps if set.
import { createRng, nextSeed } from '../core/rng.ts';
import { box, maskedDiscrete } from '../core/spaces.ts';
import type { Env, ResetResult, StepResult } from '../core/env.ts';
import { PlacementSim, type PlacementSimConfig } from './sim.ts';
import type { PlacementWorkload } from './workload.ts';

export interface PlacementEnvConfig extends Omit<PlacementSimConfig, 'maxMovesPerStep'> {
  workload: PlacementWorkload;
  /** Groups in the workload; fixes the observation and action sizes. */
  groups: number;
  maxSteps?: number;
}

export class PlacementEnv implements Env<number[], number> {
  readonly id = 'placement-v1';
  readonly observationSpace;
  readonly actionSpace;
  private sim: PlacementSim | undefined;
  private stepsTaken = 0;
  /** The last episode's workload seed: a reset without a seed draws the next from it. */
  private episodeSeed: number | undefined;

  constructor(readonly cfg: PlacementEnvConfig) {
    this.observationSpace = box([cfg.shards + 2 * cfg.groups + 1], 0, 1);
    this.actionSpace = maskedDiscrete(1 + cfg.groups * cfg.shards);
  }

  reset(opts: { seed?: number } = {}): ResetResult<number[]> {
    // The workload seed is drawn from the reset seed, so envs made alike replay alike.
    const episode = opts.seed ?? (this.episodeSeed === undefined ? 0 : nextSeed(this.episodeSeed));
    this.episodeSeed = episode;
    const seed = createRng(episode).int(2 ** 31);
    const loads = this.cfg.workload.generate(seed);
    if (loads.names.length !== this.cfg.groups) {
      throw new Error(
        `${this.id}: workload ${this.cfg.workload.id} has ${loads.names.length} groups, env expects ${this.cfg.groups}`,
      );
    }
    this.sim = new PlacementSim({ ...this.cfg, maxMovesPerStep: 1 }, loads);
    this.stepsTaken = 0;
    return { obs: this.observe(), info: this.info() };
  }

  step(action: number): StepResult<number[]> {
    const sim = this.sim;
    if (!sim) throw new Error(`${this.id}: step before reset`);
    const n = this.actionSpace.n;
    if (!Number.isInteger(action) || action < 0 || action >= n) {
      throw new RangeError(`${this.id}: action ${action} not in 0..${n - 1}`);
    }
    const K = this.cfg.shards;
    const moves =
      action === 0
        ? []
        : [
            {
              group: sim.loads.names[Math.floor((action - 1) / K)] as string,
              to: (action - 1) % K,
            },
          ];
    const out = sim.step(moves);
    this.stepsTaken++;
    return {
      obs: this.observe(),
      reward: -out.imbalance - out.migrationCost,
      terminated: sim.done,
      truncated:
        !sim.done && this.cfg.maxSteps !== undefined && this.stepsTaken >= this.cfg.maxSteps,
      info: {
        ...this.info(),
        imbalance: out.imbalance,
        migrationCost: out.migrationCost,
        moves: out.moves,
      },
    };
  }

  private observe(): number[] {
    const sim = this.sim as PlacementSim;
    const K = this.cfg.shards;
    const groupLoads = sim.currentLoads();
    const total = groupLoads.reduce((a, b) => a + b, 0);
    const share = (x: number): number => (total > 0 ? Math.min(1, x / total) : 0);
    const obs = Array.from(sim.shardLoadsNow(), share);
    for (const x of groupLoads) obs.push(share(x));
    for (let g = 0; g < this.cfg.groups; g++) obs.push(K > 1 ? sim.shardOfGroup(g) / (K - 1) : 0);
    obs.push(sim.t / (sim.steps - 1));
    return obs;
  }

  private info(): Record<string, unknown> {
    const sim = this.sim as PlacementSim;
    const K = this.cfg.shards;
    const mask = new Array<boolean>(this.actionSpace.n).fill(true);
    for (let g = 0; g < this.cfg.groups; g++) mask[1 + g * K + sim.shardOfGroup(g)] = false;
    return { actionMask: mask, t: sim.t };
  }
}
