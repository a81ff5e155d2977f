// The policy registry's typed errors, with stable codes (KNOBOS_REGISTRY_*) and HTTP statuses;
// listed in controlplane/api/error-codes.ts and documented in docs/api-errors.md. A missing
// row is the store's NotFoundError and a move the row's status does not allow is the store's
// StateError, so a client sees the same codes as for knobs and proposals.
import { FieldError, KnobosError } from '../store/errors.ts';

/** A registration (name, kind, decision point, lineage) breaks a rule; names field and rule. */
export class RegistryInputError extends FieldError {
  readonly code = 'KNOBOS_REGISTRY_INVALID';
  readonly status = 400;
}

/** A malformed artifact: names the field inside it (`artifact.heuristic`) and the rule. */
export class ArtifactInvalidError extends FieldError {
  readonly code = 'KNOBOS_REGISTRY_INVALID_ARTIFACT';
  readonly status = 400;
}

/**
 * The registry cannot do this for this policy in this build: evaluating a kind without a
 * simulator here, running a learned artifact without its policy factory, promoting a policy
 * no knob selects.
 */
export class RegistryUnsupportedError extends KnobosError {
  readonly code = 'KNOBOS_REGISTRY_UNSUPPORTED';
  readonly status = 422;
}

/**
 * An evaluation that did not finish, through no fault of the version: past its time limit, its
 * simulation thread gone, or the server stopping. Retry later.
 */
export class EvaluationFailedError extends KnobosError {
  readonly code = 'KNOBOS_REGISTRY_EVALUATION_FAILED';
  readonly status = 503;
}

/** The simulation queue is full (evaluations are CPU-bound and run one at a time). */
export class RegistryBusyError extends KnobosError {
  readonly code = 'KNOBOS_REGISTRY_BUSY';
  readonly status = 429;
}
