// One placement episode decided move by move, with what training needs: every sub-decision
// (which move next, or stop) as a point of the trace at its interval's index, the interval's
// reward -(imbalance + migration cost) on the last sub-decision of that interval, and a sample
// of the decisions. The same PlacementSim and seed derivation as evaluatePlacementPolicy, so a
// greedy actor here scores exactly what the evaluation reports.
import { createRng, type Rng } from '../../envs/core/index.ts';
import {
  PlacementSim,
  type PlacementSimConfig,
  type PlacementWorkload,
} from '../../envs/placement/index.ts';
import type { EpisodeTrace } from '../scheduling/advantage.ts';
import { DecisionReservoir, type Decision } from '../scheduling/decisions.ts';
import { MOVE_FEATURES, type Candidates } from './features.ts';
import { decideWith } from './policy.ts';
import type { PlacementView } from '../../policies/placement/index.ts';

/** A choice among candidates (0 = stop) and its log-probability (0 when not sampled). */
export type MoveActor = (
  c: Candidates,
  movesMade: number,
  view: PlacementView,
) => { action: number; logProb: number };

/** The teacher's choice among the candidates (index), for labels. */
export type MoveTeacher = (c: Candidates, movesMade: number, view: PlacementView) => number;

export interface PlacementEpisode extends EpisodeTrace {
  /** Mean per-interval imbalance plus migration cost (evaluatePlacementPolicy's objective). */
  objective: number;
  kept: Decision[];
}

export function runPlacementEpisode(
  workload: PlacementWorkload,
  seed: number,
  cfg: PlacementSimConfig,
  act: MoveActor,
  opts: { keep: number; rng: Rng; label?: MoveTeacher },
): PlacementEpisode {
  const sim = new PlacementSim(cfg, workload.generate(createRng(seed).int(2 ** 31)));
  const reservoir = new DecisionReservoir(opts.keep, opts.rng);
  const times: number[] = [];
  const rewards: number[] = [];
  let total = 0;
  let intervals = 0;
  while (!sim.done) {
    const view = sim.view();
    const moves = decideWith(view, (c, made) => {
      const choice = act(c, made, view);
      const slot = reservoir.admit();
      if (slot >= 0) {
        reservoir.put(slot, {
          rows: Float32Array.from(c.rows.subarray(0, c.moves.length * MOVE_FEATURES)),
          count: c.moves.length,
          action: opts.label ? opts.label(c, made, view) : choice.action,
          logProb: choice.logProb,
          step: times.length,
        });
      }
      times.push(sim.t);
      rewards.push(0);
      return choice.action;
    });
    // A full decision never asks about stop: the interval still needs its reward point.
    if (moves.length === view.maxMoves) {
      times.push(sim.t);
      rewards.push(0);
    }
    const out = sim.step(moves);
    const cost = out.imbalance + out.migrationCost;
    rewards[rewards.length - 1] = -cost;
    total += cost;
    intervals++;
  }
  return {
    timesMs: Float64Array.from(times),
    rewards: Float64Array.from(rewards),
    objective: total / Math.max(1, intervals),
    kept: reservoir.kept,
  };
}
