// Rebuilds a bandit from an artifact alone: the kind picks the class, the config constructs
// it, load restores the statistics.
import { ArtifactError, checkArtifact, type Artifact, type Bandit } from '../core/index.ts';
import { LinUcb, type LinUcbConfig } from './linucb.ts';
import { ThompsonSampling, type ThompsonConfig } from './thompson.ts';
import { Ucb1, type Ucb1Config } from './ucb1.ts';

const MAKERS: Record<string, (config: unknown) => Bandit> = {
  [Ucb1.KIND]: (c) => new Ucb1(c as Ucb1Config),
  [ThompsonSampling.KIND]: (c) => new ThompsonSampling(c as ThompsonConfig),
  [LinUcb.KIND]: (c) => new LinUcb(c as LinUcbConfig),
};

export async function restoreBandit(a: Artifact): Promise<Bandit> {
  const make = MAKERS[a?.kind];
  if (!make)
    throw new ArtifactError('kind', `restoreBandit: unknown bandit kind ${String(a?.kind)}`);
  const bandit = make(checkArtifact(a, a.kind, a.version).config);
  await bandit.load(a);
  return bandit;
}
