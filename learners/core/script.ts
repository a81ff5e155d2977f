// What the training scripts (`learners/*/train.ts`) share: their command line, an integer
// argument check, and a progress log on stderr stamped with the seconds since start.
import { mkdirSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, relative } from 'node:path';
import { parseArgs } from 'node:util';

export function parseTrainArgs(defaults: { artifact: string; results: string }) {
  return parseArgs({
    options: {
      seed: { type: 'string', default: '1' },
      json: { type: 'boolean', default: false },
      quick: { type: 'boolean', default: false },
      'eval-only': { type: 'boolean', default: false },
      'eval-seeds': { type: 'string', default: '10' },
      artifact: { type: 'string', default: defaults.artifact },
      results: { type: 'string', default: defaults.results },
    },
  }).values;
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

export function elapsedLog(started = Date.now()): (line: string) => void {
  return (line) =>
    process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${line}\n`);
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
