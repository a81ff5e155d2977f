// The learned placement policy: candidate features describe each move as the imbalance
// arithmetic says, the greedy teacher reproduces greedy rebalancing move for move, an episode
// run here scores exactly what evaluatePlacementPolicy reports, a saved and loaded policy
// decides identically, and the committed artifact stays within the move bound and beats hash.
import { describe, expect, it } from 'vitest';
import { createRng } from '../envs/core/index.ts';
import {
  DEFAULT_PLACEMENT_SIM,
  PlacementSim,
  evaluatePlacementPolicy,
  zipfDriftWorkload,
} from '../envs/placement/index.ts';
import {
  greedyPolicy,
  hashPolicy,
  imbalance,
  type PlacementView,
} from '../policies/placement/index.ts';
import {
  MOVE_FEATURES,
  MOVE_FEATURE_NAMES,
  MOVE_SCORER_KIND,
  candidatesOf,
  decideWith,
  greedyTeacher,
  loadMoveScorerArtifact,
  moveScorerPolicy,
  placementPolicyFromArtifact,
  runPlacementEpisode,
  stateOf,
  trainPlacement,
} from '../learners/placement/index.ts';
import { ScorerModel, scorerArtifact } from '../learners/scheduling/index.ts';
import { loadTfBackend, tf } from '../learners/tf/index.ts';

const workload = zipfDriftWorkload({ groups: 12, steps: 40 });
const col = (name: (typeof MOVE_FEATURE_NAMES)[number]) => MOVE_FEATURE_NAMES.indexOf(name);

function viewAt(seed: number, steps: number): PlacementView {
  const sim = new PlacementSim(DEFAULT_PLACEMENT_SIM, workload.generate(seed));
  for (let i = 0; i < steps; i++) sim.step([]);
  return sim.view();
}

describe('move candidates', () => {
  it('list stop and every move of a loaded group to another shard, with its imbalance change', () => {
    const view = viewAt(3, 5);
    const s = stateOf(view);
    const c = candidatesOf(view, s, []);
    const loaded = view.groups.filter((g) => g.load > 0).length;
    expect(c.moves.length).toBe(1 + loaded * (view.shards - 1));
    expect(c.moves[0]).toBeNull();
    expect(c.rows[col('is_stop')]).toBe(1);
    const i = 1 + 2; // the third move
    const m = c.moves[i];
    if (!m) throw new Error('expected a move');
    const g = view.groups.find((x) => x.name === m.group);
    const after = Float64Array.from(s.loads);
    const from = s.shardOfGroup[view.groups.indexOf(g as (typeof view.groups)[number])] as number;
    after[from] = (after[from] as number) - (g?.load ?? 0);
    after[m.to] = (after[m.to] as number) + (g?.load ?? 0);
    const row = c.rows.subarray(i * MOVE_FEATURES, (i + 1) * MOVE_FEATURES);
    expect(row[col('imbalance_delta')]).toBeCloseTo(imbalance(after) - imbalance(s.loads), 12);
    expect(row[col('move_cost')]).toBeCloseTo((g?.stateBytes ?? 0) * view.moveCostPerByte, 15);
  });

  it('the greedy teacher, followed move by move, decides exactly as greedy rebalancing', () => {
    const teach = greedyTeacher(1);
    const greedy = greedyPolicy();
    for (const [seed, steps] of [
      [1, 3],
      [2, 10],
      [5, 20],
    ] as const) {
      const view = viewAt(seed, steps);
      const mine = decideWith(view, (c, made) => teach(c, made, view));
      expect(mine).toEqual(greedy.decide(view));
    }
  });

  it('an episode scores what evaluatePlacementPolicy reports for the same decisions', () => {
    const teach = greedyTeacher(1);
    const ep = runPlacementEpisode(
      workload,
      7,
      DEFAULT_PLACEMENT_SIM,
      (c, made, view) => ({ action: teach(c, made, view), logProb: 0 }),
      { keep: 100, rng: createRng(1) },
    );
    const ref = evaluatePlacementPolicy(greedyPolicy(), workload, 7, DEFAULT_PLACEMENT_SIM);
    expect(ep.objective).toBeCloseTo(ref['objective'] as number, 12);
    // Every interval ends on a reward point; the rewards sum to minus the total cost.
    const total = ep.rewards.reduce((a, b) => a + b, 0);
    expect(-total / (ref['steps'] as number)).toBeCloseTo(ref['objective'] as number, 12);
    expect(ep.kept.length).toBeGreaterThan(10);
    expect(ep.kept.every((d) => d.count >= 2 && d.action < d.count)).toBe(true);
  });
});

describe('artifact and trained policy', () => {
  it('save then load gives identical decisions over an episode', async () => {
    await loadTfBackend();
    const m = new ScorerModel(
      { inputSize: MOVE_FEATURES, hiddenSizes: [8], activation: 'relu' },
      5,
    );
    m.params.forEach((p) => p.assign(tf.mul(p, 50)));
    const a = scorerArtifact(MOVE_SCORER_KIND, MOVE_FEATURE_NAMES, m.toNet(), { seed: 5 });
    m.dispose();
    const record = (policy: ReturnType<typeof moveScorerPolicy>) => {
      const out: string[] = [];
      evaluatePlacementPolicy(
        {
          name: policy.name,
          decide: (v) => {
            const ms = policy.decide(v);
            out.push(JSON.stringify(ms));
            return ms;
          },
        },
        workload,
        4,
      );
      return out;
    };
    const before = record(moveScorerPolicy(a.state.net));
    expect(before.some((s) => s !== '[]')).toBe(true);
    expect(record(placementPolicyFromArtifact(JSON.parse(JSON.stringify(a))))).toEqual(before);
  });

  it('the committed policy respects the move bound and beats hash on held-out seeds', () => {
    const policy = moveScorerPolicy(loadMoveScorerArtifact().state.net);
    const bounded = {
      name: policy.name,
      decide: (v: PlacementView) => {
        const ms = policy.decide(v);
        expect(ms.length).toBeLessThanOrEqual(v.maxMoves);
        return ms;
      },
    };
    for (const seed of [1, 2]) {
      const learned = evaluatePlacementPolicy(bounded, workload, seed)['objective'] as number;
      const hash = evaluatePlacementPolicy(hashPolicy(), workload, seed)['objective'] as number;
      expect(learned).toBeLessThan(0.7 * hash);
    }
  });
});

describe('training', () => {
  it('replays exactly from its seed, updates the policy, and keeps the best validated net', async () => {
    const tiny = {
      seed: 3,
      bcRounds: 1,
      bcEpisodesPerRound: 1,
      bcEpochs: 1,
      ppoIterations: 1,
      ppoEpochs: 2,
      rolloutsPerIteration: 2,
      validateEvery: 1,
      validationSeeds: [200_001],
    };
    const a = await trainPlacement(workload, tiny);
    const b = await trainPlacement(workload, tiny);
    expect(b.validation).toEqual(a.validation);
    expect(b.net).toEqual(a.net);
    expect(a.validation.map((v) => v.after)).toEqual(['bc', 'ppo 1']);
    expect(a.ppo.every((p) => p.approxKl > 0 && Number.isFinite(p.entropy))).toBe(true);
    const best = Math.min(...a.validation.map((v) => v.cost));
    expect(a.best.cost).toBe(best);
  });
});
