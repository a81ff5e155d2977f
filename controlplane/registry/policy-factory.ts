// The policy object an artifact stands for, the same object the simulator and the live side
// run (policies/ is shared verbatim). Heuristic artifacts name a policy of policies/scheduling.
// Learned scheduling artifacts (the task scorer of learners/scheduling) are stored and listed,
// but this build has no committed factory for them yet, so running one is refused as
// unsupported rather than guessed at.
import { createSchedulingPolicy } from '../../policies/scheduling/factory.ts';
import type { SchedulingPolicy } from '../../policies/scheduling/types.ts';
import { RegistryUnsupportedError } from './errors.ts';
import type { PolicyArtifact } from './model.ts';

export function schedulingPolicyOf(artifact: PolicyArtifact): SchedulingPolicy {
  if (artifact.heuristic !== undefined) return createSchedulingPolicy(artifact.heuristic);
  throw new RegistryUnsupportedError(
    `a learned scheduling artifact (${String(artifact.kind)}@${String(artifact.version)}) cannot run in this build: learners/scheduling has no committed policy factory yet; register heuristic artifacts ({ heuristic }) to evaluate`,
    { field: 'artifact.kind', rule: 'runnable', kind: artifact.kind },
  );
}
