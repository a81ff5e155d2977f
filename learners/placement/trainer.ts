// The learned placement policy as a ScorerTask for the scorer training loop
// (learners/scheduling/loop.ts): episodes of the placement simulator with up to maxMoves
// sub-decisions per interval (the live knob's bound, as evaluatePlacementPolicy allows; the
// placement-v1 env takes one move per interval, a different problem), greedy rebalancing as
// the teacher, and validation by evaluatePlacementPolicy on held-apart workload seeds.
import {
  DEFAULT_PLACEMENT_SIM,
  evaluatePlacementPolicy,
  type PlacementSimConfig,
  type PlacementWorkload,
} from '../../envs/placement/index.ts';
import { greedyPolicy, type PlacementPolicy } from '../../policies/placement/index.ts';
import { argmaxScore, sampleSoftmax } from '../scheduling/decisions.ts';
import { summarise } from '../scheduling/evaluate.ts';
import {
  trainScorer,
  type ActorSpec,
  type ScorerTask,
  type ScorerTrainResult,
} from '../scheduling/loop.ts';
import { compileScoreNet, type ScoreNet } from '../scheduling/net.ts';
import { placementTrainConfig, type PlacementTrainConfig } from './config.ts';
import { runPlacementEpisode, type MoveActor } from './episode.ts';
import { MOVE_FEATURES } from './features.ts';
import { moveScorerPolicy, scoreCandidates } from './policy.ts';
import { greedyTeacher } from './teacher.ts';

export interface PlacementTrainResult extends ScorerTrainResult {
  config: PlacementTrainConfig;
}

export function placementTask(
  c: PlacementTrainConfig,
  workload: PlacementWorkload,
  sim: PlacementSimConfig = DEFAULT_PLACEMENT_SIM,
): ScorerTask {
  const objective = (make: () => PlacementPolicy) =>
    summarise(
      c.validationSeeds.map(
        (seed) => evaluatePlacementPolicy(make(), workload, seed, sim)['objective'] as number,
      ),
    ).mean;
  const label = c.teacherPayback === null ? greedyTeacher(1) : greedyTeacher(c.teacherPayback);
  const actorOf = (a: ActorSpec): MoveActor => {
    if (a.kind === 'teacher')
      return (cs, made, view) => ({ action: label(cs, made, view), logProb: 0 });
    const score = compileScoreNet(a.net);
    const scratch = { buf: new Float64Array(64) };
    return (cs) => {
      const s = scoreCandidates(score, cs, scratch);
      return a.rng === null
        ? { action: argmaxScore(s, cs.moves.length), logProb: 0 }
        : sampleSoftmax(s, cs.moves.length, a.rng);
    };
  };
  return {
    rowSize: MOVE_FEATURES,
    costName: 'objective',
    episode(seed, actor, o) {
      const ep = runPlacementEpisode(workload, seed, sim, actorOf(actor), {
        keep: o.keep,
        rng: o.rng,
        ...(o.label ? { label } : {}),
      });
      return { trace: ep, kept: ep.kept, cost: ep.objective };
    },
    validate: (net: ScoreNet) => objective(() => moveScorerPolicy(net)),
    teacherValidation: () =>
      c.teacherPayback === null
        ? null
        : objective(() => greedyPolicy({ paybackIntervals: c.teacherPayback as number })),
    prior: null,
  };
}

export async function trainPlacement(
  workload: PlacementWorkload,
  partial: Partial<PlacementTrainConfig> = {},
  log?: (line: string) => void,
): Promise<PlacementTrainResult> {
  const c = placementTrainConfig(partial);
  const rounds = c.teacherPayback === null ? { bcRounds: 0 } : {};
  const r = await trainScorer(placementTask(c, workload), { ...c, ...rounds }, c.horizonSteps, log);
  return { ...r, config: c };
}
