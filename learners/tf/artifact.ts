// The checkpoint format of the deep learners: plain JSON, so it can live in the policies
// table next to its lineage. Weights are row-major number lists with their shapes; float32
// values survive the round trip through JSON numbers exactly, so a loaded agent decides
// exactly as the saved one did.
import type { Space } from '../../envs/core/index.ts';
import { ArtifactError } from './errors.ts';
import type { WeightArrays } from './mlp.ts';

/** A space as JSON: a box's infinite bounds become null (JSON has no Infinity). */
export type SpaceJson =
  | Exclude<Space, { kind: 'box' }>
  | { kind: 'box'; shape: number[]; low: number | null; high: number | null };

export function spaceToJson(s: Space): SpaceJson {
  if (s.kind !== 'box') return s;
  const bound = (v: number): number | null => (Number.isFinite(v) ? v : null);
  return { kind: 'box', shape: [...s.shape], low: bound(s.low), high: bound(s.high) };
}

const isPositiveInt = (v: unknown): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= 1;

/** `v` as a list of positive integers, or ArtifactError naming `field`. */
function positiveInts(v: unknown, field: string, nonEmpty: boolean): number[] {
  if (!Array.isArray(v) || (nonEmpty && v.length === 0) || !v.every(isPositiveInt)) {
    const what = nonEmpty ? 'a non-empty list' : 'a list';
    throw new ArtifactError(
      field,
      `${field} must be ${what} of positive integers, got ${JSON.stringify(v)}`,
    );
  }
  return [...v];
}

/** A box bound: a number, or null for an infinite one. */
function bound(v: unknown, field: string, infinite: number): number {
  if (v === null) return infinite;
  if (typeof v !== 'number' || Number.isNaN(v)) {
    throw new ArtifactError(field, `${field} must be a number or null, got ${JSON.stringify(v)}`);
  }
  return v;
}

/**
 * The space of an artifact, every field checked (ArtifactError naming the field, e.g.
 * `spaces.action.n`): an agent builds its networks from these sizes, so a bad one must be
 * refused before anything is built.
 */
export function spaceFromJson(j: SpaceJson, field: string): Space {
  const kinds = ['box', 'discrete', 'multi_discrete', 'masked_discrete'];
  if (typeof j !== 'object' || j === null || !kinds.includes(j.kind)) {
    throw new ArtifactError(field, `${field} must be a space (kind one of ${kinds.join(', ')})`);
  }
  const raw = j as unknown as Record<string, unknown>;
  switch (j.kind) {
    case 'discrete':
    case 'masked_discrete':
      if (!isPositiveInt(raw.n)) {
        throw new ArtifactError(
          `${field}.n`,
          `${field}.n must be a positive integer, got ${JSON.stringify(raw.n)}`,
        );
      }
      return { kind: j.kind, n: raw.n };
    case 'multi_discrete':
      return { kind: j.kind, nvec: positiveInts(raw.nvec, `${field}.nvec`, true) };
    case 'box': {
      const shape = positiveInts(raw.shape, `${field}.shape`, false);
      const low = bound(raw.low, `${field}.low`, -Infinity);
      const high = bound(raw.high, `${field}.high`, Infinity);
      if (!(low <= high)) {
        throw new ArtifactError(
          `${field}.high`,
          `${field}.high must be >= low (${low}), got ${high}`,
        );
      }
      return { kind: 'box', shape, low, high };
    }
  }
}

export interface DeepArtifact<K extends string = string, C = unknown> extends WeightArrays {
  /** Which agent wrote it (`dqn`, `ppo`); load refuses any other kind. */
  kind: K;
  /** Format version of that kind; bumped when the layout of weights or config changes. */
  version: number;
  /** The agent's full config, so load rebuilds the same networks. */
  config: C;
  /** The env spaces the agent was built for: they fix the input encoding and output width. */
  spaces: { observation: SpaceJson; action: SpaceJson };
  /** Free-form, JSON-serialisable facts about the run (steps trained, returns, backend). */
  meta: Record<string, unknown>;
}

function isNumberList(x: unknown): x is number[] {
  return Array.isArray(x) && x.every((v) => typeof v === 'number');
}

/** Checks the envelope of an artifact (kind, version, weight lists) before an agent reads it. */
export function checkArtifact<K extends string>(
  raw: unknown,
  kind: K,
  version: number,
): DeepArtifact<K> {
  if (typeof raw !== 'object' || raw === null) {
    throw new ArtifactError('artifact', 'artifact must be an object');
  }
  const a = raw as Partial<DeepArtifact>;
  if (a.kind !== kind) {
    throw new ArtifactError('kind', `artifact kind must be '${kind}', got '${String(a.kind)}'`);
  }
  if (a.version !== version) {
    throw new ArtifactError(
      'version',
      `${kind} artifact version must be ${version}, got ${String(a.version)}`,
    );
  }
  if (typeof a.config !== 'object' || a.config === null) {
    throw new ArtifactError('config', `${kind} artifact config must be an object`);
  }
  if (typeof a.spaces !== 'object' || a.spaces === null) {
    throw new ArtifactError('spaces', `${kind} artifact spaces must be an object`);
  }
  spaceFromJson(a.spaces.observation, 'spaces.observation');
  spaceFromJson(a.spaces.action, 'spaces.action');
  if (!Array.isArray(a.weights) || !a.weights.every(isNumberList)) {
    throw new ArtifactError('weights', `${kind} artifact weights must be lists of numbers`);
  }
  if (!Array.isArray(a.shapes) || !a.shapes.every(isNumberList)) {
    throw new ArtifactError('shapes', `${kind} artifact shapes must be lists of numbers`);
  }
  if (a.shapes.length !== a.weights.length) {
    throw new ArtifactError(
      'shapes',
      `${kind} artifact has ${a.shapes.length} shapes for ${a.weights.length} weights`,
    );
  }
  return { ...(a as DeepArtifact<K>), meta: a.meta ?? {} };
}

/**
 * A training counter saved in `meta` (envSteps, gradientSteps, updates), so a loaded agent
 * resumes its schedules where the saved one stood: an integer >= 0, or 0 when the artifact has
 * none (one written by hand). Anything else refuses the load (ArtifactError naming the field).
 */
export function metaCounter(meta: Record<string, unknown>, name: string): number {
  const v = meta[name];
  if (v === undefined) return 0;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new ArtifactError(
      `meta.${name}`,
      `meta.${name} must be an integer >= 0, got ${JSON.stringify(v)}`,
    );
  }
  return v;
}

/** Concatenates the weights of several networks into one artifact list (actor, then critic). */
export function joinWeights(parts: readonly WeightArrays[]): WeightArrays {
  return {
    shapes: parts.flatMap((p) => p.shapes),
    weights: parts.flatMap((p) => p.weights),
  };
}

/** Splits an artifact's weight list back into networks holding `counts[i]` tensors each. */
export function splitWeights(all: WeightArrays, counts: readonly number[]): WeightArrays[] {
  const total = counts.reduce((a, b) => a + b, 0);
  if (all.weights.length !== total) {
    throw new ArtifactError(
      'weights',
      `expected ${total} weight tensors, got ${all.weights.length}`,
    );
  }
  let at = 0;
  return counts.map((n) => {
    const part = { shapes: all.shapes.slice(at, at + n), weights: all.weights.slice(at, at + n) };
    at += n;
    return part;
  });
}
