// Checks for the fields of the learners' typed configs, so every config reports a bad field
// the same way: the learner, the field, the rule and the value.
import { LearnerConfigError } from './errors.ts';

export type FieldRule =
  | 'integer>=1'
  | 'integer>=0'
  | 'integer>=2'
  | '>0'
  | '>=0'
  | '[0,1]'
  | '(0,1]'
  | '(0,1)'
  | 'finite';

function holds(rule: FieldRule, v: number): boolean {
  switch (rule) {
    case 'integer>=1':
      return Number.isInteger(v) && v >= 1;
    case 'integer>=0':
      return Number.isInteger(v) && v >= 0;
    case 'integer>=2':
      return Number.isInteger(v) && v >= 2;
    case '>0':
      return v > 0;
    case '>=0':
      return v >= 0;
    case '[0,1]':
      return v >= 0 && v <= 1;
    case '(0,1]':
      return v > 0 && v <= 1;
    case '(0,1)':
      return v > 0 && v < 1;
    case 'finite':
      return true;
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
  rule: FieldRule,
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

/** Throws LearnerConfigError unless `value` is an integer (seeds are stored as uint32). */
export function checkSeed(learner: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new LearnerConfigError(
      'seed',
      'integer',
      `${learner}.seed must be an integer, got ${JSON.stringify(value)}`,
    );
  }
}

/** Throws LearnerConfigError unless `value` is an integer in [min, max]. */
export function checkIntIn(
  learner: string,
  field: string,
  value: unknown,
  min: number,
  max: number,
): void {
  const ok = typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max;
  if (!ok) {
    throw new LearnerConfigError(
      field,
      `integer in [${min}, ${max}]`,
      `${learner}.${field} must be an integer in [${min}, ${max}], got ${JSON.stringify(value)}`,
    );
  }
}

/**
 * `defaults` overridden by the fields of `input` that are set: an explicit `undefined` keeps
 * the default instead of erasing it (a spread would erase it).
 */
export function withDefaults<D extends object, I extends object>(defaults: D, input: I): D & I {
  const set = Object.entries(input).filter(([, v]) => v !== undefined);
  return { ...defaults, ...Object.fromEntries(set) } as D & I;
}
