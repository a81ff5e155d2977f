// Rebuilds a tuner from an artifact alone (the policies table stores artifacts, not objects):
// the artifact's kind picks the class, its config constructs it, load restores the state.
import { ArtifactError, checkArtifact, type Artifact, type Tuner } from '../core/index.ts';
import { BayesOpt, type BayesOptConfig } from './bayesopt.ts';
import { CrossEntropy, type CemConfig } from './cem.ts';
import { GridSearch, type GridSearchConfig } from './grid.ts';
import { RandomSearch, type RandomSearchConfig } from './random.ts';

const MAKERS: Record<string, (config: unknown) => Tuner> = {
  [RandomSearch.KIND]: (c) => new RandomSearch(c as RandomSearchConfig),
  [GridSearch.KIND]: (c) => new GridSearch(c as GridSearchConfig),
  [CrossEntropy.KIND]: (c) => new CrossEntropy(c as CemConfig),
  [BayesOpt.KIND]: (c) => new BayesOpt(c as BayesOptConfig),
};

export async function restoreTuner(a: Artifact): Promise<Tuner> {
  const make = MAKERS[a?.kind];
  if (!make) throw new ArtifactError('kind', `restoreTuner: unknown tuner kind ${String(a?.kind)}`);
  const tuner = make(checkArtifact(a, a.kind, a.version).config);
  await tuner.load(a);
  return tuner;
}
