// A study's entry made by hand for the claim and plot tests: per-seed values (seeds 1..n)
// summarised as the runner summarises them, plus any other fields of an EntryResult.
import { summarise, type EntryResult } from '../../experiments/results.ts';

export function entry(
  name: string,
  kind: EntryResult['kind'],
  values: number[],
  extra: Partial<EntryResult> = {},
): EntryResult {
  const seeds = values.map((_, i) => i + 1);
  return { name, kind, ...summarise(seeds, values), ...extra };
}
