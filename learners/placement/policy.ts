// A trained move scorer as a PlacementPolicy: at each decision it scores every candidate move
// and "stop" with the plain-TS net (learners/scheduling/net.ts), takes the best, and repeats on
// the updated loads until it picks stop or reaches view.maxMoves. No TF.js on this path.
import { fileURLToPath } from 'node:url';
import type { Move, PlacementPolicy, PlacementView } from '../../policies/placement/index.ts';
import {
  checkScorerArtifact,
  readArtifactFile,
  type ScorerArtifact,
} from '../scheduling/artifact.ts';
import { argmaxScore } from '../scheduling/decisions.ts';
import { compileScoreNet, type ScoreNet } from '../scheduling/net.ts';
import {
  MOVE_FEATURES,
  MOVE_FEATURE_NAMES,
  applyMove,
  candidatesOf,
  stateOf,
  type Candidates,
} from './features.ts';

export const MOVE_SCORER_KIND = 'policy.move-scorer';

/** The committed artifact `learners/placement/train.ts --seed 1` writes. */
export const TRAINED_PLACEMENT_FILE = fileURLToPath(
  new URL('./trained/zipf-move-scorer.json', import.meta.url),
);

/** Picks a candidate index (0 is stop); `movesMade` so far in this decision. */
export type CandidateChooser = (c: Candidates, movesMade: number) => number;

/** One decision: candidates, choice, apply, repeat; at most view.maxMoves moves. */
export function decideWith(view: PlacementView, choose: CandidateChooser): Move[] {
  const state = stateOf(view);
  const moves: Move[] = [];
  while (moves.length < view.maxMoves) {
    const c = candidatesOf(view, state, [...moves]);
    const m = c.moves[choose(c, moves.length)];
    if (!m) break;
    applyMove(view, state, m);
    moves.push(m);
  }
  return moves;
}

/** Scores of each candidate row under `score`, into `out` (grown as needed). */
export function scoreCandidates(
  score: (x: ArrayLike<number>, offset?: number) => number,
  c: Candidates,
  out: { buf: Float64Array },
): Float64Array {
  const n = c.moves.length;
  if (out.buf.length < n) out.buf = new Float64Array(2 * n);
  for (let i = 0; i < n; i++) out.buf[i] = score(c.rows, i * MOVE_FEATURES);
  return out.buf;
}

export function moveScorerPolicy(net: ScoreNet, name = 'learned'): PlacementPolicy {
  const score = compileScoreNet(net);
  const scratch = { buf: new Float64Array(64) };
  return {
    name,
    decide: (view) =>
      decideWith(view, (c) => argmaxScore(scoreCandidates(score, c, scratch), c.moves.length)),
  };
}

export function loadMoveScorerArtifact(path: string = TRAINED_PLACEMENT_FILE): ScorerArtifact {
  return checkScorerArtifact(readArtifactFile(path), MOVE_SCORER_KIND, MOVE_FEATURE_NAMES);
}

/** Checks an artifact (kind, version, feature layout, net) and returns its policy. */
export function placementPolicyFromArtifact(raw: unknown, name = 'learned'): PlacementPolicy {
  return moveScorerPolicy(
    checkScorerArtifact(raw, MOVE_SCORER_KIND, MOVE_FEATURE_NAMES).state.net,
    name,
  );
}

/** The committed trained policy (a factory: each call compiles its own scorer buffers). */
export function trainedPlacementPolicy(
  path: string = TRAINED_PLACEMENT_FILE,
  name = 'learned',
): PlacementPolicy {
  return moveScorerPolicy(loadMoveScorerArtifact(path).state.net, name);
}
