// Scheduling policies by name (the values of the `scheduler.policy` knob).
import type { PlacementPolicy } from '../gpu/placement.ts';
import { criticalPath, fair, fifo, priority, sjf, srpt } from './baselines.ts';
import { SCHEDULING_POLICY_NAMES, type SchedulingPolicyName } from './names.ts';
import type { SchedulingPolicy } from './types.ts';

const MAKERS: Record<SchedulingPolicyName, (p?: PlacementPolicy) => SchedulingPolicy> = {
  fifo,
  sjf,
  srpt,
  critical_path: criticalPath,
  fair,
  priority,
};

export interface SchedulingPolicyOptions {
  /** Where ranked tasks go; first fit by default. */
  placement?: PlacementPolicy;
}

export function createSchedulingPolicy(
  name: string,
  opts: SchedulingPolicyOptions = {},
): SchedulingPolicy {
  // Own entries only: `toString` or `constructor` found Object.prototype's members.
  const make = Object.hasOwn(MAKERS, name)
    ? (MAKERS as Record<string, (p?: PlacementPolicy) => SchedulingPolicy>)[name]
    : undefined;
  if (!make) {
    throw new RangeError(
      `scheduling policy must be one of ${SCHEDULING_POLICY_NAMES.join(', ')}, got ${JSON.stringify(name)}`,
    );
  }
  return make(opts.placement);
}
