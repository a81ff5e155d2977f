// Placement policies by name, for the command line and the simulator's configuration.
import { FragmentationAwarePlacement, type WorkloadClass } from './fragmentation.ts';
import { bestFit, firstFit, type PlacementPolicy } from './placement.ts';

export const PLACEMENT_POLICIES = ['first_fit', 'best_fit', 'fgd'] as const;
export type PlacementPolicyName = (typeof PLACEMENT_POLICIES)[number];

/** `fgd` needs the workload's classes (see `workloadClasses`); the others ignore them. */
export function createPlacementPolicy(
  name: string,
  classes: readonly WorkloadClass[] = [],
): PlacementPolicy {
  switch (name) {
    case 'first_fit':
      return firstFit;
    case 'best_fit':
      return bestFit;
    case 'fgd':
      if (classes.length === 0) throw new RangeError('placement fgd: needs the workload classes');
      return new FragmentationAwarePlacement(classes);
    default:
      throw new RangeError(
        `placement policy must be one of ${PLACEMENT_POLICIES.join(', ')}, got ${JSON.stringify(name)}`,
      );
  }
}
