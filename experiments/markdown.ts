// result.md: the experiment as a reader wants it: per study a table of every entry (mean,
// spread, gap to the oracle, held-out score, every seed's value), which entries beat the
// oracle or are identical to another, the claims with their verdicts, and the plots.
import { seedSpan } from '../learners/core/script.ts';
import { identicalGroups } from './derived.ts';
import type { ComparisonResult, EntryResult, ExperimentResult, StudyResult } from './results.ts';

/** Four significant digits, no exponent for everyday magnitudes. */
export function fmt(x: number | undefined): string {
  if (x === undefined || !Number.isFinite(x)) return '–';
  const a = Math.abs(x);
  if (a !== 0 && (a < 1e-3 || a >= 1e7)) return x.toExponential(3);
  return a >= 1000 ? x.toFixed(1) : Number(x.toPrecision(4)).toString();
}

const pct = (x: number | undefined): string =>
  x === undefined || !Number.isFinite(x) ? '–' : `${(x * 100).toFixed(1)}%`;

function row(e: EntryResult, s: StudyResult): string {
  const perSeed = e.seeds.map((v) => fmt(v.value));
  const distinct = new Set(perSeed);
  // Past a dozen seeds the list stops being readable: their range instead (all in result.json).
  const seeds =
    distinct.size === 1
      ? `${perSeed[0]} (all seeds)`
      : perSeed.length > 12
        ? `${perSeed.length} seeds, ${fmt(Math.min(...e.seeds.map((v) => v.value)))} to ${fmt(Math.max(...e.seeds.map((v) => v.value)))}`
        : perSeed.join(', ');
  const cells = [
    e.name,
    e.kind,
    fmt(e.mean),
    fmt(e.std),
    ...(s.oracle ? [e.name === s.oracle ? '(oracle)' : pct(e.gap_to_oracle)] : []),
    ...(s.test_seeds && s.test_seeds.length > 0 ? [e.test ? fmt(e.test.mean) : '–'] : []),
    seeds,
  ];
  return `| ${cells.join(' | ')} |`;
}

function table(s: StudyResult): string[] {
  const head = [
    'entry',
    'kind',
    'mean',
    'std',
    ...(s.oracle ? ['gap to oracle'] : []),
    ...(s.test_seeds && s.test_seeds.length > 0 ? ['held-out mean'] : []),
    'per seed',
  ];
  return [
    `| ${head.join(' | ')} |`,
    `|${head.map(() => '---').join('|')}|`,
    ...s.results.map((e) => row(e, s)),
  ];
}

/** A claim's verdict as result.md and the index show it. */
export function verdictLabel(c: Pick<ComparisonResult, 'verdict' | 'holds'>): string {
  // Results written before verdicts existed have only `holds`.
  return (c.verdict as string | undefined) ?? (c.holds ? 'holds' : 'does not hold');
}

/** How a tuning study was run: the space, the budget, the seeds, the oracle. */
function tuningSetup(s: StudyResult): string[] {
  const knobs = (s.space ?? []).map((k) => `\`${k.name}\` ${k.domain}`).join('; ');
  const test = s.test_seeds ?? [];
  const gridPoints = s.results.find((e) => e.kind === 'oracle')?.evaluations;
  const short = s.results
    .filter((e) => e.kind === 'learner' && (e.evaluations ?? Infinity) < (s.budget ?? 0))
    .map((e) => `${e.name} stopped after ${e.evaluations}: it ran out of points`);
  return [
    `Searched knobs: ${knobs}.`,
    '',
    [
      `Each tuner run has ${s.budget} evaluations${short.length > 0 ? ` (${short.join('; ')})` : ''}${s.tuner_scale === 'log' ? ` and sees log(${s.metric}) (BO's GP models it on that scale; the tables are in ${s.metric} itself)` : ''}.`,
      `All entries are scored on the training objective (workload seeds ${(s.train_seeds ?? []).join(', ')}), one fixed function: a tuner's mean and std are over its seeds (independent runs) on that one objective, not over workloads; the baselines and the oracle have no spread.`,
      ...(test.length > 0
        ? [
            `"held-out mean" re-scores each final configuration on workload seeds ${test.join(', ')}.`,
          ]
        : []),
      `The oracle is the exhaustive grid over the same space${gridPoints ? ` (${gridPoints} points)` : ''}.`,
    ].join(' '),
  ];
}

/** Entries that beat the oracle, and entries identical to another on every seed. */
function caveats(s: StudyResult): string[] {
  const lines: string[] = [];
  if (s.oracle && s.oracle_beaten_by && s.oracle_beaten_by.length > 0) {
    lines.push(
      `**Oracle beaten**: ${s.oracle_beaten_by.join(', ')} reached values better than ` +
        `${s.oracle} on some seed, so ${s.oracle} is a reference, not the optimum` +
        `${s.type === 'tuning' ? '; the claims measure against the best known value instead' : ''}.`,
    );
  }
  for (const g of identicalGroups(s.results)) {
    lines.push(`Identical on every seed: ${g.join(' = ')}.`);
  }
  return lines.flatMap((l) => ['', l]);
}

function studySection(s: StudyResult, plots: readonly string[]): string[] {
  const dir = s.direction === 'min' ? 'lower is better' : 'higher is better';
  const lines = [`## ${s.title}`, ''];
  lines.push(
    `Metric: \`${s.metric}\`${s.unit ? ` (${s.unit})` : ''}, ${dir}.${s.note ? ` ${s.note}` : ''}`,
  );
  if (s.type === 'tuning') lines.push('', ...tuningSetup(s));
  if (s.seeds) lines.push('', `This study runs on its own workload seeds: ${seedSpan(s.seeds)}.`);
  lines.push('', ...table(s));
  if (s.best) lines.push('', `Best non-oracle entry: **${s.best.name}** (${fmt(s.best.mean)}).`);
  lines.push(...caveats(s));
  if (s.comparisons.length > 0) {
    lines.push('', 'Claims (verdicts: holds, fails, inconclusive, tied, not judged):', '');
    for (const c of s.comparisons) lines.push(`- **${verdictLabel(c)}**: ${c.text}`);
  }
  if (plots.length > 0) lines.push('', plots.map((p) => `![${p}](${p})`).join('\n'));
  return [...lines, ''];
}

export function renderMarkdown(
  r: ExperimentResult,
  plots: ReadonlyMap<string, readonly string[]>,
  command: string,
  /** When the claims were recomputed from result.json later: the command that did it. */
  rederivedBy?: string,
): string {
  const trace = r.workload.trace
    ? `trace \`${r.workload.trace.path}\` (format ${r.workload.trace.format}); ${r.workload.description}`
    : r.workload.description;
  const lines = [
    `# ${r.title}`,
    '',
    `Workload: ${trace}. Seeds ${r.seeds.join(', ')}` +
      // The budget only means something where a tuner ran (as in summary.ts).
      `${r.studies.some((s) => s.type === 'tuning') ? `; tuner budget ${r.budget} evaluations` : ''}` +
      `${r.quick ? ' (quick run)' : ''}. Produced by \`${command}\`; the numbers are in result.json.` +
      (rederivedBy
        ? ` The claims, plots and this page were re-derived from the values stored in result.json by \`${rederivedBy}\`.`
        : ''),
    '',
  ];
  for (const s of r.studies) lines.push(...studySection(s, plots.get(s.name) ?? []));
  return lines.join('\n');
}
