// Writing a run's files under experiments/results/<name>/ (result.json with the date and
// machine, result.md, one learning-curve and one bar SVG per study) and the slim object the
// CLI prints with --json: {experiment, metric, direction, results: [{name, kind, mean, std,
// seeds}], best, studies}. Extra detail (trajectories, configurations) stays in result.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { renderMarkdown } from './markdown.ts';
import { studyPlots } from './plots.ts';
import { writeResultFile } from './report.ts';
import type { EntryResult, ExperimentResult, StudyResult } from './results.ts';
import { DEFAULT_JOBS_LOAD } from './runner.ts';
import { PROJECT_ROOT } from './workloads.ts';

/** The committed results: experiments/results/<name>/. */
export const RESULTS_DIR = resolve(PROJECT_ROOT, 'experiments', 'results');

/**
 * Where a run writes by default: experiments/results/<name> (the committed results), or
 * <name>-<trace> for another trace (the file name without its last extension; all of it when
 * that leaves nothing, as for `.keys`), plus -load<X> for a jobs trace replayed at another load
 * than the default. A quick run is a check, not a result: it goes to the system's temp dir, so
 * it never overwrites or clutters the committed results.
 */
export function defaultOutDir(
  name: string,
  quick: boolean,
  tracePath?: string,
  load?: number,
): string {
  const file = tracePath === undefined ? '' : basename(tracePath);
  const stem = file.replace(/\.[^.]*$/, '') || file;
  const suffix =
    (stem ? `-${stem.replace(/[^A-Za-z0-9_.-]/g, '_')}` : '') +
    (load === undefined || load === DEFAULT_JOBS_LOAD ? '' : `-load${load}`);
  if (quick) return join(tmpdir(), 'knobos-exp', `${name}${suffix}-quick`);
  return join(RESULTS_DIR, `${name}${suffix}`);
}

export interface WrittenFiles {
  dir: string;
  json: string;
  markdown: string;
  svgs: string[];
}

export async function writeOutputs(
  r: ExperimentResult,
  dir: string,
  command: string,
  extra: Record<string, unknown> = {},
): Promise<WrittenFiles> {
  mkdirSync(dir, { recursive: true });
  const json = writeResultFile(join(dir, 'result.json'), r.experiment, { ...extra, ...r });
  const plots = new Map<string, string[]>();
  const svgs: string[] = [];
  for (const s of r.studies) {
    const files = await studyPlots(s);
    plots.set(s.name, [...files.keys()]);
    for (const [name, svg] of files) {
      const p = join(dir, name);
      writeFileSync(p, svg + '\n');
      svgs.push(p);
    }
  }
  const markdown = join(dir, 'result.md');
  writeFileSync(markdown, renderMarkdown(r, plots, command));
  return { dir, json, markdown, svgs };
}

function slimEntry(e: EntryResult): Pick<EntryResult, 'name' | 'kind' | 'mean' | 'std' | 'seeds'> {
  return { name: e.name, kind: e.kind, mean: e.mean, std: e.std, seeds: e.seeds };
}

function slimStudy(s: StudyResult) {
  return {
    name: s.name,
    metric: s.metric,
    direction: s.direction,
    results: s.results.map(slimEntry),
    best: s.best,
    comparisons: s.comparisons.map((c) => ({
      type: c.type,
      verdict: c.verdict,
      holds: c.holds,
      text: c.text,
    })),
    ...(s.seeds ? { seeds: s.seeds } : {}),
  };
}

/** The --json object of one experiment. */
export function cliSummary(r: ExperimentResult) {
  return {
    experiment: r.experiment,
    metric: r.metric,
    direction: r.direction,
    results: r.results.map(slimEntry),
    best: r.best,
    seeds: r.seeds,
    ...(r.budget === undefined ? {} : { budget: r.budget }),
    quick: r.quick,
    ...(r.load === undefined ? {} : { load: r.load }),
    studies: r.studies.map(slimStudy),
  };
}
