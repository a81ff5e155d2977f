// The baseline policy names. knobs/ lists the same names as the domain of `scheduler.policy`;
// policies/ may not import knobs/, so a test checks that the two lists are equal.
export const SCHEDULING_POLICY_NAMES = [
  'fifo',
  'sjf',
  'srpt',
  'critical_path',
  'fair',
  'priority',
] as const;

export type SchedulingPolicyName = (typeof SCHEDULING_POLICY_NAMES)[number];

export function isSchedulingPolicyName(name: string): name is SchedulingPolicyName {
  return (SCHEDULING_POLICY_NAMES as readonly string[]).includes(name);
}
