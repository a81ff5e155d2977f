// Validation of a knob value against its declaration, and of a change against the knob's
// safety limits. Returns a violation naming the knob, the field and the rule, or null.
import { isNumericKnob, type KnobSpec, type KnobValue, type PlacementMap } from './types.ts';

export type KnobRule =
  | 'type'
  | 'integer'
  | 'min'
  | 'max'
  | 'enum'
  | 'shard_range'
  | 'max_entries'
  | 'non_empty_key'
  | 'name_format'
  | 'max_step'
  | 'max_step_ratio'
  | 'max_moves'
  | 'cooldown';

export interface KnobViolation {
  knob: string;
  field: string;
  rule: KnobRule;
  message: string;
}

function violation(spec: KnobSpec, field: string, rule: KnobRule, message: string): KnobViolation {
  return { knob: spec.name, field, rule, message: `knob ${spec.name}: ${field} ${message}` };
}

/** A plain object (what JSON decodes to): a Map or a Date has no entries JSON would keep. */
function isPlacementMap(v: unknown): v is PlacementMap {
  if (typeof v !== 'object' || v === null) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/** Checks that a value has the knob's type and lies in its domain. */
/**
 * A name the scheduler takes for a tenant (and ids, types, stages, jobs: they become key
 * parts and separators). A placement map names tenants, so its keys follow it: a name no
 * tenant can have would stop the whole promotion's moves, as a move keys its row by the name.
 */
export const PLAIN_NAME_RE = /^[A-Za-z0-9_.:@-]{1,128}$/;

export function validateValue(spec: KnobSpec, value: unknown): KnobViolation | null {
  if (isNumericKnob(spec)) {
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      return violation(spec, 'value', 'type', `must be a finite number, got ${describe(value)}`);
    }
    if (spec.type !== 'float' && !Number.isInteger(value)) {
      return violation(spec, 'value', 'integer', `must be an integer, got ${value}`);
    }
    if (value < spec.min)
      return violation(spec, 'value', 'min', `must be >= ${spec.min}, got ${value}`);
    if (value > spec.max)
      return violation(spec, 'value', 'max', `must be <= ${spec.max}, got ${value}`);
    return null;
  }
  switch (spec.type) {
    case 'enum':
      if (typeof value !== 'string') {
        return violation(spec, 'value', 'type', `must be a string, got ${describe(value)}`);
      }
      if (!spec.values.includes(value)) {
        return violation(
          spec,
          'value',
          'enum',
          `must be one of ${spec.values.join(', ')}, got ${describe(value)}`,
        );
      }
      return null;
    case 'bool':
      return typeof value === 'boolean'
        ? null
        : violation(spec, 'value', 'type', `must be a boolean, got ${describe(value)}`);
    case 'placement': {
      if (!isPlacementMap(value)) {
        return violation(
          spec,
          'value',
          'type',
          `must be an object of name -> shard, got ${describe(value)}`,
        );
      }
      const entries = Object.entries(value);
      if (entries.length > spec.maxEntries) {
        return violation(
          spec,
          'value',
          'max_entries',
          `must have at most ${spec.maxEntries} entries, got ${entries.length}`,
        );
      }
      for (const [key, shard] of entries) {
        if (key === '') {
          return violation(spec, 'value', 'non_empty_key', 'must not map an empty name');
        }
        if (!PLAIN_NAME_RE.test(key)) {
          return violation(
            spec,
            'value',
            'name_format',
            `must map tenant names matching ${PLAIN_NAME_RE.source}, got ${JSON.stringify(key.slice(0, 140))}`,
          );
        }
        if (typeof shard !== 'number' || !Number.isInteger(shard)) {
          return violation(
            spec,
            `value.${key}`,
            'type',
            `must be an integer shard, got ${describe(shard)}`,
          );
        }
        if (shard < 0 || shard >= spec.shards) {
          return violation(
            spec,
            `value.${key}`,
            'shard_range',
            `must be in 0..${spec.shards - 1}, got ${shard}`,
          );
        }
      }
      return null;
    }
  }
}

/** How many names a placement change moves (added, removed or re-assigned entries). */
export function placementMoves(from: PlacementMap, to: PlacementMap): number {
  let moves = 0;
  for (const k of new Set([...Object.keys(from), ...Object.keys(to)])) {
    if (from[k] !== to[k]) moves++;
  }
  return moves;
}

/**
 * Checks a change from `from` to `to` against the knob's safety limits. `sinceLastChangeMs` is
 * the time since the knob's last accepted change (Infinity when it never changed).
 */
export function validateStep(
  spec: KnobSpec,
  from: KnobValue,
  to: KnobValue,
  sinceLastChangeMs: number,
): KnobViolation | null {
  const { safety } = spec;
  // Written so that NaN (a missing or corrupt update time) fails the cooldown, never skips it.
  if (!(sinceLastChangeMs >= safety.cooldownMs)) {
    return violation(
      spec,
      'updated_at',
      'cooldown',
      `changed ${Math.round(sinceLastChangeMs)} ms ago; cooldown is ${safety.cooldownMs} ms`,
    );
  }
  if (isNumericKnob(spec) && typeof from === 'number' && typeof to === 'number') {
    const step = Math.abs(to - from);
    if (safety.maxStep !== undefined && step > safety.maxStep) {
      return violation(
        spec,
        'value',
        'max_step',
        `may change by at most ${safety.maxStep} per step, got ${from} -> ${to}`,
      );
    }
    if (safety.maxStepRatio !== undefined && from !== to) {
      // Zero (or less) counts as the knob's smallest positive unit: 1 for integers and
      // durations. Skipped, a ratio-limited knob could go to 0 and then to its maximum in two
      // steps. A float has no such unit, so it never steps between 0 and a positive value.
      const unit = spec.type === 'float' ? Number.MIN_VALUE : 1;
      const [a, b] = [Math.max(from, unit), Math.max(to, unit)];
      const ratio = Math.max(a / b, b / a);
      if (ratio > safety.maxStepRatio) {
        return violation(
          spec,
          'value',
          'max_step_ratio',
          `may change by at most x${safety.maxStepRatio} per step, got ${from} -> ${to}`,
        );
      }
    }
  }
  if (spec.type === 'placement' && safety.maxMoves !== undefined) {
    const moves = placementMoves(from as PlacementMap, to as PlacementMap);
    if (moves > safety.maxMoves) {
      return violation(
        spec,
        'value',
        'max_moves',
        `may move at most ${safety.maxMoves} entries per step, got ${moves}`,
      );
    }
  }
  return null;
}

/** Checks that a catalog is consistent: unique names, defaults inside their domains. */
export function validateCatalog(catalog: readonly KnobSpec[]): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const spec of catalog) {
    if (seen.has(spec.name)) problems.push(`knob ${spec.name}: declared twice`);
    seen.add(spec.name);
    if (!/^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$/.test(spec.name)) {
      problems.push(`knob ${spec.name}: name must be service.snake_case`);
    }
    const v = validateValue(spec, spec.default);
    if (v) problems.push(`default: ${v.message}`);
    if (isNumericKnob(spec) && spec.min > spec.max) problems.push(`knob ${spec.name}: min > max`);
    if (spec.safety.cooldownMs < 0) problems.push(`knob ${spec.name}: negative cooldown`);
  }
  return problems;
}

/** A refused value for a message: quoted (white space and case show) and cut to 120 chars. */
function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string')
    return v.length > 120
      ? `${JSON.stringify(v.slice(0, 120))}... (${v.length} chars)`
      : JSON.stringify(v);
  return `${typeof v} ${String(v).slice(0, 120)}`;
}
