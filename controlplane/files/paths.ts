// Input checks of the file service: paths, callers, modes, offsets. Each failure is a
// FileInputError naming the field and the rule.
import { FileInputError } from './errors.ts';
import type { Caller } from './types.ts';

export const PATH_CHARS_MAX = 4_096;
const NAME_BYTES_MAX = 255;
export const DEPTH_MAX = 64;
const GIDS_MAX = 64;
const ID_MAX = 2 ** 31 - 1;

/** '/a//b/' -> '/a/b'. Absolute only; no '.', '..' or NUL; bounded length and depth. */
export function normalizePath(path: unknown, field = 'path'): string {
  const bad = (rule: string, why: string): never => {
    throw new FileInputError(`${field} '${String(path)}': ${why}`, String(path), field, rule);
  };
  if (typeof path !== 'string') return bad('type', 'must be a string');
  if (!path.startsWith('/')) bad('absolute', 'must start with /');
  if (path.length > PATH_CHARS_MAX) bad('max_length', `must be at most ${PATH_CHARS_MAX} chars`);
  if (path.includes('\0')) bad('no_nul', 'must not contain NUL');
  // A lone surrogate has no UTF-8 form: two of them would both become U+FFFD, one name.
  if (/\p{Cs}/u.test(path)) bad('unicode', 'must be well-formed Unicode (no lone surrogates)');
  const parts = path.split('/').filter((p) => p !== '');
  if (parts.length > DEPTH_MAX) bad('max_depth', `must be at most ${DEPTH_MAX} levels deep`);
  for (const p of parts) {
    if (p === '.' || p === '..') bad('no_dot_segments', "must not contain '.' or '..'");
    if (Buffer.byteLength(p) > NAME_BYTES_MAX)
      bad('max_name', `names must be at most ${NAME_BYTES_MAX} bytes (UTF-8)`);
  }
  return '/' + parts.join('/');
}

/** A path ending in / (not the root) names a directory, as in POSIX. */
export function namesDir(path: unknown): boolean {
  return typeof path === 'string' && path.length > 1 && path.endsWith('/');
}

/** The path of an operation on a file: one ending in / names a directory and is refused. */
export function filePath(path: unknown, op: string): string {
  const p = normalizePath(path);
  if (namesDir(path))
    throw new FileInputError(
      `${op} ${p}/: a path ending in / names a directory; ${op} takes a file`,
      p,
      'path',
      'file_path',
    );
  return p;
}

function checkId(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > ID_MAX) {
    throw new FileInputError(
      `${field} must be an integer in 0..${ID_MAX}, got ${String(v)}`,
      '',
      field,
      'range',
    );
  }
  return v;
}

/** The caller as scripts take it: "<uid>:<primary gid>,<gid>,..." (primary = uid when none). */
export function callerArg(caller: Caller): string {
  const uid = checkId(caller?.uid, 'caller.uid');
  const gids = caller.gids ?? [];
  if (gids.length > GIDS_MAX) {
    throw new FileInputError(`caller.gids: at most ${GIDS_MAX}`, '', 'caller.gids', 'max_length');
  }
  gids.forEach((g, i) => checkId(g, `caller.gids[${i}]`));
  return `${uid}:${(gids.length > 0 ? gids : [uid]).join(',')}`;
}

export function checkMode(mode: unknown, field = 'mode'): number {
  if (typeof mode !== 'number' || !Number.isInteger(mode) || mode < 0 || mode > 0o777) {
    throw new FileInputError(
      `${field} must be an integer in 0..0o777, got ${String(mode)}`,
      '',
      field,
      'range',
    );
  }
  return mode;
}

/** An integer in min..max (min 0 unless given). */
export function checkCount(v: unknown, field: string, max: number, path = '', min = 0): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new FileInputError(
      `${field} must be an integer in ${min}..${max}, got ${String(v)}`,
      path,
      field,
      'range',
    );
  }
  return v;
}
