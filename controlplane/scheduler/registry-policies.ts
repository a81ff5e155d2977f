// The registry's scheduling policy versions as the dispatcher runs them: when the
// scheduler.policy_version knob names version N, the dispatcher asks for it here, every
// round, from memory. The first ask starts loading the artifact from the registry table; until
// it is loaded (or if it cannot be), the dispatcher keeps the heuristic scheduler.policy names,
// so dispatch never waits on the registry.
import type { SchedulingPolicy } from '../../policies/scheduling/index.ts';
import type { Logger } from '../log.ts';
import { schedulingPolicyOf } from '../registry/policy-factory.ts';
import type { PolicyTable } from '../registry/table.ts';

export const SCHEDULER_POLICY_NAME = 'scheduler';

export class RegistryPolicies {
  private readonly loaded = new Map<number, SchedulingPolicy | 'loading' | 'failed'>();

  constructor(
    private readonly table: PolicyTable,
    private readonly log: Logger,
  ) {}

  /** Version N's policy if loaded; undefined while it loads or when it failed to. */
  policy(version: number): SchedulingPolicy | undefined {
    const got = this.loaded.get(version);
    if (got === undefined) {
      this.loaded.set(version, 'loading');
      void this.table
        .get(SCHEDULER_POLICY_NAME, version)
        .then(({ row }) =>
          this.loaded.set(
            version,
            schedulingPolicyOf(row.artifact, `${SCHEDULER_POLICY_NAME}@v${version}`),
          ),
        )
        .catch((err: Error) => {
          this.loaded.set(version, 'failed');
          this.log.warn(
            { version, err: err.message },
            'registry policy could not be loaded; keeping the heuristic',
          );
        });
      return undefined;
    }
    return typeof got === 'object' ? got : undefined;
  }
}
