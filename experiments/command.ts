// `knobos exp <name>` and `npm run exp:<name>`: parse the options, run the experiment(s), write
// experiments/results/<name>/ and print a summary; with --json the last stdout line is one JSON
// object (experiments/report.ts). Progress and logs go to stderr.
import { isAbsolute, relative, resolve } from 'node:path';
import { defaultCacheFormat } from '../envs/loaders/cache-load.ts';
import { emitResult, writeErrorLine } from './report.ts';
import { parseFlagNumber, parseFlags, UsageError } from './flags.ts';
import { fmt, verdictLabel } from './markdown.ts';
import { RESULTS_DIR, cliSummary, defaultOutDir, writeOutputs } from './output.ts';
import { terminalReporter, type Reporter } from './progress.ts';
import type { ExperimentResult } from './results.ts';
import { MAX_BUDGET, MAX_SEEDS, runExperiment, type RunOptions } from './runner.ts';
import type { ExperimentSpec, TraceKind } from './spec.ts';
import { writeResultsIndex } from './summary.ts';
import { EXPERIMENT_NAMES, experimentByName } from './specs/index.ts';
import { TRACE_FORMATS, TraceOptionError } from './workloads.ts';

/** Whether the experiment runs a tuner, the only thing `--budget` sets. */
function tunes(studies: readonly { type: string }[]): boolean {
  return studies.some((s) => s.type === 'tuning');
}

const UNTUNED = EXPERIMENT_NAMES.filter((n) => !tunes(experimentByName(n)?.studies ?? []));
const NO_BUDGET =
  UNTUNED.length > 0 ? `;\n${' '.repeat(18)}not for ${UNTUNED.join(', ')} (no tuning study)` : '';

const USAGE = `usage: knobos exp <name> [--trace FILE --format FMT] [--seeds N] [--budget N]
                  [--quick] [--load X] [--out DIR] [--json]

  <name>          ${[...EXPERIMENT_NAMES, 'all'].join(', ')}
  --trace FILE    run on this trace instead of the default one
  --format FMT    its format: cache ${TRACE_FORMATS.cache.join('|')} (default: from its first line),
                  jobs ${TRACE_FORMATS.jobs.join('|')} (required), requests ${TRACE_FORMATS.requests.join('|')}
  --seeds N       seeds 1..N of every study, N in 1..${MAX_SEEDS} (default: the experiment's,
                  at least 5; a study may have more of its own)
  --budget N      evaluations per tuner run, in 1..${MAX_BUDGET} (default: the experiment's)${NO_BUDGET}
  --quick         few seeds, small budget, a slice of the workload: seconds
  --load X        offered load a jobs trace is replayed at (default 0.85)
  --out DIR       where to write result.json, result.md and the SVGs (default
                  experiments/results/<name>[-<trace>][-load<X>]; --quick: the temp dir,
                  and never inside experiments/results)
  --json          print one JSON object as the last line of stdout
`;

interface ExpArgs {
  names: string[];
  run: Omit<RunOptions, 'reporter'>;
  out: string | undefined;
  json: boolean;
}

/** `--seeds`, `--budget`: a count in 1..max, in decimal digits (a FlagError otherwise). */
function intOption(name: string, v: string | undefined, max: number): number | undefined {
  return v === undefined ? undefined : parseFlagNumber(name, v, { integer: true, min: 1, max });
}

function traceKind(spec: ExperimentSpec<never>): TraceKind | undefined {
  const k = spec.workload.accepts ?? spec.workload.kind;
  return k === 'generated' ? undefined : k;
}

function defaultFormat(kind: TraceKind, file: string): string {
  if (kind === 'cache') return defaultCacheFormat(file);
  if (kind === 'requests') return 'azure';
  throw new UsageError(`--format is required for a jobs trace (${TRACE_FORMATS.jobs.join(', ')})`);
}

