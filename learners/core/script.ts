// What the training scripts (`learners/*/train.ts`) share: their command line, an integer
// argument check, a progress log on stderr stamped with the seconds since start, and the
// parts of result.json / result.md that do not depend on what was trained.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { basename, isAbsolute, join, relative } from 'node:path';
import { parseArgs } from 'node:util';

/**
 * The command line of a training script. `--artifact` and `--results` default to where this run
 * may write (see trainOutputs), not to the committed paths directly.
 */
export function parseTrainArgs() {
  return parseArgs({
    options: {
      seed: { type: 'string', default: '1' },
      json: { type: 'boolean', default: false },
      quick: { type: 'boolean', default: false },
      'eval-only': { type: 'boolean', default: false },
      // Absent: the script's default (evalSeedList's fallback).
      'eval-seeds': { type: 'string' },
      artifact: { type: 'string' },
      results: { type: 'string' },
      // Only scripts that train in several simulated worlds read it (see worldArg).
      world: { type: 'string' },
    },
  }).values;
}

/**
 * Where a run writes its artifact and results: the flags when given; else the committed paths
 * for the reference run (seed 1, full size) and a folder of the temp directory for any other
 * (`--quick`, another seed), so a smoke run or a seed study never overwrites the committed
 * policy and its results. `--eval-only` reads the committed artifact unless told otherwise.
 */
export function trainOutputs(
  args: {
    seed?: string;
    quick?: boolean;
    'eval-only'?: boolean;
    artifact?: string;
    results?: string;
  },
  committed: { artifact: string; results: string },
  tag: string,
): { artifact: string; results: string } {
  const reference = !args.quick && (args.seed ?? '1') === '1';
  const scratch = join(
    tmpdir(),
    'knobos-train',
    `${tag}-seed${args.seed ?? '1'}${args.quick ? '-quick' : ''}`,
  );
  return {
    artifact:
      args.artifact ||
      (reference || args['eval-only']
        ? committed.artifact
        : join(scratch, basename(committed.artifact))),
    results: args.results || (reference ? committed.results : scratch),
  };
}

/** `--world`: one of `worlds` (the first when absent). */
export function worldArg<W extends string>(
  raw: string | undefined,
  worlds: readonly [W, ...W[]],
): W {
  const w = raw ?? worlds[0];
  if (!(worlds as readonly string[]).includes(w)) {
    throw new RangeError(`--world must be one of ${worlds.join(', ')}, got ${w}`);
  }
  return w as W;
}

/** A path as result files record it: relative to the working directory, so no machine's
 * layout ends up in a committed result. */
export function reportedPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel.startsWith('..') || isAbsolute(rel) ? path : rel;
}

export function intArg(name: string, raw: string | undefined, min: number): number {
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min) {
    throw new RangeError(`--${name} must be an integer >= ${min}, got ${String(raw)}`);
  }
  return v;
}

/**
 * Evaluation seeds 1..N (`--eval-seeds N`, else `fallback`); training and validation use seeds
 * far above.
 */
export function evalSeedList(raw: string | undefined, fallback = 10): number[] {
  return Array.from({ length: intArg('eval-seeds', raw ?? String(fallback), 1) }, (_, i) => i + 1);
}

/** Seeds as a report names them: "1 to 30" when consecutive (three or more), else the list. */
export function seedSpan(s: readonly number[]): string {
  return s.length > 2 && s.every((x, i) => x === (s[0] as number) + i)
    ? `${s[0]} to ${s[s.length - 1]}`
    : s.join(', ');
}

export function elapsedLog(started = Date.now()): (line: string) => void {
  return (line) =>
    process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${line}\n`);
}

/** The opening of result.md's provenance line: the command that reproduces the run. */
export function producedBy(script: string, seed: number, evalOnly: boolean): string {
  return `Produced by \`npx tsx ${script} --seed ${seed}${evalOnly ? ' --eval-only' : ''}\`. `;
}

/** What result.json records of a scorer training run (`trainScorer`'s result: BC, the linear
 * search's generations when it ran, PPO). The
 * teacher's validation cost goes under `teacherKey`, named with its unit as each script has it. */
export function trainingRecord(
  t: {
    config: object;
    best: object;
    validation: object[];
    teacherValidation: number | null;
    bc: object[];
    search?: object[];
    ppo: object[];
    episodes: number;
    seconds: object;
  },
  teacherKey: string,
): Record<string, unknown> {
  return {
    config: t.config,
    selected: t.best,
    validation: t.validation,
    [teacherKey]: t.teacherValidation,
    bc: t.bc,
    ...(t.search?.length ? { search: t.search } : {}),
    ppo: t.ppo,
    episodes: t.episodes,
    seconds: t.seconds,
  };
}

/** result.json's last fields: where the run ran and how long it took since `started`. */
export function runFooter(started: number, tfBackend: string) {
  return {
    machine: { node: process.version, cpus: cpus().length, tfBackend },
    seconds: (Date.now() - started) / 1000,
  };
}

/**
 * Ends a training script's run: result.json and result.md into `folder` (unless it is ''),
 * then the result on stdout, as one JSON line with --json or as the markdown.
 */
export function emitTrainResult(
  o: { folder: string; json: boolean; log: (line: string) => void },
  result: object,
  md: string,
): void {
  if (o.folder !== '') {
    mkdirSync(o.folder, { recursive: true });
    writeFileSync(join(o.folder, 'result.json'), JSON.stringify(result, null, 2) + '\n');
    writeFileSync(join(o.folder, 'result.md'), md);
    o.log(`results written to ${o.folder}`);
  }
  process.stdout.write(o.json ? JSON.stringify(result) + '\n' : md);
}

/** Runs a script's main; an error ends the process with its stack on stderr and status 1. */
export function runScript(main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
