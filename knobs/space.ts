// Knobs as a search space for tuners: each knob maps to one coordinate of the unit cube
// (numeric knobs on a linear or log scale, enums and bools as evenly spaced bins), so a
// tuner works on [0,1]^d and decodes back to valid values. Placement maps are not searched
// this way; the placement learner acts on moves.
import { isNumericKnob, type KnobSpec, type KnobValue, type KnobValues } from './types.ts';

export type SearchableKnob = Exclude<KnobSpec, { type: 'placement' }>;

export interface SearchSpace {
  knobs: readonly SearchableKnob[];
  /** Number of coordinates. */
  dims: number;
  encode(values: KnobValues): number[];
  decode(x: readonly number[]): KnobValues;
  /** Every combination with `pointsPerNumeric` levels per numeric knob and every enum value. */
  grid(pointsPerNumeric: number): KnobValues[];
}

function levels(spec: SearchableKnob): number | undefined {
  if (spec.type === 'enum') return spec.values.length;
  if (spec.type === 'bool') return 2;
  return undefined;
}

function encodeOne(spec: SearchableKnob, value: KnobValue): number {
  if (isNumericKnob(spec)) {
    const v = value as number;
    if (spec.max === spec.min) return 0;
    if (spec.log && spec.min > 0) return Math.log(v / spec.min) / Math.log(spec.max / spec.min);
    if (spec.log) return Math.log1p(v - spec.min) / Math.log1p(spec.max - spec.min);
    return (v - spec.min) / (spec.max - spec.min);
  }
  if (spec.type === 'enum')
    return (spec.values.indexOf(value as string) + 0.5) / spec.values.length;
  return value ? 0.75 : 0.25;
}

function decodeOne(spec: SearchableKnob, u: number): KnobValue {
  const x = Math.min(1, Math.max(0, u));
  if (isNumericKnob(spec)) {
    let v: number;
    if (spec.log && spec.min > 0) v = spec.min * Math.pow(spec.max / spec.min, x);
    else if (spec.log) v = spec.min + Math.expm1(x * Math.log1p(spec.max - spec.min));
    else v = spec.min + x * (spec.max - spec.min);
    if (spec.type !== 'float') v = Math.round(v);
    return Math.min(spec.max, Math.max(spec.min, v));
  }
  const n = levels(spec) as number;
  const i = Math.min(n - 1, Math.floor(x * n));
  return spec.type === 'enum' ? (spec.values[i] as string) : i === 1;
}

export function searchSpace(knobs: readonly KnobSpec[]): SearchSpace {
  const searchable = knobs.filter((k): k is SearchableKnob => k.type !== 'placement');
  if (searchable.length !== knobs.length) {
    throw new Error('searchSpace: placement knobs are searched by moves, not as coordinates');
  }
  return {
    knobs: searchable,
    dims: searchable.length,
    encode: (values) =>
      searchable.map((k) => {
        const v = values[k.name];
        if (v === undefined) throw new Error(`searchSpace.encode: missing knob ${k.name}`);
        return encodeOne(k, v);
      }),
    decode: (x) => {
      if (x.length !== searchable.length) {
        throw new Error(
          `searchSpace.decode: expected ${searchable.length} coordinates, got ${x.length}`,
        );
      }
      return Object.fromEntries(
        searchable.map((k, i) => {
          const u = x[i] as number;
          // Clamping cannot place NaN; decoded, it became a NaN (or null in JSON) value.
          if (Number.isNaN(u))
            throw new Error(`searchSpace.decode: coordinate ${i} (${k.name}) is NaN`);
          return [k.name, decodeOne(k, u)];
        }),
      );
    },
    grid: (pointsPerNumeric) => {
      const axes = searchable.map((k) => {
        const n = levels(k) ?? pointsPerNumeric;
        const us = Array.from({ length: n }, (_, i) =>
          levels(k) ? (i + 0.5) / n : n === 1 ? 0.5 : i / (n - 1),
        );
        // Rounding can map neighbouring levels of an int knob to one value: keep distinct ones.
        const vals = us.map((u) => decodeOne(k, u));
        return [...new Map(vals.map((v) => [JSON.stringify(v), v])).values()];
      });
      let combos: KnobValues[] = [{}];
      axes.forEach((vals, i) => {
        const name = (searchable[i] as SearchableKnob).name;
        combos = combos.flatMap((c) => vals.map((v) => ({ ...c, [name]: v })));
      });
      return combos;
    },
  };
}
