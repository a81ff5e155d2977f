// The checkpoint of a trained scorer: the learners' artifact envelope (kind, version, config,
// state) with the plain-number net and the names of the features it reads, in order. Loading
// refuses a net trained on another feature layout: a silently misread column would be a
// policy that decides on the wrong facts. Pure JSON, no TF.js: the live side loads it as is.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { checkArtifact } from '../core/artifact.ts';
import { ArtifactError } from '../core/errors.ts';
import type { Artifact } from '../core/types.ts';
import { checkScoreNet, cloneScoreNet, type ScoreNet } from './net.ts';

export const SCORER_ARTIFACT_VERSION = 1;

export interface ScorerState {
  featureNames: string[];
  net: ScoreNet;
}

export interface ScorerArtifact<C = Record<string, unknown>> extends Artifact<C, ScorerState> {
  /** Facts about the run that made it (seeds, timings, validation scores). */
  meta: Record<string, unknown>;
}

export function scorerArtifact<C extends object>(
  kind: string,
  featureNames: readonly string[],
  net: ScoreNet,
  config: C,
  meta: Record<string, unknown> = {},
): ScorerArtifact<C> {
  return {
    kind,
    version: SCORER_ARTIFACT_VERSION,
    config: structuredClone(config),
    state: { featureNames: [...featureNames], net: cloneScoreNet(net) },
    meta: structuredClone(meta),
  };
}

/** Checks kind, version, feature names and the net; returns the artifact (state checked). */
export function checkScorerArtifact(
  raw: unknown,
  kind: string,
  featureNames: readonly string[],
): ScorerArtifact {
  const a = checkArtifact(raw, kind, SCORER_ARTIFACT_VERSION) as ScorerArtifact;
  const names = (a.state as Partial<ScorerState>).featureNames;
  if (
    !Array.isArray(names) ||
    names.length !== featureNames.length ||
    names.some((n, i) => n !== featureNames[i])
  ) {
    throw new ArtifactError(
      'state.featureNames',
      `${kind}: artifact reads features [${String(names)}], this build has [${featureNames.join(', ')}]`,
    );
  }
  const net = checkScoreNet(a.state.net, 'state.net');
  if (net.inputSize !== featureNames.length) {
    throw new ArtifactError(
      'state.net.inputSize',
      `${kind}: net reads ${net.inputSize} inputs for ${featureNames.length} features`,
    );
  }
  return { ...a, meta: typeof a.meta === 'object' && a.meta !== null ? a.meta : {} };
}

/** Reads a JSON artifact file; a parse failure names the file. */
export function readArtifactFile(path: string): unknown {
  const text = readFileSync(path, 'utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new ArtifactError('artifact', `${path}: not JSON (${(err as Error).message})`);
  }
}

/**
 * Writes an artifact as JSON laid out the way the repository's formatter checks it (committed
 * artifacts pass `prettier --check`). Prettier is a dev tool: where it is absent, plain JSON.
 */
export async function writeArtifactFile(path: string, artifact: unknown): Promise<void> {
  let text = JSON.stringify(artifact) + '\n';
  try {
    const prettier = await import('prettier');
    const options = (await prettier.resolveConfig(path)) ?? {};
    text = await prettier.format(text, { ...options, filepath: path });
  } catch {
    // no formatter available: the plain JSON is the same artifact
  }
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
}
