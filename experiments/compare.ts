// A comparison study: every entry (heuristic policy, learned policy, oracle) runs once per seed
// and reports metrics; the study's metric is read from them. An entry marked seedInvariant (a
// deterministic replay of a fixed trace) runs once and its value is repeated for every seed,
// which the table then shows as a spread of 0.
import type { Metrics } from '../envs/core/index.ts';
import { addOracleGaps, deriveStudy } from './derived.ts';
import { bestContender, mean, summarise, type EntryResult, type StudyResult } from './results.ts';
import { titleOf, type ComparisonStudySpec } from './spec.ts';
import type { StudyOptions } from './tuning.ts';

function meanMetrics(runs: readonly Metrics[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const name of Object.keys(runs[0] ?? {})) {
    const v = mean(runs.map((m) => m[name] ?? Number.NaN));
    if (Number.isFinite(v)) out[name] = v;
  }
  return out;
}

export async function runComparisonStudy<W>(
  spec: ComparisonStudySpec<W>,
  w: W,
  opts: Omit<StudyOptions, 'budget'> & { ownSeeds?: boolean },
): Promise<StudyResult> {
  const { seeds, ctx, reporter } = opts;
  const oracles = spec.entries.filter((e) => e.kind === 'oracle');
  if (oracles.length > 1) throw new RangeError(`study ${spec.name}: more than one oracle entry`);
  reporter.progress.start(spec.name, spec.entries.length * seeds.length);
  const t0 = performance.now();
  const entries: EntryResult[] = [];
  for (const e of spec.entries) {
    const runs: Metrics[] = [];
    for (const seed of seeds) {
      const m = e.seedInvariant && runs[0] ? runs[0] : await e.run(w, seed, ctx);
      const v = m[spec.metric];
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        throw new RangeError(
          `study ${spec.name}: entry ${e.name} reported no finite ${spec.metric}`,
        );
      }
      runs.push(m);
      reporter.progress.tick(1, `${e.name} seed ${seed}`);
    }
    const values = runs.map((m) => m[spec.metric] as number);
    entries.push({
      name: e.name,
      kind: e.kind,
      ...summarise(seeds, values),
      metrics: meanMetrics(runs),
    });
    reporter.log.info({ study: spec.name, entry: e.name, mean: mean(values) }, 'entry finished');
  }
  reporter.progress.done();
  reporter.log.info(
    { study: spec.name, elapsed_s: Math.round((performance.now() - t0) / 100) / 10 },
    'study finished',
  );
  const oracle = oracles[0]?.name;
  addOracleGaps(entries, spec.direction, oracle);
  const derived = deriveStudy(
    { type: 'comparison', results: entries, direction: spec.direction, oracle },
    spec.comparisons,
  );
  return {
    name: spec.name,
    title: titleOf(spec.title, ctx),
    type: 'comparison',
    metric: spec.metric,
    direction: spec.direction,
    ...(spec.unit ? { unit: spec.unit } : {}),
    ...(spec.note ? { note: spec.note } : {}),
    results: entries,
    best: bestContender(entries, spec.direction),
    ...(oracle ? { oracle } : {}),
    ...derived,
    ...(opts.ownSeeds ? { seeds: [...seeds] } : {}),
  };
}
