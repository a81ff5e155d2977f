// The placement simulator: K shards, groups whose load changes every step, a placement map.
// A decision at step t sees the loads of step t; its moves take effect for step t+1, and the
// imbalance is scored on step t+1's loads (a move cannot help traffic that already passed).
// Shared by the Gymnasium env (one move per step) and the policy evaluation (a policy's
// whole decision per step), so both score the same thing.
import { hashPlacement, imbalance, shardLoads, withMoves } from '../../policies/placement/index.ts';
import type { Move, PlacementMap, PlacementView } from '../../policies/placement/index.ts';
import type { GroupLoads } from './workload.ts';

export interface PlacementSimConfig {
  shards: number;
  /** Moves accepted per step (the placement knob's maxMoves is the live bound). */
  maxMovesPerStep: number;
  /** Migration cost, in imbalance units, of moving one GiB of a group's state. */
  moveCostPerGiB: number;
}

const GIB = 1024 ** 3;

export class PlacementConfigError extends Error {
  constructor(
    readonly field: string,
    readonly rule: string,
  ) {
    super(`placement config: ${field} ${rule}`);
    this.name = 'PlacementConfigError';
  }
}

export function checkSimConfig(cfg: PlacementSimConfig): void {
  if (!Number.isInteger(cfg.shards) || cfg.shards < 1) {
    throw new PlacementConfigError('shards', `must be a positive integer, got ${cfg.shards}`);
  }
  if (!Number.isInteger(cfg.maxMovesPerStep) || cfg.maxMovesPerStep < 0) {
    throw new PlacementConfigError('maxMovesPerStep', `must be an integer >= 0`);
  }
  if (!(cfg.moveCostPerGiB >= 0)) throw new PlacementConfigError('moveCostPerGiB', 'must be >= 0');
}

export interface StepOutcome {
  /** Imbalance (max/mean - 1) of step t+1's loads under the placement after the moves. */
  imbalance: number;
  moves: number;
  movedBytes: number;
  /** moveCostPerGiB x GiB moved. */
  migrationCost: number;
}

export class PlacementSim {
  private map: PlacementMap;
  private readonly indexOf: Map<string, number>;
  t = 0;

  constructor(
    readonly cfg: PlacementSimConfig,
    readonly loads: GroupLoads,
    initial?: Readonly<PlacementMap>,
  ) {
    checkSimConfig(cfg);
    this.indexOf = new Map(loads.names.map((n, g) => [n, g]));
    this.map = { ...hashPlacement(loads.names, cfg.shards), ...initial };
  }

  get steps(): number {
    return this.loads.loads.length;
  }

  /** True once the last step's loads are current: there is no next step to score. */
  get done(): boolean {
    return this.t >= this.steps - 1;
  }

  placement(): Readonly<PlacementMap> {
    return this.map;
  }

  shardOfGroup(g: number): number {
    return this.map[this.loads.names[g] as string] as number;
  }

  currentLoads(): Float64Array {
    return this.loads.loads[this.t] as Float64Array;
  }

  groupViews(): PlacementView['groups'] {
    const row = this.currentLoads();
    return this.loads.names.map((name, g) => ({
      name,
      load: row[g] as number,
      stateBytes: this.loads.stateBytes[g] as number,
    }));
  }

  view(): PlacementView {
    return {
      shards: this.cfg.shards,
      groups: this.groupViews(),
      map: this.map,
      maxMoves: this.cfg.maxMovesPerStep,
      moveCostPerByte: this.cfg.moveCostPerGiB / GIB,
    };
  }

  shardLoadsNow(): Float64Array {
    return shardLoads(this.groupViews(), this.map, this.cfg.shards);
  }

  /**
   * Applies the moves (a group that ends where it was moved nothing, and one moved several
   * times moved once), then advances one step and scores it. A policy returning more than
   * maxMovesPerStep moves, an unknown group or a shard out of range is a programming error and
   * throws.
   */
  step(moves: readonly Move[]): StepOutcome {
    if (this.done) throw new Error('PlacementSim.step: the episode is over');
    if (moves.length > this.cfg.maxMovesPerStep) {
      throw new Error(
        `PlacementSim.step: ${moves.length} moves > maxMovesPerStep ${this.cfg.maxMovesPerStep}`,
      );
    }
    // Every move is checked before any applies (an invalid one changes nothing).
    for (const m of moves) {
      if (!this.indexOf.has(m.group))
        throw new Error(`PlacementSim.step: unknown group ${m.group}`);
      if (!Number.isInteger(m.to) || m.to < 0 || m.to >= this.cfg.shards) {
        throw new Error(`PlacementSim.step: shard ${m.to} not in 0..${this.cfg.shards - 1}`);
      }
    }
    // A group's state moves once, from where it was to where the decision leaves it, as the
    // live migrator moves it (the map before against the map after): A -> B -> A in one
    // decision moves nothing, A -> B -> C moves once (each hop was charged).
    const before = this.map;
    const after = withMoves(before, moves);
    let count = 0;
    let movedBytes = 0;
    for (const group of new Set(moves.map((m) => m.group))) {
      if (after[group] === before[group]) continue;
      count++;
      movedBytes += this.loads.stateBytes[this.indexOf.get(group) as number] as number;
    }
    if (count > 0) this.map = after;
    this.t++;
    return {
      imbalance: imbalance(this.shardLoadsNow()),
      moves: count,
      movedBytes,
      migrationCost: (movedBytes / GIB) * this.cfg.moveCostPerGiB,
    };
  }
}
