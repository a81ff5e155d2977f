// The policy registry: versions of named policies (scheduling, placement, cache) with their
// artifacts, lineage and status; simulation and shadow reports; promotion and rollback
// through the knobs table. See README.md.
export * from './errors.ts';
export * from './model.ts';
export { checkArtifact, HEURISTICS, ARTIFACT_BYTES_MAX, type CheckedArtifact } from './artifact.ts';
export { RegistryKeys, POLICIES_FAMILY, POLICIES_TABLE } from './keys.ts';
export {
  PolicyTable,
  checkRegistration,
  SCAN_MAX,
  type NewPolicy,
  type ListQuery,
} from './table.ts';
export {
  SchedulingSims,
  checkEvalSpec,
  judge,
  DEFAULT_EVAL,
  EVAL_BOUNDS,
  VERDICT_MARGIN,
  type EvalSpec,
  type NamedArtifact,
  type SimReport,
  type ShadowReport,
  type PolicyScore,
  type TraceFiles,
  type Verdict,
} from './sim.ts';
export { Evaluator, type EvaluatorOptions } from './evaluator.ts';
export {
  Promotion,
  PROMOTION_KNOBS,
  checkDirectKnobChange,
  promotionKnob,
  type Actor,
} from './promotion.ts';
export {
  schedulingPolicyOf,
  checkLearnedScheduling,
  RUNNABLE_LEARNED_KINDS,
} from './policy-factory.ts';
export { PolicyRegistry, type RegistryOptions, type EvaluateOptions } from './registry.ts';
