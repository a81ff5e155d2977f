// Typed errors shared by every learner: bad input names the field and the rule it broke.
// Programmer mistakes (an impossible internal state) stay plain assertions.

/** A config field outside its domain (`bayesopt.xi must be >=0, got -1`). */
export class LearnerConfigError extends Error {
  override readonly name = 'LearnerConfigError';
  constructor(
    readonly field: string,
    readonly rule: string,
    message: string,
  ) {
    super(message);
  }
}

/** An artifact that cannot be loaded: wrong kind, version, shapes or values. */
export class ArtifactError extends Error {
  override readonly name = 'ArtifactError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

/** An outcome, context or observation the learner cannot use (missing metric, bad arm). */
export class LearnerInputError extends Error {
  override readonly name = 'LearnerInputError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

/** A finite learner (grid search) has proposed everything it has; `exhausted()` said so. */
export class LearnerExhaustedError extends Error {
  override readonly name = 'LearnerExhaustedError';
  constructor(readonly learner: string) {
    super(`${learner}: nothing left to propose (check exhausted() before propose())`);
  }
}
