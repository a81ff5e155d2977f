// Run-level evaluation of a placement policy: one episode of a workload, the policy deciding
// every step with up to maxMovesPerStep moves. The placement knob is a map, not a point in a
// box, so there is no KnobObjective here; tuners compare policies through this instead.
import { findKnob, CATALOG } from '../../knobs/index.ts';
import type { PlacementPolicy } from '../../policies/placement/index.ts';
import type { Metrics } from '../core/env.ts';
import { createRng } from '../core/rng.ts';
import { PlacementSim, type PlacementSimConfig } from './sim.ts';
import type { PlacementWorkload } from './workload.ts';

const placementKnob = findKnob(CATALOG, 'placement.map');

/** Shard count and move bound of the live `placement.map` knob; the migration price is ours. */
export const DEFAULT_PLACEMENT_SIM: PlacementSimConfig = {
  shards: placementKnob?.type === 'placement' ? placementKnob.shards : 3,
  maxMovesPerStep: placementKnob?.safety.maxMoves ?? 4,
  moveCostPerGiB: 0.05,
};

/**
 * Metrics: mean_imbalance and max_imbalance (max/mean - 1 per step), moves, migrated_gib,
 * migration_cost (imbalance units), and objective = mean_imbalance + migration_cost / steps,
 * i.e. minus the mean per-step reward of the env. Lower is better.
 */
export function evaluatePlacementPolicy(
  policy: PlacementPolicy,
  workload: PlacementWorkload,
  seed: number,
  cfg: PlacementSimConfig = DEFAULT_PLACEMENT_SIM,
): Metrics {
  // Same seed derivation as placement-v1's reset, so an episode here equals the env's.
  const sim = new PlacementSim(cfg, workload.generate(createRng(seed).int(2 ** 31)));
  let sumImbalance = 0;
  let maxImbalance = 0;
  let moves = 0;
  let movedBytes = 0;
  let cost = 0;
  let steps = 0;
  while (!sim.done) {
    const out = sim.step(policy.decide(sim.view()));
    sumImbalance += out.imbalance;
    maxImbalance = Math.max(maxImbalance, out.imbalance);
    moves += out.moves;
    movedBytes += out.movedBytes;
    cost += out.migrationCost;
    steps++;
  }
  return {
    mean_imbalance: sumImbalance / steps,
    max_imbalance: maxImbalance,
    moves,
    migrated_gib: movedBytes / 1024 ** 3,
    migration_cost: cost,
    objective: (sumImbalance + cost) / steps,
    steps,
  };
}
