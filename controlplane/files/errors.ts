// Typed errors of the file service. Scripts return { code, path, detail }; ONE function,
// fileErrorFromReply, maps a code to its error, so a caller sees the same error whichever
// operation failed. Codes are stable and never reused; keep scripts/includes/fscodes.lua in step.
import { KnobosError } from '../store/errors.ts';

export type Permission = 'r' | 'w' | 'x' | 'rx' | 'wx' | 'rw' | 'rwx' | 'owner' | 'root' | 'group';

abstract class FileError extends KnobosError {
  constructor(
    message: string,
    readonly path: string,
    details: Record<string, unknown> = {},
  ) {
    super(message, { path, ...details });
  }
}

export class FileNotFoundError extends FileError {
  readonly code = 'KNOBOS_FILES_NOT_FOUND';
  readonly status = 404;
}
export class FileExistsError extends FileError {
  readonly code = 'KNOBOS_FILES_EXISTS';
  readonly status = 409;
}
export class NotADirectoryError extends FileError {
  readonly code = 'KNOBOS_FILES_NOT_A_DIRECTORY';
  readonly status = 409;
}
export class IsADirectoryError extends FileError {
  readonly code = 'KNOBOS_FILES_IS_A_DIRECTORY';
  readonly status = 409;
}
export class DirectoryNotEmptyError extends FileError {
  readonly code = 'KNOBOS_FILES_NOT_EMPTY';
  readonly status = 409;
}

/** The caller lacks a permission; names the path where it is missing and which one. */
export class FilePermissionError extends FileError {
  readonly code = 'KNOBOS_FILES_PERMISSION';
  readonly status = 403;
  constructor(
    message: string,
    path: string,
    readonly permission: Permission,
    readonly uid: number,
  ) {
    super(message, path, { permission, uid });
  }
}

/** Bad input: names the field and the rule it broke. */
export class FileInputError extends FileError {
  readonly code = 'KNOBOS_FILES_INVALID';
  readonly status = 400;
  constructor(
    message: string,
    path: string,
    readonly field: string,
    readonly rule: string,
  ) {
    super(message, path, { field, rule });
  }
}

/** A bound of the service was reached (I/O size, subtree of a moved directory, ...). */
export class FileLimitError extends FileError {
  readonly code = 'KNOBOS_FILES_LIMIT';
  readonly status = 413;
  constructor(
    message: string,
    path: string,
    readonly limit: string,
    readonly max: number,
  ) {
    super(message, path, { limit, max });
  }
}

export class VolumeMissingError extends FileError {
  readonly code = 'KNOBOS_FILES_NO_VOLUME';
  readonly status = 503;
}

/** Script failure codes; keep in step with scripts/includes/fscodes.lua. */
export const FILE_CODES = {
  NOENT: -101,
  EXIST: -102,
  NOTDIR: -103,
  ISDIR: -104,
  NOTEMPTY: -105,
  PERM: -106,
  INVAL: -107,
  LIMIT: -108,
  NOVOL: -109,
} as const;

const PERM_WORDS: Record<string, string> = {
  r: 'read',
  w: 'write',
  x: 'search/execute',
  owner: 'ownership',
  root: 'root',
  group: 'group membership',
};

const INVAL_RULES: Record<string, string> = {
  root: 'the root directory cannot be removed, renamed or replaced',
  subtree: 'a directory cannot move into its own subtree',
  same_request: 'requestId was used for another request (a retry must send the same request)',
};

/** The field an invalid-input rule is about, when it is not the path. */
const INVAL_FIELDS: Record<string, string> = { same_request: 'requestId' };

function text(v: unknown): string {
  return Buffer.isBuffer(v) ? v.toString('utf8') : String(v ?? '');
}

export interface FileErrorContext {
  op: string;
  uid: number;
  volume: string;
}

/** Maps a script's { code, path, detail } reply to a typed error; null when the code is OK. */
export function fileErrorFromReply(
  reply: readonly unknown[],
  ctx: FileErrorContext,
): KnobosError | null {
  const code = Number(reply[0]);
  if (code === 0) return null;
  const path = text(reply[1]);
  const detail = text(reply[2]);
  const where = `${ctx.op} ${path}`;
  switch (code) {
    case FILE_CODES.NOENT:
      return new FileNotFoundError(`${where}: no such file or directory`, path);
    case FILE_CODES.EXIST:
      return new FileExistsError(`${where}: already exists`, path);
    case FILE_CODES.NOTDIR:
      return new NotADirectoryError(`${where}: not a directory`, path);
    case FILE_CODES.ISDIR:
      return new IsADirectoryError(`${where}: is a directory`, path);
    case FILE_CODES.NOTEMPTY:
      return new DirectoryNotEmptyError(`${where}: directory not empty`, path);
    case FILE_CODES.PERM: {
      const perm = detail as Permission;
      const words = /^[rwx]+$/.test(perm)
        ? [...perm].map((p) => PERM_WORDS[p]).join(' and ')
        : (PERM_WORDS[perm] ?? perm);
      return new FilePermissionError(
        `${ctx.op}: permission denied: uid ${ctx.uid} lacks ${perm} (${words}) on ${path}`,
        path,
        perm,
        ctx.uid,
      );
    }
    case FILE_CODES.INVAL:
      return new FileInputError(
        `${where}: ${INVAL_RULES[detail] ?? detail}`,
        path,
        INVAL_FIELDS[detail] ?? 'path',
        detail,
      );
    case FILE_CODES.LIMIT: {
      const [limit = detail, max = '0'] = detail.split(':');
      return new FileLimitError(`${where}: over the bound ${limit} = ${max}`, path, limit, +max);
    }
    case FILE_CODES.NOVOL:
      return new VolumeMissingError(`${ctx.op}: volume ${ctx.volume} is not initialised`, path);
    default:
      throw new Error(`file script returned unknown code ${code} for ${where}`);
  }
}
