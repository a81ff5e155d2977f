// Config checks of the deep learners: the field checks every learner shares (re-exported from
// learners/core/config.ts) and the few that only networks need (layer sizes, gradient clip,
// schedules).
import { checkField } from '../core/config.ts';
import { LearnerConfigError } from '../core/errors.ts';

export { checkField, checkOneOf } from '../core/config.ts';

/** Hidden layer sizes: a non-empty list (at most 8 layers) of positive integers. */
export function checkHiddenSizes(learner: string, sizes: unknown): void {
  const ok =
    Array.isArray(sizes) &&
    sizes.length >= 1 &&
    sizes.length <= 8 &&
    sizes.every((s) => Number.isInteger(s) && s >= 1 && s <= 4096);
  if (!ok) {
    throw new LearnerConfigError(
      'hiddenSizes',
      'list',
      `${learner}.hiddenSizes must be 1 to 8 integers in [1, 4096], got ${JSON.stringify(sizes)}`,
    );
  }
}

/** A linear ramp from `start` to `end` over `durationSteps`, then flat at `end`. */
export function linearSchedule(
  start: number,
  end: number,
  durationSteps: number,
  step: number,
): number {
  if (durationSteps <= 0) return end;
  const frac = Math.min(1, Math.max(0, step / durationSteps));
  return start + (end - start) * frac;
}

/** A gradient-norm clip: a positive number, or null for none (JSON has no Infinity). */
export function checkGradClip(learner: string, value: unknown): void {
  if (value !== null) checkField(learner, 'maxGradNorm', value, '>0');
}
