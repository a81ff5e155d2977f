// What the training scripts (`learners/*/train.ts`) share: their command line, an integer
// argument check, and a progress log on stderr stamped with the seconds since start.
import { isAbsolute, relative } from 'node:path';
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
