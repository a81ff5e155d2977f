// The registry's row: one version of a named policy, with its artifact, where it decides, what
// produced it (lineage), where it stands (status) and what the simulator and shadow found.
// Statuses move one way, draft -> candidate -> shadow -> live -> retired; a version may be
// retired from any status but live (roll back or promote another version first).

export const POLICY_KINDS = ['scheduling', 'placement', 'cache'] as const;
export type PolicyKind = (typeof POLICY_KINDS)[number];

export const POLICY_STATUSES = ['draft', 'candidate', 'shadow', 'live', 'retired'] as const;
export type PolicyStatus = (typeof POLICY_STATUSES)[number];

/** Which statuses each status may move to (promotion and rollback pick the live one). */
export const NEXT_POLICY_STATUS: Record<PolicyStatus, readonly PolicyStatus[]> = {
  draft: ['candidate', 'retired'],
  candidate: ['shadow', 'live', 'retired'],
  shadow: ['live', 'retired'],
  live: ['retired'],
  retired: [],
};

/** The decision point each kind serves: where the live side calls the policy. */
export const DECISION_POINTS: Record<PolicyKind, readonly string[]> = {
  scheduling: ['scheduler.dispatch'],
  placement: ['placement.map'],
  cache: ['files.read_cache'],
};

/** Policy names: short, lower case, safe in a key and a URL. */
export const POLICY_NAME_RE = /^[a-z][a-z0-9_-]{0,63}$/;

/** What produced a version. */
export interface Lineage {
  /** The version of the same name it was derived from (fine-tuned from, a variant of). */
  parent?: number;
  /** The learner (agent) that produced it, e.g. 'ppo-scheduler'. */
  learner?: string;
  /** The training run, e.g. a run id or a result file. */
  run?: string;
}

/** A heuristic by name, or a learned artifact (the learners' envelope), plus metadata. */
export interface PolicyArtifact {
  heuristic?: string;
  kind?: string;
  version?: number;
  config?: Record<string, unknown>;
  state?: Record<string, unknown>;
  meta?: Record<string, unknown>;
}

/** What a promotion did, kept on the live row (and on the row it replaced). */
export interface Promotion {
  proposalId: string;
  knob: string;
  knobVersion: number;
  /** The value the knob had before: the version this one replaced (0 = the heuristic). */
  replaced: number;
  at: number;
  by: string;
}

export interface PolicyRow {
  /** `<name>@<version>` */
  id: string;
  name: string;
  kind: PolicyKind;
  version: number;
  /** Registration number across all names: the order of the registry's index. */
  seq: number;
  decisionPoint: string;
  artifact: PolicyArtifact;
  /** `heuristic:srpt` or `<kind>@<version>` of a learned artifact. */
  artifactSummary: string;
  artifactBytes: number;
  artifactSha256: string;
  status: PolicyStatus;
  lineage: Lineage;
  simReport?: unknown;
  shadowReport?: unknown;
  promotion?: Promotion;
  /**
   * Proposals of promotions of this version that are in flight: each promote writes its
   * proposal's id here before the knob step, and a retire rejects them before it commits
   * (promotion.ts explains why). Cleared when the version goes live or is retired; internal,
   * not shown by the API.
   */
  promoting?: string[];
  /** Why it is in its current status. */
  reason: string;
  createdAt: number;
  createdBy: string;
  updatedAt: number;
  updatedBy: string;
}

export const POLICY_FIELDS = {
  id: { type: 'string' },
  name: { type: 'string' },
  kind: { type: 'string' },
  version: { type: 'number' },
  seq: { type: 'number' },
  decisionPoint: { type: 'string' },
  artifact: { type: 'json' },
  artifactSummary: { type: 'string' },
  artifactBytes: { type: 'number' },
  artifactSha256: { type: 'string' },
  status: { type: 'string' },
  lineage: { type: 'json' },
  simReport: { type: 'json', optional: true },
  shadowReport: { type: 'json', optional: true },
  promotion: { type: 'json', optional: true },
  promoting: { type: 'json', optional: true },
  reason: { type: 'string' },
  createdAt: { type: 'number' },
  createdBy: { type: 'string' },
  updatedAt: { type: 'number' },
  updatedBy: { type: 'string' },
} as const;

export function policyId(name: string, version: number): string {
  return `${name}@${version}`;
}

/** A row without its artifact: what lists show (artifacts may be large). */
export type PolicySummary = Omit<PolicyRow, 'artifact'>;

export function summarize(row: PolicyRow): PolicySummary {
  const { artifact: _artifact, ...rest } = row;
  void _artifact;
  return rest;
}
