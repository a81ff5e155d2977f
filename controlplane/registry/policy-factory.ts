// The policy object an artifact stands for, the same object the simulator and the live side
// run (policies/ is shared verbatim). Heuristic artifacts name a policy of policies/scheduling;
// a learned task scorer (learners/scheduling, `kind: 'policy.task-scorer'`) runs through the
// learners' plain-TS factory (no TF.js on this path). Other learned kinds are stored and
// listed, but this build cannot run them: refused as unsupported rather than guessed at.
import { ArtifactError } from '../../learners/core/errors.ts';
import { checkScorerArtifact } from '../../learners/scheduling/artifact.ts';
import { policyFromArtifact, TASK_SCORER_KIND } from '../../learners/scheduling/policy.ts';
import { createSchedulingPolicy } from '../../policies/scheduling/factory.ts';
import { TASK_FEATURE_NAMES } from '../../policies/scheduling/features.ts';
import type { SchedulingPolicy, TaskView } from '../../policies/scheduling/types.ts';
import { ArtifactInvalidError, RegistryUnsupportedError } from './errors.ts';
import type { PolicyArtifact } from './model.ts';

/** Learned scheduling artifact kinds this build can run. */
export const RUNNABLE_LEARNED_KINDS: readonly string[] = [TASK_SCORER_KIND];

/** A learner's loader refusal, as the registry's: the field inside the artifact and the rule. */
function asInvalid(err: unknown): never {
  if (err instanceof ArtifactError)
    throw new ArtifactInvalidError(
      `artifact: ${err.message}`,
      `artifact.${err.field}`,
      'learned_check',
    );
  throw err;
}

/**
 * Checks a learned scheduling artifact of a kind this build runs as its learner's loader
 * would (kind, version, feature layout, net shapes); other artifacts pass unchanged.
 */
export function checkLearnedScheduling(artifact: PolicyArtifact): void {
  if (artifact.kind !== TASK_SCORER_KIND) return;
  try {
    checkScorerArtifact(artifact, TASK_SCORER_KIND, TASK_FEATURE_NAMES);
  } catch (err) {
    asInvalid(err);
  }
}

/**
 * A registry policy sees what the live dispatcher can give it, in the simulator too: a view's
 * `jobFreeWorkers` (where the job's tasks last ran) is the simulator's alone (live views never
 * carry it), so it is dropped. Evaluated and shadowed with it, a scorer that weighs it was
 * judged on inputs it never gets live, and decided otherwise there.
 */
function withLiveInputs(policy: SchedulingPolicy): SchedulingPolicy {
  return {
    name: policy.name,
    pick: (runnable, free, now) =>
      policy.pick(
        runnable.some((t) => t.jobFreeWorkers !== undefined)
          ? // The view behind, its field hidden: the simulator's views are objects with getters
            // (a spread would copy none of them).
            runnable.map(
              (t) => Object.create(t, { jobFreeWorkers: { value: undefined } }) as TaskView,
            )
          : runnable,
        free,
        now,
      ),
  };
}

export function schedulingPolicyOf(artifact: PolicyArtifact, name = 'registry'): SchedulingPolicy {
  if (artifact.heuristic !== undefined) return createSchedulingPolicy(artifact.heuristic);
  if (artifact.kind === TASK_SCORER_KIND) {
    try {
      return withLiveInputs(policyFromArtifact(artifact, name));
    } catch (err) {
      asInvalid(err);
    }
  }
  throw new RegistryUnsupportedError(
    `a learned scheduling artifact of kind ${String(artifact.kind)} cannot run in this build (runnable: heuristics, ${RUNNABLE_LEARNED_KINDS.join(', ')})`,
    { field: 'artifact.kind', rule: 'runnable', kind: artifact.kind },
  );
}
