// Re-derives the claims of stored results without re-running anything:
//
//   npx tsx experiments/rederive.ts [<name>...]     (default: every result folder)
//
// A result.json keeps every seed's value, every tuner's best-so-far trajectory and every
// held-out score, which is all the claims are computed from (experiments/derived.ts). After
// the claim logic or a spec's claims change, this recomputes each study's claims, the entries
// that beat its oracle and its tuners' evaluation counts (from their trajectories), takes each
// study's note from the spec, and rewrites result.json (its date and machine kept, as the
// values are the run's), result.md, the plots and the results index. Only results of a full
// run are re-derived: a quick run's folder is left alone.
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { deriveStudy } from './derived.ts';
import { renderMarkdown } from './markdown.ts';
import { RESULTS_DIR } from './output.ts';
import { studyPlots } from './plots.ts';
import { readResultFile } from './report.ts';
import type { ExperimentResult, StudyResult } from './results.ts';
import type { ExperimentSpec } from './spec.ts';
import { experimentByName } from './specs/index.ts';
import { writeResultsIndex } from './summary.ts';

/** One study recomputed from its stored entries and the spec's current claims. */
export function rederiveStudy(stored: StudyResult, spec: ExperimentSpec<never>): StudyResult {
  const s = spec.studies.find((x) => x.name === stored.name);
  if (!s) throw new RangeError(`study ${stored.name} is not in experiment ${spec.name}'s spec`);
  if (s.type !== stored.type) throw new RangeError(`study ${stored.name} changed type`);
  const results = stored.results.map((e) =>
    // A tuner's evaluations are what its runs spent: its longest trajectory.
    e.kind === 'learner' && e.trajectories && e.trajectories.length > 0
      ? { ...e, evaluations: Math.max(...e.trajectories.map((t) => t.length)) }
      : e,
  );
  const derived = deriveStudy({ ...stored, results }, s.comparisons);
  const note = s.note ?? stored.note;
  // The stored key order (result.json diffs stay small), the derived keys where they were.
  const ordered: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(stored)) {
    if (k === 'oracle_beaten_by') continue;
    if (k === 'comparisons') {
      if (derived.oracle_beaten_by) ordered['oracle_beaten_by'] = derived.oracle_beaten_by;
      ordered['comparisons'] = derived.comparisons;
    } else if (k === 'results') ordered[k] = results;
    else if (k === 'note') ordered[k] = note;
    else ordered[k] = v;
  }
  return ordered as unknown as StudyResult;
}

/** A stored result with every study re-derived. */
export function rederiveResult(stored: ExperimentResult): ExperimentResult {
  const spec = experimentByName(stored.experiment);
  if (!spec) throw new RangeError(`no experiment ${stored.experiment} to re-derive`);
  const studies = stored.studies.map((s) => rederiveStudy(s, spec));
  const head = studies[0] as StudyResult;
  return { ...stored, results: head.results, studies };
}

/** The command result.md says produced the run (kept on re-derivation). */
function storedCommand(dir: string, name: string): string {
  const md = join(dir, 'result.md');
  const m = existsSync(md) ? /Produced by `([^`]*)`/.exec(readFileSync(md, 'utf8')) : null;
  return m?.[1] ?? `npx knobos exp ${name}`;
}

/** Re-derives `dir`'s result.json and rewrites its files; false when it is no full run's result. */
export async function rederiveDir(dir: string, command: string): Promise<boolean> {
  const file = join(dir, 'result.json');
  if (!existsSync(file)) return false;
  const stored = readResultFile<Record<string, unknown>>(file);
  if (!Array.isArray(stored['studies']) || stored['quick'] !== false) return false;
  const r = rederiveResult(stored as unknown as ExperimentResult);
  const body = { ...stored, ...r };
  writeFileSync(file, JSON.stringify(body, null, 2) + '\n');
  const plots = new Map<string, string[]>();
  for (const s of r.studies) {
    const files = await studyPlots(s);
    plots.set(s.name, [...files.keys()]);
    for (const [name, svg] of files) writeFileSync(join(dir, name), svg + '\n');
  }
  writeFileSync(
    join(dir, 'result.md'),
    renderMarkdown(r, plots, storedCommand(dir, r.experiment), command),
  );
  return true;
}

async function main(argv: string[]): Promise<number> {
  const names =
    argv.length > 0
      ? argv
      : readdirSync(RESULTS_DIR, { withFileTypes: true })
          .filter((d) => d.isDirectory())
          .map((d) => d.name)
          .sort();
  for (const name of names) {
    const dir = join(RESULTS_DIR, name);
    const done = await rederiveDir(dir, `npx tsx experiments/rederive.ts ${name}`);
    process.stderr.write(`${name}: ${done ? 're-derived' : 'skipped (no full-run result)'}\n`);
  }
  writeResultsIndex(RESULTS_DIR);
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(
        `rederive: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
      );
      process.exitCode = 1;
    },
  );
}
