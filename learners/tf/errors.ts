// The deep learners' typed errors are the ones every learner shares (learners/core/errors.ts):
// re-exported here so the tf-based learners keep importing them from their own folder.
export { ArtifactError, LearnerConfigError, LearnerInputError } from '../core/errors.ts';
