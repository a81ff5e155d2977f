// Checking an artifact before it is stored: a JSON object of bounded size and depth that either
// names a heuristic of its kind (`{ heuristic: 'srpt' }`) or is a learned artifact in the
// learners' envelope (`{ kind, version, config, state }`), with optional `meta`. A malformed one
// is refused with the field inside the artifact and the rule it broke, before anything is
// written. Whether a learned artifact can run is checked later, when it is evaluated.
import { createHash } from 'node:crypto';
import { ALL_CACHE_POLICY_NAMES } from '../../policies/cache/types.ts';
import { SCHEDULING_POLICY_NAMES } from '../../policies/scheduling/names.ts';
import { ArtifactInvalidError } from './errors.ts';
import type { PolicyArtifact, PolicyKind } from './model.ts';

/** Heuristics a `{ heuristic }` artifact may name, per kind (the policies/ factories' names). */
export const HEURISTICS: Record<PolicyKind, readonly string[]> = {
  scheduling: SCHEDULING_POLICY_NAMES,
  cache: ALL_CACHE_POLICY_NAMES,
  placement: ['hash', 'greedy'],
};

export const ARTIFACT_BYTES_MAX = 256 * 1024;
const DEPTH_MAX = 32;
/** Values (object entries and array items) walked at most: bounds the check's own cost. */
const NODES_MAX = 200_000;
const FIELDS = new Set(['heuristic', 'kind', 'version', 'config', 'state', 'meta']);
const LEARNED_KIND_RE = /^[a-z][a-z0-9_.-]{0,99}$/;

export interface CheckedArtifact {
  artifact: PolicyArtifact;
  bytes: number;
  sha256: string;
  summary: string;
}

function bad(field: string, rule: string, message: string): ArtifactInvalidError {
  return new ArtifactInvalidError(`${field}: ${message}`, field, rule);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Walks the value: finite numbers only, bounded depth and size (values counted in `seen`). */
function walk(v: unknown, field: string, depth: number, seen: { nodes: number }): void {
  if (++seen.nodes > NODES_MAX)
    throw bad('artifact', 'max_values', `holds more than ${NODES_MAX} values`);
  if (depth > DEPTH_MAX) throw bad(field, 'max_depth', `nests deeper than ${DEPTH_MAX} levels`);
  if (typeof v === 'number' && !Number.isFinite(v))
    throw bad(field, 'finite', `must be a finite number, got ${v}`);
  if (v === undefined || typeof v === 'function' || typeof v === 'bigint' || typeof v === 'symbol')
    throw bad(field, 'json', `must be JSON, got ${typeof v}`);
  if (Array.isArray(v)) {
    v.forEach((x, i) => walk(x, `${field}[${i}]`, depth + 1, seen));
  } else if (isObject(v)) {
    for (const [k, x] of Object.entries(v)) walk(x, `${field}.${k}`, depth + 1, seen);
  }
}

/** Checks `raw` as an artifact of a policy of `kind`; throws ArtifactInvalidError. */
export function checkArtifact(
  kind: PolicyKind,
  raw: unknown,
  bytesMax: number = ARTIFACT_BYTES_MAX,
): CheckedArtifact {
  if (!isObject(raw)) throw bad('artifact', 'type', 'must be a JSON object');
  walk(raw, 'artifact', 0, { nodes: 0 });
  const text = JSON.stringify(raw);
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > bytesMax)
    throw bad('artifact', 'max_bytes', `is ${bytes} bytes as JSON; the bound is ${bytesMax}`);
  for (const k of Object.keys(raw))
    if (!FIELDS.has(k))
      throw bad(`artifact.${k}`, 'unknown_field', `is not a field of an artifact`);
  if (raw['meta'] !== undefined && !isObject(raw['meta']))
    throw bad('artifact.meta', 'type', 'must be an object');

  const hasHeuristic = raw['heuristic'] !== undefined;
  const hasKind = raw['kind'] !== undefined;
  if (hasHeuristic === hasKind)
    throw bad(
      'artifact',
      'one_of',
      'must name a heuristic ({ heuristic }) or be a learned artifact ({ kind, version, config, state }), not both or neither',
    );
  let summary: string;
  if (hasHeuristic) {
    const h = raw['heuristic'];
    const names = HEURISTICS[kind];
    if (typeof h !== 'string' || !names.includes(h))
      throw bad(
        'artifact.heuristic',
        'enum',
        `must be a ${kind} heuristic (${names.join(', ')}), got ${JSON.stringify(h)}`,
      );
    for (const k of ['version', 'config', 'state'])
      if (raw[k] !== undefined)
        throw bad(`artifact.${k}`, 'heuristic_only', 'a heuristic artifact has no ' + k);
    summary = `heuristic:${h}`;
  } else {
    const k = raw['kind'];
    if (typeof k !== 'string' || !LEARNED_KIND_RE.test(k))
      throw bad('artifact.kind', 'pattern', `must match ${LEARNED_KIND_RE.source}`);
    const v = raw['version'];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1)
      throw bad('artifact.version', 'integer', 'must be an integer >= 1');
    if (!isObject(raw['config'])) throw bad('artifact.config', 'type', 'must be an object');
    if (!isObject(raw['state'])) throw bad('artifact.state', 'type', 'must be an object');
    summary = `${k}@${v}`;
  }
  return {
    artifact: JSON.parse(text) as PolicyArtifact,
    bytes,
    sha256: createHash('sha256').update(text).digest('hex'),
    summary,
  };
}
