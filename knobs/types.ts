// A knob declaration is data (MLOS-style tunables): type, domain, default, unit, owner,
// safety limits and the cost of changing it. Pure: no I/O, no imports of ours.

/** `store`: the table store under every service (durability of its writes). */
export type KnobService = 'scheduler' | 'messaging' | 'files' | 'placement' | 'store';

/** A placement map: tenant or partition name -> shard index. */
export type PlacementMap = Record<string, number>;

export type KnobValue = number | string | boolean | PlacementMap;

/** light: applied in place; heavy: needs data movement (a shard move, a re-chunk). */
export type KnobCost = 'light' | 'heavy';

export interface KnobSafety {
  /** Largest absolute change of a numeric knob in one promotion. */
  maxStep?: number;
  /** Largest multiplicative change of a numeric knob in one promotion (new/old and old/new). */
  maxStepRatio?: number;
  /** Largest number of placement entries changed in one promotion. */
  maxMoves?: number;
  /** Least time between two accepted changes of this knob. */
  cooldownMs: number;
}

interface KnobBase {
  name: string;
  service: KnobService;
  description: string;
  unit?: string;
  cost: KnobCost;
  safety: KnobSafety;
}

export interface IntKnob extends KnobBase {
  type: 'int';
  default: number;
  min: number;
  max: number;
  /** Tuners search this knob on a log scale. */
  log?: boolean;
}

export interface FloatKnob extends KnobBase {
  type: 'float';
  default: number;
  min: number;
  max: number;
  log?: boolean;
}

/** A duration in milliseconds; an integer with a unit. */
export interface DurationKnob extends KnobBase {
  type: 'duration';
  default: number;
  min: number;
  max: number;
  log?: boolean;
}

export interface EnumKnob extends KnobBase {
  type: 'enum';
  default: string;
  values: readonly string[];
}

export interface BoolKnob extends KnobBase {
  type: 'bool';
  default: boolean;
}

export interface PlacementKnob extends KnobBase {
  type: 'placement';
  default: PlacementMap;
  /** Shards are numbered 0..shards-1. */
  shards: number;
  /** Largest number of entries the map may hold. */
  maxEntries: number;
}

export type KnobSpec = IntKnob | FloatKnob | DurationKnob | EnumKnob | BoolKnob | PlacementKnob;
export type NumericKnob = IntKnob | FloatKnob | DurationKnob;
export type KnobValues = Record<string, KnobValue>;

export function isNumericKnob(spec: KnobSpec): spec is NumericKnob {
  return spec.type === 'int' || spec.type === 'float' || spec.type === 'duration';
}
