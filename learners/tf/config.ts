// Checks for the numeric fields of the learners' typed configs, so every config reports a bad
// field the same way: the learner, the field, the rule and the value.
import { LearnerConfigError } from './errors.ts';

type Rule = 'integer>=1' | 'integer>=0' | '>0' | '[0,1]' | '(0,1]' | '>=0';

function holds(rule: Rule, v: number): boolean {
  switch (rule) {
    case 'integer>=1':
      return Number.isInteger(v) && v >= 1;
    case 'integer>=0':
      return Number.isInteger(v) && v >= 0;
    case '>0':
      return v > 0;
    case '>=0':
      return v >= 0;
    case '[0,1]':
      return v >= 0 && v <= 1;
    case '(0,1]':
      return v > 0 && v <= 1;
  }
}

/**
 * Throws LearnerConfigError unless `value` is a finite number obeying `rule` and, when `max`
 * is given, at most `max` (`maxWhy` names the bound: a constant or another field).
 */
export function checkField(
  learner: string,
  field: string,
  value: unknown,
  rule: Rule,
  max?: number,
  maxWhy?: string,
): void {
  const ok = typeof value === 'number' && Number.isFinite(value) && holds(rule, value);
  if (!ok) {
    throw new LearnerConfigError(
      field,
      rule,
      `${learner}.${field} must be ${rule}, got ${JSON.stringify(value)}`,
    );
  }
  if (max !== undefined && (value as number) > max) {
    throw new LearnerConfigError(
      field,
      'max',
      `${learner}.${field} must be <= ${maxWhy ?? max} (${max}), got ${String(value)}`,
    );
  }
}

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

/** Throws LearnerConfigError unless `value` is one of `allowed` (strings or booleans). */
export function checkOneOf<T extends string | boolean>(
  learner: string,
  field: string,
  value: unknown,
  allowed: readonly T[],
): void {
  if (!(allowed as readonly unknown[]).includes(value)) {
    throw new LearnerConfigError(
      field,
      'one_of',
      `${learner}.${field} must be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`,
    );
  }
}

/** A gradient-norm clip: a positive number, or null for none (JSON has no Infinity). */
export function checkGradClip(learner: string, value: unknown): void {
  if (value !== null) checkField(learner, 'maxGradNorm', value, '>0');
}
