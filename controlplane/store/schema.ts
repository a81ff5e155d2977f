// Declared row schemas: how a typed row is stored as a Redis hash (every field a string)
// and read back. A row that does not decode names the table, the row, the field and the rule.
import { CorruptRowError, ValidationError } from './errors.ts';

export type FieldType = 'string' | 'number' | 'boolean' | 'json';

export interface FieldSpec {
  type: FieldType;
  optional?: boolean;
}

export type Fields = Record<string, FieldSpec>;

/** The TypeScript row type a field list describes. */
export type RowOf<F extends Fields> = {
  [K in keyof F as F[K]['optional'] extends true ? never : K]: FieldValue<F[K]['type']>;
} & {
  [K in keyof F as F[K]['optional'] extends true ? K : never]?: FieldValue<F[K]['type']>;
};

type FieldValue<T extends FieldType> = T extends 'string'
  ? string
  : T extends 'number'
    ? number
    : T extends 'boolean'
      ? boolean
      : unknown;

export function encodeField(table: string, name: string, spec: FieldSpec, value: unknown): string {
  const bad = (rule: string, msg: string) =>
    new ValidationError(`${table}.${name}: ${msg}`, name, rule, { table });
  switch (spec.type) {
    case 'string':
      if (typeof value !== 'string') throw bad('type', `must be a string, got ${typeof value}`);
      return value;
    case 'number':
      if (typeof value !== 'number' || !Number.isFinite(value))
        throw bad('type', `must be a finite number, got ${String(value)}`);
      return String(value);
    case 'boolean':
      if (typeof value !== 'boolean') throw bad('type', `must be a boolean, got ${typeof value}`);
      return value ? '1' : '0';
    case 'json': {
      // JSON.stringify gives undefined for a function, a symbol (or a toJSON returning
      // undefined), which would drop the field from the write, and throws for a BigInt or a
      // cycle: all refused here, before anything is written.
      let text: string | undefined;
      try {
        text = JSON.stringify(value) as string | undefined;
      } catch (err) {
        throw bad('json', `must be JSON-serializable: ${(err as Error).message}`);
      }
      if (text === undefined) throw bad('json', `must be JSON-serializable, got ${typeof value}`);
      return text;
    }
  }
}

/** A stored field's value, or the rule it breaks (what encodeField would never have written). */
function decodeField(spec: FieldSpec, raw: string): { value: unknown } | { rule: string } {
  switch (spec.type) {
    case 'string':
      return { value: raw };
    case 'number': {
      const v = raw.trim() === '' ? Number.NaN : Number(raw);
      return Number.isFinite(v) ? { value: v } : { rule: 'number' };
    }
    case 'boolean':
      return raw === '1' || raw === '0' ? { value: raw === '1' } : { rule: 'boolean' };
    case 'json':
      try {
        return { value: JSON.parse(raw) as unknown };
      } catch {
        return { rule: 'json' };
      }
  }
}

/** Encodes every declared field of a row; missing required fields are an error. */
export function encodeRow(
  table: string,
  fields: Fields,
  row: Record<string, unknown>,
): { set: Record<string, string>; del: string[] } {
  const set: Record<string, string> = {};
  const del: string[] = [];
  for (const [name, spec] of Object.entries(fields)) {
    const v = row[name];
    if (v === undefined || v === null) {
      if (!spec.optional)
        throw new ValidationError(`${table}.${name}: is required`, name, 'required', { table });
      del.push(name);
      continue;
    }
    set[name] = encodeField(table, name, spec, v);
  }
  for (const name of Object.keys(row)) {
    if (!(name in fields))
      throw new ValidationError(
        `${table}.${name}: is not a field of ${table}`,
        name,
        'unknown_field',
        { table },
      );
  }
  return { set, del };
}

/**
 * Decodes a stored row (every field of its hash). A row that does not decode, as encodeRow
 * would never have written it, is refused naming the table, the row, the field and the rule:
 * before, a number field holding 'ten' came back as NaN and a missing required field as absent,
 * typed as a valid row.
 */
export function decodeRow(
  table: string,
  id: string,
  fields: Fields,
  hash: Record<string, string>,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const corrupt = (name: string, rule: string, got?: string) =>
    new CorruptRowError(
      `${table} row ${id}: field ${name} ${rule === 'required' ? 'is missing' : `is not a stored ${rule}`}${got === undefined ? '' : `: ${JSON.stringify(got.slice(0, 80))}`}`,
      { table, id, field: name, rule },
    );
  for (const [name, spec] of Object.entries(fields)) {
    const raw = hash[name];
    if (raw === undefined) {
      if (!spec.optional) throw corrupt(name, 'required');
      continue;
    }
    const d = decodeField(spec, raw);
    if ('rule' in d) throw corrupt(name, d.rule, raw);
    out[name] = d.value;
  }
  return out;
}
