// Checks shared by every learner's load(): the artifact's kind and version, and the shape of
// the numeric arrays in its state, each failure naming the field.
import { ArtifactError } from './errors.ts';
import type { Artifact } from './types.ts';

/** Throws ArtifactError unless `a` is an artifact of this kind and version. */
export function checkArtifact(a: unknown, kind: string, version: number): Artifact {
  if (typeof a !== 'object' || a === null) {
    throw new ArtifactError('artifact', `${kind}: artifact must be an object`);
  }
  const art = a as Partial<Artifact>;
  if (art.kind !== kind) {
    throw new ArtifactError('kind', `${kind}: cannot load an artifact of kind ${String(art.kind)}`);
  }
  if (art.version !== version) {
    throw new ArtifactError(
      'version',
      `${kind}: artifact version ${String(art.version)} is not the supported ${version}`,
    );
  }
  if (typeof art.config !== 'object' || art.config === null) {
    throw new ArtifactError('config', `${kind}: artifact config must be an object`);
  }
  if (typeof art.state !== 'object' || art.state === null) {
    throw new ArtifactError('state', `${kind}: artifact state must be an object`);
  }
  return art as Artifact;
}

/** Throws ArtifactError unless `v` is an array of `length` finite numbers. */
export function checkNumbers(kind: string, field: string, v: unknown, length?: number): number[] {
  const ok =
    Array.isArray(v) &&
    (length === undefined || v.length === length) &&
    v.every((x) => typeof x === 'number' && Number.isFinite(x));
  if (!ok) {
    const want = length === undefined ? 'finite numbers' : `${length} finite numbers`;
    throw new ArtifactError(field, `${kind}: state.${field} must be ${want}`);
  }
  return v as number[];
}
