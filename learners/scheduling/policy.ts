// A trained task scorer as a SchedulingPolicy: the plain-TS net scores each runnable task's
// feature row (policies/scheduling taskFeatures, the same function the env's observation uses)
// and ScoredPolicy ranks and places them like every heuristic. No TF.js on this path.
import { fileURLToPath } from 'node:url';
import {
  ScoredPolicy,
  TASK_FEATURE_NAMES,
  featureScorer,
  type SchedulingPolicy,
} from '../../policies/scheduling/index.ts';
import { checkScorerArtifact, readArtifactFile, type ScorerArtifact } from './artifact.ts';
import { compileScoreNet, type ScoreNet } from './net.ts';

export const TASK_SCORER_KIND = 'policy.task-scorer';

/** The committed artifact `learners/scheduling/train.ts --seed 1` writes. */
export const TRAINED_SCHEDULER_FILE = fileURLToPath(
  new URL('./trained/tpch-scorer.json', import.meta.url),
);

/** The same, trained where moving a worker to another job costs (`--world moving`). */
export const TRAINED_MOVING_SCHEDULER_FILE = fileURLToPath(
  new URL('./trained/tpch-moving-scorer.json', import.meta.url),
);

export function taskScorerPolicy(net: ScoreNet, name = 'learned'): SchedulingPolicy {
  const score = compileScoreNet(net);
  return new ScoredPolicy(
    name,
    featureScorer((x) => score(x)),
  );
}

/** Checks an artifact (kind, version, feature layout, net) and returns its policy. */
export function policyFromArtifact(raw: unknown, name = 'learned'): SchedulingPolicy {
  const a = checkScorerArtifact(raw, TASK_SCORER_KIND, TASK_FEATURE_NAMES);
  return taskScorerPolicy(a.state.net, name);
}

export function loadTaskScorerArtifact(path: string = TRAINED_SCHEDULER_FILE): ScorerArtifact {
  return checkScorerArtifact(readArtifactFile(path), TASK_SCORER_KIND, TASK_FEATURE_NAMES);
}

/** The committed trained policy (a factory: each call compiles its own scorer buffers). */
export function trainedSchedulingPolicy(
  path: string = TRAINED_SCHEDULER_FILE,
  name = 'learned',
): SchedulingPolicy {
  return taskScorerPolicy(loadTaskScorerArtifact(path).state.net, name);
}
