// The registry's scheduling policy versions as the dispatcher runs them: when the
// scheduler.policy_version knob names version N, the dispatcher asks for it here, every
// round, from memory. The first ask starts loading the artifact from the registry table; until
// it is loaded (or if it cannot be), the dispatcher keeps the heuristic scheduler.policy names,
// so dispatch never waits on the registry. An artifact the factory refuses will never load (a
// version never changes); any other failure (Redis away, a version not registered yet) is
// tried again after retryMs, and said each time.
import type { SchedulingPolicy } from '../../policies/scheduling/index.ts';
import type { Logger } from '../log.ts';
import { ArtifactInvalidError, RegistryUnsupportedError } from '../registry/errors.ts';
import { schedulingPolicyOf } from '../registry/policy-factory.ts';
import type { PolicyTable } from '../registry/table.ts';

export const SCHEDULER_POLICY_NAME = 'scheduler';

/** How long after a failed load of a version the next ask tries again. */
export const REGISTRY_RETRY_MS = 5_000;

type Entry = SchedulingPolicy | 'loading' | 'refused' | { failedAt: number };

export class RegistryPolicies {
  private readonly loaded = new Map<number, Entry>();

  constructor(
    private readonly table: PolicyTable,
    private readonly log: Logger,
    private readonly retryMs = REGISTRY_RETRY_MS,
  ) {}

  /** Version N's policy if loaded; undefined while it loads or when it failed to. */
  policy(version: number): SchedulingPolicy | undefined {
    const got = this.loaded.get(version);
    if (got === 'loading' || got === 'refused') return undefined;
    if (got !== undefined && !('failedAt' in got)) return got;
    if (got !== undefined && Date.now() < got.failedAt + this.retryMs) return undefined;
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
        const refused =
          err instanceof ArtifactInvalidError || err instanceof RegistryUnsupportedError;
        this.loaded.set(version, refused ? 'refused' : { failedAt: Date.now() });
        this.log.warn(
          { version, err: err.message, retryMs: refused ? null : this.retryMs },
          refused
            ? 'registry policy cannot run here; keeping the heuristic'
            : 'registry policy could not be loaded; keeping the heuristic meanwhile',
        );
      });
    return undefined;
  }
}