function parse(argv: string[]): ExpArgs | 'help' {
  const { values, positionals } = parseFlags({
    args: argv,
    options: {
      trace: { type: 'string' },
      format: { type: 'string' },
      seeds: { type: 'string' },
      budget: { type: 'string' },
      load: { type: 'string' },
      out: { type: 'string' },
      quick: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: true,
  });
  if (values.help) return 'help';
  const [name, ...rest] = positionals;
  if (!name) throw new UsageError('an experiment name is required');
  if (rest.length > 0) throw new UsageError(`unexpected arguments: ${rest.join(' ')}`);
  const spec = experimentByName(name);
  if (name !== 'all' && !spec) {
    throw new UsageError(
      `unknown experiment ${name} (known: ${[...EXPERIMENT_NAMES, 'all'].join(', ')})`,
    );
  }
  const names = name === 'all' ? EXPERIMENT_NAMES : [name];
  if (values.format && !values.trace) throw new UsageError('--format needs --trace');
  let trace: RunOptions['trace'];
  if (values.trace) {
    if (names.length > 1) throw new UsageError('--trace needs one experiment, not all');
    const kind = traceKind(spec as ExperimentSpec<never>);
    if (!kind) throw new UsageError(`experiment ${name} takes no trace`);
    const format = values.format ?? defaultFormat(kind, values.trace);
    if (!TRACE_FORMATS[kind].includes(format)) {
      throw new UsageError(
        `--format for a ${kind} trace must be one of ${TRACE_FORMATS[kind].join(', ')}, got ${format}`,
      );
    }
    trace = { path: values.trace, format };
  }
  const load = loadOption(values.load);
  // A workload generated unless a jobs trace is given (placement) replays none without one: the
  // load was accepted and ignored.
  if (load !== undefined && spec && spec.workload.kind !== 'jobs') {
    if (spec.workload.accepts !== 'jobs')
      throw new UsageError(`--load: experiment ${name} replays no jobs trace`);
    if (!trace)
      throw new UsageError(
        `--load: experiment ${name} replays a jobs trace only when given one (--trace)`,
      );
  }
  if (values.out && names.length > 1) throw new UsageError('--out needs one experiment, not all');
  // A quick run is a plumbing check: it must never replace (or sit among) the committed results.
  if (values.quick && values.out && isUnder(resolve(values.out), RESULTS_DIR)) {
    throw new UsageError(
      `--out ${values.out} is inside ${RESULTS_DIR}: --quick runs may not write there ` +
        '(they are checks, not results); give --out another folder, or drop --quick',
    );
  }
  const seeds = intOption('seeds', values.seeds, MAX_SEEDS);
  const budget = intOption('budget', values.budget, MAX_BUDGET);
  // --budget sets the tuners' evaluations: an experiment with no tuning study has none to set.
  // (`all` passes it to the experiments that tune.)
  if (budget !== undefined && spec && !tunes(spec.studies)) {
    throw new UsageError(
      `--budget applies only to an experiment with a tuning study; ${name} has none`,
    );
  }
  return {
    names,
    run: {
      quick: values.quick,
      ...(seeds === undefined ? {} : { seeds }),
      ...(budget === undefined ? {} : { budget }),
      ...(trace ? { trace } : {}),
      ...(load === undefined ? {} : { load }),
    },
    out: values.out,
    json: values.json,
  };
}

/** Whether `path` is `dir` or below it (both absolute). */
function isUnder(path: string, dir: string): boolean {
  const rel = relative(dir, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/** `--load`: a plain decimal number in (0, 10) (no hex, exponent, sign or spaces). */
function loadOption(raw: string | undefined): number | undefined {
  return raw === undefined ? undefined : parseFlagNumber('load', raw, { above: 0, below: 10 });
}

function humanSummary(r: ExperimentResult, dir: string): string {
  const lines = [`${r.title} -> ${dir}`];
  for (const s of r.studies) {
    lines.push(
      `  ${s.title} (${s.metric}, ${s.direction === 'min' ? 'lower' : 'higher'} is better)`,
    );
    for (const e of s.results) {
      lines.push(
        `    ${e.name.padEnd(18)} ${e.kind.padEnd(8)} ${fmt(e.mean).padStart(10)} ± ${fmt(e.std)}`,
      );
    }
    for (const c of s.comparisons) lines.push(`    ${verdictLabel(c)}: ${c.text}`);
  }
  return lines.join('\n');
}

/** The command that reproduces run `r` of experiment `name`. */
function commandLine(name: string, a: ExpArgs, r: ExperimentResult): string {
  const parts = [`npx knobos exp ${name}`];
  if (a.run.trace) parts.push(`--trace ${a.run.trace.path} --format ${a.run.trace.format}`);
  if (a.run.seeds !== undefined) parts.push(`--seeds ${a.run.seeds}`);
  // Only where a tuner used it (`all` passes it on to the experiments that tune).
  if (a.run.budget !== undefined && tunes(r.studies)) parts.push(`--budget ${a.run.budget}`);
  if (a.run.quick) parts.push('--quick');
  // Only where the run used it: a workload that is no jobs trace ignores --load.
  if (a.run.load !== undefined && r.load !== undefined) parts.push(`--load ${r.load}`);
  if (a.out !== undefined) parts.push(`--out ${a.out}`);
  return parts.join(' ');
}

async function runOne(name: string, a: ExpArgs, reporter: Reporter) {
  const spec = experimentByName(name) as ExperimentSpec<never>;
  const r = await runExperiment(spec, { ...a.run, reporter });
  const dir = a.out ?? defaultOutDir(name, a.run.quick ?? false, a.run.trace?.path, r.load);
  await writeOutputs(r, dir, commandLine(name, a, r));
  if (resolve(dir, '..') === RESULTS_DIR) {
    // The index is a convenience: a failure to rebuild it must not fail the run it follows.
    try {
      writeResultsIndex(RESULTS_DIR);
    } catch (err) {
      reporter.log.warn({ err: (err as Error).message }, 'results index not rebuilt');
    }
  }
  return { r, dir };
}

/** Runs the command; returns the process exit code. */
export async function runExpCommand(argv: string[]): Promise<number> {
  let args: ExpArgs | 'help';
  try {
    args = parse(argv);
  } catch (err) {
    process.stderr.write(`knobos exp: ${(err as Error).message}\n\n${USAGE}`);
    if (argv.includes('--json')) writeErrorLine(err, 'usage');
    return 2;
  }
  if (args === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  const reporter = terminalReporter();
  const done: { r: ExperimentResult; dir: string }[] = [];
  try {
    for (const name of args.names) done.push(await runOne(name, args, reporter));
  } catch (err) {
    reporter.progress.stop();
    if (isInputError(err)) {
      process.stderr.write(`knobos exp: ${(err as Error).message}\n`);
      if (args.json) writeErrorLine(err);
      return 1;
    }
    throw err;
  }
  reporter.progress.stop();
  const human = done.map(({ r, dir }) => humanSummary(r, dir)).join('\n\n');
  const json =
    done.length === 1
      ? cliSummary((done[0] as { r: ExperimentResult }).r)
      : { experiment: 'all', experiments: done.map(({ r }) => cliSummary(r)) };
  emitResult(human, json, args.json);
  return 0;
}

/** Bad input (a trace option, or a malformed trace file): a message, not a stack trace. */
function isInputError(err: unknown): boolean {
  if (err instanceof TraceOptionError) return true;
  const name = (err as Error | undefined)?.name ?? '';
  return ['CacheTraceError', 'JobTraceError', 'TraceFormatError', 'WorkloadError'].includes(name);
}
