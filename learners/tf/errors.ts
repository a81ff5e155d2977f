// Typed errors of the deep learners: bad input names the field and the rule it broke.

/** A config field outside its domain (`dqn.gamma must be in [0, 1], got 1.5`). */
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

/** An observation, action mask or space the agent cannot handle. */
export class LearnerInputError extends Error {
  override readonly name = 'LearnerInputError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}
