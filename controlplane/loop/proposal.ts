// The proposals table's row: what a learner wants changed, on which base versions, and what
// the simulation gate, the shadow stage and the SLO guard found. Statuses move one way:
// proposed -> simulated -> shadow -> live, with rejected and rolled_back as ends.
import type { KnobValue } from '../../knobs/index.ts';

export const PROPOSAL_STATUSES = [
  'proposed',
  'simulated',
  'shadow',
  'live',
  'rejected',
  'rolled_back',
] as const;
export type ProposalStatus = (typeof PROPOSAL_STATUSES)[number];

/**
 * Which statuses transition() may move each status to. Never live nor rolled_back: those
 * change knobs, and only promoteKnobs.lua sets them, in the same step as the knobs.
 */
export const NEXT_STATUS: Record<ProposalStatus, readonly ProposalStatus[]> = {
  proposed: ['simulated', 'rejected'],
  simulated: ['shadow', 'rejected'],
  shadow: ['rejected'],
  live: [],
  rejected: [],
  rolled_back: [],
};

export interface KnobProposalChange {
  name: string;
  value: KnobValue;
  baseVersion: number;
}

export interface Proposal {
  id: string;
  learner: string;
  /** Knob changes; a policy proposal names a knob that selects the policy version. */
  changes: KnobProposalChange[];
  status: ProposalStatus;
  /** The learner's own evidence (its predicted gain, the evaluations it ran). */
  evidence: unknown;
  simReport?: unknown;
  shadowReport?: unknown;
  guardReport?: unknown;
  /** Why it is in its current status. */
  reason: string;
  createdAt: number;
  updatedAt: number;
}

export const PROPOSAL_FIELDS = {
  id: { type: 'string' },
  learner: { type: 'string' },
  changes: { type: 'json' },
  status: { type: 'string' },
  evidence: { type: 'json' },
  simReport: { type: 'json', optional: true },
  shadowReport: { type: 'json', optional: true },
  guardReport: { type: 'json', optional: true },
  reason: { type: 'string' },
  createdAt: { type: 'number' },
  updatedAt: { type: 'number' },
} as const;

export function isOpen(status: ProposalStatus): boolean {
  return status === 'proposed' || status === 'simulated' || status === 'shadow';
}

/** The way to live, in order (PROPOSAL_STATUSES lists it first). */
const PIPELINE: readonly ProposalStatus[] = PROPOSAL_STATUSES.slice(
  0,
  PROPOSAL_STATUSES.indexOf('live') + 1,
);

/** Whether a proposal in `status` is at `step` or past it on the way to live. */
export function reached(status: ProposalStatus, step: ProposalStatus): boolean {
  const at = PIPELINE.indexOf(status);
  return at >= 0 && at >= PIPELINE.indexOf(step);
}
