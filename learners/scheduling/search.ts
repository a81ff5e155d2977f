// Parameter-space search over a scorer's linear path: the cross-entropy method (learners/tuners'
// CrossEntropy) samples weight vectors around the teacher's criterion, scores each as a whole
// policy on a few training workloads (the same ones for every member of a generation, so their
// costs compare), and moves towards the best. It finds what per-decision credit cannot: in the
// moving world, keeping workers on their jobs pays only when the policy does it at every
// decision (one decision's deviation under SRPT is followed by SRPT's moves anyway), which a
// sampled whole policy shows and a decision's advantage does not.
import type { KnobSpec } from '../../knobs/index.ts';
import { searchSpace } from '../../knobs/index.ts';
import { CrossEntropy } from '../tuners/index.ts';
import { summarise } from './evaluate.ts';
import type { ScoreNet } from './net.ts';

export interface LinearSearchOptions {
  generations: number;
  population: number;
  /** Training workloads each candidate is scored on (new ones every generation). */
  seedsPerGeneration: number;
  /** The search box: each weight within `radius` of the centre's. */
  centre: readonly number[];
  radius: number;
  /**
   * Weights held at the centre's value: those of features that never varied in training, whose
   * weight no cost can tell apart (the search would leave them wherever noise took them, to act
   * on wherever the feature does vary: retries, priorities, GPUs).
   */
  pinned?: readonly boolean[];
  /** Seeds the sampling. */
  seed: number;
}

export interface SearchGeneration {
  generation: number;
  /** Mean and least cost of the generation's candidates. */
  mean: number;
  best: number;
}

/** `base`'s standardisation with `skip` as the whole score (no MLP). */
export function linearNet(base: ScoreNet, skip: readonly number[]): ScoreNet {
  const d = base.inputSize;
  return {
    inputSize: d,
    hiddenSizes: [],
    activation: base.activation,
    inputMean: [...base.inputMean],
    inputStd: [...base.inputStd],
    skip: [...skip],
    shapes: [[d, 1], [1]],
    weights: [new Array<number>(d).fill(0), [0]],
  };
}

function weightKnobs(centre: readonly number[], radius: number, free: number[]): KnobSpec[] {
  return free.map((i): KnobSpec => ({
    name: `w${i}`,
    type: 'float',
    min: (centre[i] as number) - radius,
    max: (centre[i] as number) + radius,
    default: centre[i] as number,
    description: `linear weight ${i}`,
    service: 'scheduler',
    cost: 'light',
    safety: { cooldownMs: 0 },
  }));
}

/**
 * Runs the search; `cost(skip, seeds)` is the mean cost of the linear policy `skip` on the
 * workloads `seeds` (lower is better), `nextSeeds` a fresh batch of training workloads.
 * Returns the final distribution's mean (CEM's answer) and each generation's costs.
 */
export async function searchLinear(
  o: LinearSearchOptions,
  cost: (skip: number[], seeds: number[]) => number,
  nextSeeds: (n: number) => number[],
  log: (line: string) => void = () => {},
): Promise<{ skip: number[]; generations: SearchGeneration[] }> {
  const free = o.centre.flatMap((_, i) => (o.pinned?.[i] ? [] : [i]));
  const knobs = weightKnobs(o.centre, o.radius, free);
  const space = searchSpace(knobs);
  const toSkip = (v: Record<string, unknown>) => {
    const skip = [...o.centre];
    free.forEach((i, k) => (skip[i] = v[(knobs[k] as KnobSpec).name] as number));
    return skip;
  };
  const cem = new CrossEntropy({
    knobs,
    objective: { metric: 'cost', direction: 'min' },
    seed: o.seed,
    populationSize: o.population,
  });
  const generations: SearchGeneration[] = [];
  for (let g = 1; g <= o.generations; g++) {
    const seeds = nextSeeds(o.seedsPerGeneration);
    const costs: number[] = [];
    for (let i = 0; i < o.population; i++) {
      const p = await cem.propose();
      const value = cost(toSkip(p.values), seeds);
      cem.observe({ values: p.values, value, seed: seeds[0] as number });
      costs.push(value);
    }
    const { mean, min } = summarise(costs);
    const row = { generation: g, mean, best: min };
    generations.push(row);
    log(
      `search generation ${g}/${o.generations}: cost mean ${row.mean.toFixed(4)}, ` +
        `best ${row.best.toFixed(4)}`,
    );
  }
  return { skip: toSkip(space.decode(cem.distribution.mean)), generations };
}
