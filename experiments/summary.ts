// experiments/results/README.md: one page over every result folder, so a reader sees every
// experiment's headline numbers and claims without opening each result.md. Rebuilt from the
// result.json files after each run that writes into experiments/results. A quick run there
// (only the library can write one: the CLI refuses --quick with an --out in this folder) is
// marked as such, its claims left out: it checks the plumbing and judges nothing.
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fmt, verdictLabel } from './markdown.ts';
import { readResultFile } from './report.ts';
import type { ExperimentResult, StudyResult } from './results.ts';

function studyLines(dir: string, s: StudyResult): string[] {
  const oracle = s.results.find((e) => e.name === s.oracle);
  const head =
    `- **${s.title}** (\`${s.metric}\`, ${s.direction === 'min' ? 'lower' : 'higher'} is better): ` +
    `${s.seeds ? `${s.seeds.length} seeds of its own; ` : ''}` +
    `best ${s.best ? `${s.best.name} ${fmt(s.best.mean)}` : '–'}` +
    `${oracle ? `; oracle ${oracle.name} ${fmt(oracle.mean)}` : ''}. [details](${dir}/result.md)`;
  return [head, ...s.comparisons.map((c) => `  - ${verdictLabel(c)}: ${c.text}`)];
}

function isExperimentResult(r: Partial<ExperimentResult>): r is ExperimentResult {
  return Array.isArray(r.studies) && typeof r.workload === 'object' && Array.isArray(r.seeds);
}

/** Rewrites `<resultsDir>/README.md` from the result.json files below it; returns its path. */
export function writeResultsIndex(resultsDir: string): string {
  const dirs = readdirSync(resultsDir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(resultsDir, d.name, 'result.json')))
    .map((d) => d.name)
    .sort();
  const lines = [
    '# Experiment results',
    '',
    'Written by `npx knobos exp <name>` (`npm run exp:<name>`); each folder holds result.json,',
    'result.md and the SVG plots. Verdicts: holds or fails when a 95% interval or test decides',
    '(paired confidence interval where seeds are workload draws; exact rank test where they are',
    'tuner seeds on one fixed objective), inconclusive when it does not, tied when two entries',
    'are identical on every seed, not judged when the runs cannot answer the claim. See',
    'experiments/README.md and each result.md.',
    '',
  ];
  for (const dir of dirs) {
    const r = readResultFile<Partial<ExperimentResult>>(join(resultsDir, dir, 'result.json'));
    // Other writers keep their own reports here too (a learner's training report): only
    // results of this runner have studies and a workload.
    if (!isExperimentResult(r)) continue;
    const trace = r.workload.trace ? ` on \`${r.workload.trace.path}\`` : '';
    const tuned = r.studies.some((s) => s.type === 'tuning');
    const budget = tuned ? `, tuner budget ${r.budget} evaluations` : '';
    if (r.quick) {
      lines.push(
        `## ${r.title} (QUICK RUN: not a result)`,
        '',
        `[${dir}/](${dir}/result.md) holds a --quick run (a plumbing check on a slice of the ` +
          'workload); its claims are not listed. Re-run it without --quick.',
        '',
      );
      continue;
    }
    lines.push(`## ${r.title}`, '', `${r.seeds.length} seeds${budget}${trace}.`, '');
    for (const s of r.studies) lines.push(...studyLines(dir, s));
    lines.push('');
  }
  const path = join(resultsDir, 'README.md');
  writeFileSync(path, lines.join('\n'));
  return path;
}
